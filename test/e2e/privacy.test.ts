import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { VIEWPORT } from '../../src/browser/index.js';
import { serveStatic, type StaticSite } from '../../src/cli/static-site.js';
import { projectRoot } from '../../src/common/index.js';
import { execute, launchViewerBrowser, pngPixels, startStack, waitFor, WsViewer, type Stack } from '../helpers/stack.js';
import { collect } from '../helpers/stores.js';

/**
 * Every secret starts with its own 5-character tag that appears nowhere else, so a leak of any
 * part of it (a masked value's first keystrokes, a prefix cut by a batch) is found by the tag alone.
 */
const S = {
  privateText: 'Qx7pZ private block text',
  privateDynamic: 'Jr2fY private dynamic text',
  privateScripted: 'Pk8dM private scripted value',
  privateTyped: 'Gd5hS typed into private',
  maskedText: 'Wm4tK masked paragraph text',
  cardText: 'Bd9rV blocked card text',
  cardDynamic: 'Cz5gH card dynamic text',
  cardTyped: 'Ry8oP typed into card',
  maskedAreaTyped: 'Mf3jW typed in masked area',
  nameTyped: 'Nt6wL typed name value',
  notesTyped: 'Ns1eU typed notes value',
  plainTyped: 'Uc0nT plain typed value',
  password: 'Pw0qX typed password',
  hidden: 'Hv3sN hidden field value',
} as const;

/** The page's own text that no option hides: it must be found wherever the secrets are not. */
const CONTROL = ['Visible control paragraph', 'Revealed control text'];

/** Types into every field (the name key by key), lets the page change itself, takes a screenshot; optionally ends with a failing step. */
function formWorkflow(pages: string, failAtEnd: boolean) {
  return {
    name: 'privacy form',
    version: '1.0',
    steps: [
      { type: 'navigation', url: `${pages}/private-form.html`, description: 'open' },
      { type: 'input', cssSelector: '#name', value: S.nameTyped, typeDelayMs: 10, description: 'name' },
      { type: 'input', cssSelector: '#notes', value: S.notesTyped, description: 'notes' },
      { type: 'input', cssSelector: '#private-input', value: S.privateTyped, description: 'private field' },
      { type: 'input', cssSelector: '#card-input', value: S.cardTyped, description: 'card field' },
      { type: 'input', cssSelector: '#masked-area-input', value: S.maskedAreaTyped, description: 'masked-area field' },
      { type: 'input', cssSelector: '#plain', value: S.plainTyped, description: 'plain field' },
      { type: 'input', cssSelector: '#pass', value: S.password, description: 'password' },
      { type: 'click', cssSelector: '#reveal', description: 'reveal' },
      { type: 'wait', cssSelector: '#revealed', description: 'revealed' },
      { type: 'screenshot', description: 'shot' },
      ...(failAtEnd ? [{ type: 'wait', cssSelector: '#never-there', timeoutMs: 500, description: 'fails' }] : []),
    ],
  };
}
const SCREENSHOT_STEP = 10;

interface Run {
  id: string;
  status: string;
  /** Every place the run's content went, by name: WS frames, stored chunks, HTTP and CLI exports, the run's JSON. */
  places: { name: string; text: string }[];
  stepShot: Buffer;
  failureShot: Buffer | null;
}

let stack: Stack;
let pages: StaticSite;
let browser: Browser;

before(async () => {
  stack = await startStack();
  pages = await serveStatic(join(projectRoot, 'test', 'fixtures', 'pages'));
  browser = await launchViewerBrowser();
});
after(async () => {
  await browser?.close();
  await pages?.close();
  await stack?.close();
});

/** Headers for API calls: the API key when the stack runs with one. */
function apiHeaders(): Record<string, string> {
  const key = stack.server.deps.config.apiKey;
  return key ? { authorization: `Bearer ${key}` } : {};
}

async function apiGet(path: string): Promise<Response> {
  const res = await fetch(`${stack.base}${path}`, { headers: apiHeaders() });
  assert.equal(res.status, 200, `GET ${path}`);
  return res;
}

function cliExport(id: string): Promise<string> {
  const child = spawn(process.execPath, [join(projectRoot, 'dist', 'cli.js'), 'export', id], {
    cwd: projectRoot,
    env: { ...process.env, DOMCAST_DATA_DIR: stack.server.deps.config.dataDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`domcast export exited ${code}: ${err}`)))));
}

/** Runs the form workflow with `privacy` and gathers everything the run produced, once it is stored. */
async function runForm(privacy: Record<string, unknown>, failAtEnd: boolean): Promise<Run> {
  const { status, body } = await execute(stack.base, { workflow: formWorkflow(pages.url, failAtEnd), visual_enabled: true, ...privacy });
  assert.equal(status, 202, JSON.stringify(body));
  // Connected before the page exists, so this viewer is sent every event of the run.
  const ws = await WsViewer.open(body.visual_stream_url!);
  const id = body.session_id;
  const session = stack.server.deps.registry.get(id)!;
  await waitFor('the run to end', () => session.finished, 30_000);
  await waitFor('the end frame', () => ws.ended());
  await ws.closed;
  await stack.server.deps.store.flush();
  const chunks = await collect(stack.server.deps.store.eventChunks(id));
  const exported = await (await apiGet(`/workflows/${encodeURIComponent(id)}/events`)).text();
  assert.equal((JSON.parse(exported) as unknown[]).length, session.log.totalEvents, 'the export holds the whole run');
  const places = [
    ...ws.raw.map((text, i) => ({ name: `ws frame ${i}`, text })),
    ...chunks.map((text, i) => ({ name: `stored chunk ${i}`, text })),
    { name: 'GET /events', text: exported },
    { name: 'domcast export', text: await cliExport(id) },
    { name: 'GET /workflows/{id}', text: await (await apiGet(`/workflows/${encodeURIComponent(id)}`)).text() },
  ];
  const stepShot = Buffer.from(await (await apiGet(`/workflows/${encodeURIComponent(id)}/steps/${SCREENSHOT_STEP}/screenshot`)).arrayBuffer());
  const failureShot = failAtEnd ? Buffer.from(await (await apiGet(`/workflows/${encodeURIComponent(id)}/screenshot`)).arrayBuffer()) : null;
  return { id, status: session.status, places, stepShot, failureShot };
}

