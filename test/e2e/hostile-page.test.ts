// e2e: alone (hostile pages load the machine on purpose)
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, BrowserContext, Frame, Page, Request } from 'playwright-core';
import { projectRoot } from '../../src/common/index.js';
import { CustomTag, RrwebEventType, type WireEvent } from '../../src/protocol/index.js';
import { VIEWER_CSP } from '../../src/server/routes/viewer.js';
import { execute, launchViewerBrowser, replayedText, startStack, waitFor, type Stack } from '../helpers/stack.js';

/** Requests the viewer browser makes carry this, so the recording browser's own (legitimate) requests can be told apart. */
const VIEWER_UA = 'domcast-hostile-test-viewer/1';

interface Hit {
  path: string;
  ua: string;
}

/** An HTTP server that notes every request and connection. */
interface Counting {
  origin: string;
  hits: Hit[];
  connections: number;
  close(): Promise<void>;
}

async function countingServer(host: string, answer: (req: IncomingMessage) => { status: number; type?: string; body?: string }): Promise<Counting> {
  const hits: Hit[] = [];
  const state = { connections: 0 };
  const server: Server = createServer((req, res) => {
    hits.push({ path: req.url ?? '', ua: req.headers['user-agent'] ?? '' });
    const a = answer(req);
    res.writeHead(a.status, { 'cache-control': 'no-store', ...(a.type ? { 'content-type': a.type } : {}) }).end(a.body);
  });
  server.on('connection', () => state.connections++);
  await new Promise<void>((ok) => server.listen(0, host, ok));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://${host}:${port}`,
    hits,
    get connections() {
      return state.connections;
    },
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

let stack: Stack;
let browser: Browser;
/** Another origin (127.0.0.2): what the hostile page tries to reach. It answers 204, so the recorded page never navigates away. */
let outside: Counting;
/** The recorded page's own origin, a third one: the viewer must not fetch from it either. */
let site: Counting;

before(async () => {
  stack = await startStack({ BROWSER_ISOLATION: 'run' });
  browser = await launchViewerBrowser();
  outside = await countingServer('127.0.0.2', () => ({ status: 204 }));
  const fixture = readFileSync(join(projectRoot, 'test', 'fixtures', 'pages', 'hostile.html'), 'utf8');
  site = await countingServer('127.0.0.1', (req) =>
    req.url === '/hostile.html' ? { status: 200, type: 'text/html; charset=utf-8', body: fixture.replaceAll('__OUTSIDE__', outside.origin) } : { status: 404 },
  );
});
after(async () => {
  await browser?.close();
  await site?.close();
  await outside?.close();
  await stack?.close();
});

/** Headers for API calls: the API key when the stack runs with one. */
function apiHeaders(): Record<string, string> {
  const key = stack.server.deps.config.apiKey;
  return key ? { authorization: `Bearer ${key}` } : {};
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Evaluates in a frame, or gives `NO_DOCUMENT` when the frame never got one (an <iframe> whose
 * javascript: or cross-origin navigation was refused): Playwright would wait for it forever.
 */
const NO_DOCUMENT = Symbol('no document');
async function inFrame<T>(frame: Frame, fn: () => T): Promise<T | typeof NO_DOCUMENT> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<typeof NO_DOCUMENT>((r) => (timer = setTimeout(() => r(NO_DOCUMENT), 2000)));
  try {
    return await Promise.race([frame.evaluate(fn) as Promise<T>, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The replayed document: the viewer's first child frame (rrweb's iframe). */
function replayFrame(viewer: Page) {
  return viewer.frames().find((f) => f.parentFrame() === viewer.mainFrame());
}

/** How many sets of page-forged nodes the viewer shows (each starts with a div#forged and this text). */
async function forgedSets(viewer: Page): Promise<number> {
  const frame = replayFrame(viewer);
  if (!frame) return 0;
  const texts = await frame.evaluate(() => [...document.querySelectorAll('#forged')].map((d) => d.firstChild?.textContent)).catch(() => []);
  return texts.filter((t) => t === 'Forged but inert content.').length;
}

/** Requests and connections the two outside servers have seen. */
function traffic(): { hits: number; connections: number } {
  return { hits: outside.hits.length + site.hits.length, connections: outside.connections + site.connections };
}

/** Waits until the recording browser has stopped talking to the outside servers, so what follows is the viewer's doing. */
async function quiet(forMs = 2000): Promise<void> {
  let last = JSON.stringify(traffic());
  let since = Date.now();
  await waitFor('the recorded page to go quiet', async () => {
    await sleep(100);
    const now = JSON.stringify(traffic());
    if (now !== last) [last, since] = [now, Date.now()];
    return Date.now() - since >= forMs;
  }, 30_000);
}

/** What a viewer user could do: follow the javascript: links and press the button with a handler. */
async function poke(viewer: Page): Promise<void> {
  for (const frame of viewer.frames().filter((f) => f !== viewer.mainFrame())) {
      await inFrame(frame, () => {
      for (const el of document.querySelectorAll<HTMLElement>('#js-link, #forged-js-link, #handler, #auto-focus')) {
        el.focus();
        el.click();
      }
    }).catch(() => undefined);
  }
}

interface Diagnostics {
  /** Every request the viewer's browser started, and why it failed if it did ("csp": the CSP refused it before sending). */
  requests: Map<Request, { url: string; failure: string | null }>;
  console: string[];
}

/**
 * Chromium's reasons for refusing a request before it is sent (CDP Network.BlockedReason): the CSP,
 * and "origin" for an SVG <use> of another origin (same-origin only by spec).
 */
const REFUSED = ['csp', 'origin'];

/** A browser context for viewers, with every request it makes and every console line noted. */
async function viewerContext(): Promise<{ context: BrowserContext; diag: Diagnostics }> {
  const context = await browser.newContext({ userAgent: VIEWER_UA });
  const diag: Diagnostics = { requests: new Map(), console: [] };
  context.on('request', (r) => diag.requests.set(r, { url: r.url(), failure: null }));
  context.on('requestfailed', (r) => diag.requests.set(r, { url: r.url(), failure: r.failure()?.errorText ?? 'unknown' }));
  context.on('console', (m) => diag.console.push(`${m.type()}: ${m.text()}`));
  return { context, diag };
}

/** Opens the viewer as returned by execute and waits until the hostile page (and the first forged nodes) are replayed. */
async function openViewer(context: BrowserContext, url: string, diag: Diagnostics): Promise<Page> {
  const viewer = await context.newPage();
  const response = await viewer.goto(url);
  assert.equal(response?.status(), 200);
  assert.equal(response.headers()['content-security-policy'], VIEWER_CSP, 'the viewer page is served with the strict CSP');
  await waitFor('the hostile page in the viewer', async () => (await replayedText(viewer)).includes('An ordinary paragraph the viewer must still show.'));
  await waitFor('the page-forged nodes in the viewer', async () => (await forgedSets(viewer)) >= 1).catch((err: unknown) => {
    throw new Error(`${String(err)}\nconsole:\n${diag.console.join('\n')}`);
  });
  return viewer;
}

/** Nothing ran in any frame of the viewer, no frame went elsewhere, and no request left the server's origin. */
async function assertInert(viewer: Page, diag: Diagnostics, phase: string): Promise<void> {
  const requests = [...diag.requests.values()];
  const context = `${phase}\nrequests:\n${requests.map((r) => `${r.url} ${r.failure ?? ''}`).join('\n')}\nconsole:\n${diag.console.join('\n')}`;
  const serverOrigin = new URL(stack.base).origin;
  for (const frame of viewer.frames()) {
      const url = frame.url();
    const globals = await inFrame(frame, () => Object.keys(window).filter((k) => k.startsWith('__hostile')));
    if (globals === NO_DOCUMENT) assert.ok(url === '' || url.startsWith('chrome-error:'), `${phase}: frame ${url} did not answer`);
    else assert.deepEqual(globals, [], `${phase}: hostile code ran in frame ${url}`);
    // chrome-error: is where a frame lands when the CSP refuses its navigation (frame-src).
    assert.ok(url.startsWith(serverOrigin) || /^(about:|data:|blob:|chrome-error:)/.test(url) || url === '', `${phase}: a frame went to ${url}`);
  }
  const replays = await viewer.evaluate(() => [...document.querySelectorAll('iframe')].map((f) => ({ sandbox: f.getAttribute('sandbox'), inert: f.inert })));
  assert.ok(replays.length > 0, 'the viewer has a replay iframe');
  for (const { sandbox, inert } of replays) {
    assert.notEqual(sandbox, null, `${phase}: a replay iframe without sandbox`);
    assert.ok(!sandbox!.split(/\s+/).includes('allow-scripts'), `${phase}: sandbox="${sandbox}" allows scripts`);
    assert.ok(inert, `${phase}: the replay iframe takes focus and input`);
  }
  const away = requests.filter((r) => !/^(data:|blob:|about:)/.test(r.url) && new URL(r.url).origin !== serverOrigin && !REFUSED.includes(r.failure ?? ''));
  assert.deepEqual(away, [], `${phase}: the viewer requested other origins\n${context}`);
  const reached = [...outside.hits, ...site.hits].filter((h) => h.ua === VIEWER_UA);
  assert.deepEqual(reached, [], `${phase}: the viewer reached the outside servers\n${context}`);
}

/** rrweb serialized nodes, depth first. */
function* nodes(n: { type: number; tagName?: string; attributes?: Record<string, unknown>; childNodes?: unknown[] }): Generator<typeof n> {
  yield n;
  for (const c of n.childNodes ?? []) yield* nodes(c as typeof n);
}

test('a hostile page runs nothing and reaches nothing from the viewer, live and in replay, and cannot forge domcast events', async () => {
  const { status, body } = await execute(stack.base, {
    workflow: {
      name: 'hostile',
      steps: [
        { type: 'navigation', url: `${site.origin}/hostile.html`, description: 'open the hostile page' },
        // Ends when the test has looked at the live viewer (it adds #test-done).
        { type: 'wait', cssSelector: '#test-done', timeoutMs: 90_000, description: 'hold' },
      ],
    },
    visual_enabled: true,
  });
  assert.equal(status, 202, JSON.stringify(body));
  const id = body.session_id;
  const session = stack.server.deps.registry.get(id)!;
  await waitFor('the hold step', () => session.currentStep === 1, 30_000);
  // The recording browser did run the page (so the viewer's silence below is not for lack of material).
  const page = stack.server.deps.runs.page(id)!;
  await waitFor('the page script', () => page.evaluate(() => document.getElementById('added-by-script') !== null));
  await waitFor('the recorded page to reach outside', () => outside.hits.length > 5);

  // Live: the viewer follows the running session. Once the recorded page is quiet, any request or
  // connection the outside servers see is the viewer's (a refused <iframe src> still opens a connection).
  await quiet();
  const liveBefore = traffic();
  const live = await viewerContext();
  const liveViewer = await openViewer(live.context, body.viewer_url!, live.diag);
  // The page forges again while the viewer watches: those events are cast live, one by one.
  await page.evaluate(() => (window as unknown as { forge(base: number): void }).forge(910_000));
  await waitFor('the second forged nodes in the live viewer', async () => (await forgedSets(liveViewer)) === 2);
  await sleep(2500); // past the 1 s meta refresh and any timer a script could have set
  await poke(liveViewer);
  await sleep(500);
  await assertInert(liveViewer, live.diag, 'live');
  assert.deepEqual(traffic(), liveBefore, 'the live viewer reached the outside servers');
  assert.ok((await replayedText(liveViewer)).includes('Added by a page script after load.'), 'DOM the page script added is replayed as content');
  await live.context.close();

  await page.evaluate(() => document.body.append(Object.assign(document.createElement('p'), { id: 'test-done', textContent: 'done' })));
  await waitFor('the run to end', () => session.finished, 30_000);
  assert.equal(session.status, 'succeeded');
  assert.ok(session.steps.every((s) => s.state === 'succeeded'), 'the forged step failure changed nothing');

  // The recording: the page's forged domcast.* events were refused; the recorder dropped scripts, comments and http-equiv metas.
  const res = await fetch(`${stack.base}/workflows/${encodeURIComponent(id)}/events`, { headers: apiHeaders() });
  const events = (await res.json()) as WireEvent[];
  const ours = events.filter((e) => e.type === RrwebEventType.Custom && String((e.data as { tag?: unknown }).tag).startsWith('domcast.'));
  assert.ok(ours.length > 0 && ours.every((e) => !JSON.stringify(e).includes('FORGED')), 'no page-forged domcast.* event was kept');
  assert.ok(ours.some((e) => (e.data as { tag: string }).tag === CustomTag.status));
  const snapshot = events.find((e) => e.type === RrwebEventType.FullSnapshot)!;
  const recorded = [...nodes((snapshot.data as { node: Parameters<typeof nodes>[0] }).node)];
  assert.deepEqual(recorded.filter((n) => n.tagName === 'script').length, 0, 'no <script> recorded');
  assert.deepEqual(recorded.filter((n) => n.type === 5).length, 0, 'no comment recorded');
  assert.deepEqual(recorded.filter((n) => n.tagName === 'meta' && n.attributes?.['http-equiv'] !== undefined).length, 0, 'no <meta http-equiv> recorded');
  assert.ok(!JSON.stringify(snapshot).includes('hostile-csrf-token'), 'no verification/csrf meta recorded');

  // Replay: the browser that recorded is gone, so any request or connection now is the viewer's.
  const replayBefore = traffic();
  const replay = await viewerContext();
  const viewer = await openViewer(replay.context, body.viewer_url!, replay.diag);
  assert.equal(await viewer.evaluate(() => document.documentElement.dataset.connection), 'replay');
  await viewer.selectOption('#speed', '8');
  await viewer.click('#play'); // from the start: every event is applied again, in time
  await waitFor('the replay to play through', () => viewer.evaluate(() => document.documentElement.dataset.playing === 'false'), 30_000);
  await waitFor('the forged nodes after playing', async () => (await forgedSets(viewer)) === 2);
  await sleep(2000);
  await poke(viewer);
  await sleep(500);
  await assertInert(viewer, replay.diag, 'replay');
  assert.deepEqual(traffic(), replayBefore, 'the replay viewer reached the outside servers');
  await replay.context.close();
});