function assertHidden(run: Run, secrets: readonly string[]): void {
  for (const secret of secrets) {
    // The whole value, its first six characters and its tag: a partial leak is a leak.
    for (const needle of new Set([secret, secret.slice(0, 6), secret.slice(0, 5)])) {
      const where = run.places.filter((p) => p.text.includes(needle)).map((p) => p.name);
      assert.deepEqual(where, [], `${JSON.stringify(needle)} (of ${JSON.stringify(secret)}) leaked into ${where.join(', ')}`);
    }
  }
}

function assertShown(run: Run, texts: readonly string[]): void {
  const all = run.places.map((p) => p.text).join('\n');
  for (const text of texts) assert.ok(all.includes(text), `${JSON.stringify(text)} should be in the recording (else the test proves nothing)`);
}

type Box = { x: number; y: number };

/** Centres of elements of the fixture as laid out in the run's viewport after "Reveal" (same page, same size, same layout). */
async function centres(selectors: readonly string[]): Promise<Box[]> {
  const page = await browser.newPage({ viewport: VIEWPORT });
  try {
    await page.goto(`${pages.url}/private-form.html`);
    await page.click('#reveal');
    return await page.evaluate((sels) => sels.map((s) => {
      const r = document.querySelector(s)!.getBoundingClientRect();
      return { x: Math.round(r.x + r.width / 2), y: Math.round(r.y + r.height / 2) };
    }), selectors);
  } finally {
    await page.close();
  }
}

/** Whether each point of the PNG is Playwright's mask colour (#FF00FF), decoded by the browser. */
async function maskedAt(png: Buffer, points: readonly Box[]): Promise<boolean[]> {
  const page = await browser.newPage();
  try {
    return (await pngPixels(page, png, points)).map(([r, g, b]) => r > 240 && g < 20 && b > 240);
  } finally {
    await page.close();
  }
}

const PROBES = ['[data-domcast-private]', '.card', 'p.secret-text', '#name', '#control'] as const;

describe('privacy controls', () => {
  test('with mask_all_inputs, mask_text_selector and block_selector no secret reaches a frame, a stored chunk, an export or a screenshot', async () => {
    const run = await runForm({ mask_all_inputs: true, mask_text_selector: '.secret-text', block_selector: '.card' }, true);
    assert.equal(run.status, 'failed', 'the last step fails on purpose, for the failure screenshot');
    assertHidden(run, Object.values(S));
    assertShown(run, CONTROL);

    const points = await centres(PROBES);
    const expected = [true, true, true, true, false];
    assert.deepEqual(await maskedAt(run.stepShot, points), expected, `screenshot step masks ${PROBES.join(', ')}`);
    assert.deepEqual(await maskedAt(run.failureShot!, points), expected, `failure screenshot masks ${PROBES.join(', ')}`);
  });

  test('data-domcast-private is honoured with no privacy option set, and the rest is recorded as it is', async () => {
    const run = await runForm({}, false);
    assert.equal(run.status, 'succeeded');
    assertHidden(run, [S.privateText, S.privateDynamic, S.privateScripted, S.privateTyped, S.password]);
    // Without options these are ordinary content: seeing them proves the checks above can fail.
    assertShown(run, [...CONTROL, S.maskedText, S.cardText, S.cardDynamic, S.cardTyped, S.nameTyped, S.plainTyped, S.hidden]);
    const points = await centres(PROBES);
    assert.deepEqual(await maskedAt(run.stepShot, points), [true, false, false, false, false], 'only the private block is masked in the screenshot');
  });

  test('without mask_all_inputs, fields inside a mask_text_selector element are masked and other fields are not', async () => {
    const run = await runForm({ mask_text_selector: '.secret-text', block_selector: '.card' }, false);
    assertHidden(run, [S.privateText, S.privateTyped, S.maskedText, S.maskedAreaTyped, S.cardText, S.cardDynamic, S.cardTyped, S.password]);
    assertShown(run, [...CONTROL, S.nameTyped, S.notesTyped, S.plainTyped, S.hidden]);
  });

  test('an invalid privacy selector fails the run before its first step, naming the field', async () => {
    for (const [field, selector] of [['block_selector', '.card['], ['mask_text_selector', 'p:::bad']] as const) {
      const { status, body } = await execute(stack.base, { workflow: formWorkflow(pages.url, false), visual_enabled: true, [field]: selector });
      assert.equal(status, 202);
      const session = stack.server.deps.registry.get(body.session_id)!;
      await waitFor('the run to fail', () => session.finished);
      assert.equal(session.status, 'failed');
      assert.match(session.error ?? '', new RegExp(`^${field}: not a valid CSS selector`));
      assert.ok(session.steps.every((s) => s.state === 'skipped'), 'no step ran');
    }
  });
});
