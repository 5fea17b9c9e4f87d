import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { serveStatic, type StaticSite } from '../../src/cli/static-site.js';
import { projectRoot } from '../../src/common/index.js';
import { CustomTag, RrwebEventType, type StepCustomPayload } from '../../src/protocol/index.js';
import { WsViewer, execute, startStack, waitFor, type Stack } from '../helpers/stack.js';

const fixtures = join(projectRoot, 'test', 'fixtures');
const shopWorkflow = () => JSON.parse(readFileSync(join(fixtures, 'workflows', 'shop.json'), 'utf8')) as { steps: unknown[] };

interface RunRecord {
  status: string;
  error: string | null;
  started_at: string | null;
  ended_at: string | null;
  outputs: Record<string, unknown>;
  steps: { state: string; matched?: string | null; durationMs?: number; error?: string }[];
}

async function record(stack: Stack, id: string): Promise<RunRecord> {
  return (await (await fetch(`${stack.base}/workflows/${id}`)).json()) as RunRecord;
}

const hold = (pages: StaticSite, ms: number) => ({
  name: `hold ${ms}`,
  steps: [{ type: 'navigation', url: `${pages.url}/shop.html` }, { type: 'wait', ms, description: 'hold' }, { type: 'extract_page_content', cssSelector: '#result' }],
});

describe('the workflow engine', () => {
  let stack: Stack;
  let pages: StaticSite;
  before(async () => {
    stack = await startStack({ WORKFLOWS_DIR: join(fixtures, 'workflows') });
    pages = await serveStatic(join(fixtures, 'pages'));
  });
  after(async () => {
    await pages?.close();
    await stack?.close();
  });

  test('a workflow-use file with every deterministic step type and input variables runs to success with the right outputs', async () => {
    const { status, body } = await execute(stack.base, {
      name: 'shop',
      inputs: { base_url: pages.url, qty: 3, size: 'Large', gift: true },
      visual_enabled: true,
    });
    assert.equal(status, 202, JSON.stringify(body));
    const viewer = await WsViewer.open(body.visual_stream_url!);
    await viewer.closed;
    const run = await record(stack, body.session_id);
    assert.equal(run.status, 'succeeded', run.error ?? '');
    assert.equal(run.outputs.result, 'Bought 3 x Large');
    assert.equal(run.outputs.after_xpath, 'clicked Secret action');
    assert.equal(run.outputs.after_text, 'clicked Other action');
    assert.match(String(run.outputs.page), /The end of the page/);

    // Which way of finding each element worked is on record.
    assert.equal(run.steps[1]?.matched, '#late', 'auto-waits for an element that appears late');
    assert.equal(run.steps[10]?.matched, "xpath=//div[@class='actions']/button[1]");
    assert.equal(run.steps[12]?.matched, '<button> with text "Other action"');

    // The screenshot step's output is where its PNG is served.
    const shot = await fetch(`${stack.base}${String(run.outputs.shot)}`);
    assert.equal(shot.status, 200);
    assert.equal(shot.headers.get('content-type'), 'image/png');

    // Every step is visible in the live stream: a start and an end each, in order.
    const phases = viewer.received
      .filter((r) => r.event.type === RrwebEventType.Custom && (r.event.data as { tag: string }).tag === CustomTag.step)
      .map((r) => (r.event.data as { payload: StepCustomPayload }).payload)
      .map((p) => `${p.phase}:${p.index}`);
    const expected = shopWorkflow().steps.flatMap((_, i) => [`start:${i}`, `end:${i}`]);
    assert.deepEqual(phases.slice(-expected.length), expected);
  });

  test('a missing element fails its step with the index and every selector tried, within its timeout', async () => {
    const started = Date.now();
    const { body } = await execute(stack.base, {
      workflow: {
        name: 'missing',
        steps: [
          { type: 'navigation', url: `${pages.url}/shop.html` },
          { type: 'click', cssSelector: '#ghost', xpath: '//ghost', elementTag: 'BUTTON', elementText: 'Ghost', timeoutMs: 1500 },
        ],
      },
    });
    await waitFor('the run to fail', async () => (await record(stack, body.session_id)).status === 'failed');
    const run = await record(stack, body.session_id);
    assert.equal(
      run.error,
      'step 2 (click #ghost) failed: no element matches #ghost, nor xpath=//ghost, nor <button> with text "Ghost" within 1.5 s',
    );
    // Its own timeout; on a busy machine at most three times it (src/workflow/runner.ts), and the screenshot.
    assert.ok(run.steps[1]!.durationMs! >= 1500 && run.steps[1]!.durationMs! < 3 * 1500 + 1500, `took ${run.steps[1]!.durationMs} ms`);
    assert.ok(Date.now() - started < 15_000);
  });

  test('a navigation to a page that answers 404 fails with the HTTP status in the reason', async () => {
    const { body } = await execute(stack.base, { workflow: { name: '404', steps: [{ type: 'navigation', url: `${pages.url}/nope.html` }] } });
    await waitFor('the run to fail', async () => (await record(stack, body.session_id)).status === 'failed');
    assert.match((await record(stack, body.session_id)).error ?? '', /answered HTTP 404/);
  });

  test('stored workflows are listed with their input schema', async () => {
    const list = (await (await fetch(`${stack.base}/workflows`)).json()) as { workflows: { name: string; input_schema: { name: string }[] }[] };
    const shop = list.workflows.find((w) => w.name === 'shop');
    assert.deepEqual(shop?.input_schema.map((i) => i.name), ['base_url', 'qty', 'size', 'gift']);
  });

  test('inputs that do not fit the schema are refused before any browser starts', async () => {
    const active = stack.server.deps.registry.activeCount;
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ base_url: pages.url, size: 'Large' }, /input "qty" is required/],
      [{ base_url: pages.url, qty: 'three', size: 'Large' }, /input "qty" must be a number, got string/],
      [{ base_url: pages.url, qty: 1, size: 'Large', gift: 'yes' }, /input "gift" must be a bool, got string/],
    ];
    for (const [inputs, message] of cases) {
      const { status, body } = await execute(stack.base, { name: 'shop', inputs });
      assert.equal(status, 400);
      assert.match(body.error ?? '', message);
    }
    assert.equal(stack.server.deps.registry.activeCount, active);
  });

  test('steps recorded inside iframes run there (frameUrl, frameIdPath), and `>>` chains reach into closed shadow roots', async () => {
    const base = `${pages.url}/frames`;
    const { status, body } = await execute(stack.base, {
      workflow: {
        name: 'frames',
        steps: [
          { type: 'navigation', url: `${base}/index.html` },
          // As workflow-use records it: the frame's URL; the top page has a decoy with the same id.
          { type: 'input', cssSelector: '#name', value: 'typed in frame a', frameUrl: `${base}/frame-a.html`, frameIdPath: '0' },
          // Only a path: the top frame's second child's first child.
          { type: 'click', cssSelector: '#deep', frameIdPath: '1.0' },
          { type: 'input', cssSelector: 'outer-closed >> inner-closed >> #inner-input', value: 'typed in a closed root' },
          { type: 'wait', ms: 4000, description: 'hold' },
        ],
      },
    });
    assert.equal(status, 202, JSON.stringify(body));
    const session = stack.server.deps.registry.get(body.session_id)!;
    await waitFor('the hold', () => session.currentStep === 4 || session.finished);
    const page = stack.server.deps.runs.page(body.session_id)!;
    const frame = (name: string) => page.frames().find((f) => f.url().endsWith(`/frames/${name}`))!;
    assert.equal(await page.locator('#name').inputValue(), '', 'the decoy in the top page is untouched');
    assert.equal(await frame('frame-a.html').locator('#name').inputValue(), 'typed in frame a');
    assert.equal(await frame('frame-c.html').locator('#said').textContent(), 'deep clicked');
    assert.equal(await page.locator('#inner-input').inputValue(), 'typed in a closed root');
    await waitFor('the run to end', () => session.finished);
    const run = await record(stack, body.session_id);
    assert.equal(run.status, 'succeeded', run.error ?? '');
    assert.match(run.steps[1]!.matched ?? '', /^#name in the frame .*frame-a\.html$/);
    assert.match(run.steps[2]!.matched ?? '', /^#deep in the frame .*frame-c\.html$/);
  });

  test('four runs go at once and a fifth waits queued, then runs when a slot frees', async () => {
    // The runs hold long, so none ends by itself while browsers start on a loaded machine; a cancel frees the slot.
    const runs = await Promise.all([1, 2, 3, 4, 5].map(() => execute(stack.base, { workflow: hold(pages, 60_000) })));
    const ids = runs.map((r) => r.body.session_id);
    const sessions = ids.map((id) => stack.server.deps.registry.get(id)!);
    try {
      await waitFor('four running', () => sessions.filter((s) => s.status === 'running').length === 4, 60_000);
      assert.equal(sessions[4]!.status, 'queued');
      const health = (await (await fetch(`${stack.base}/health/visual`)).json()) as { queued_sessions: number };
      assert.equal(health.queued_sessions, 1);
      assert.equal((await fetch(`${stack.base}/workflows/${ids[0]}/cancel`, { method: 'POST' })).status, 202);
      await waitFor('the fifth to start', () => sessions[4]!.status === 'running', 60_000);
      assert.ok(sessions[4]!.startedAt! >= sessions[0]!.endedAt!, 'the fifth started only when a slot freed');
    } finally {
      await Promise.all(ids.slice(1).map((id) => fetch(`${stack.base}/workflows/${id}/cancel`, { method: 'POST' })));
    }
    await waitFor('all five done', () => sessions.every((s) => s.finished), 30_000);
    assert.deepEqual(sessions.map((s) => s.status), Array(5).fill('cancelled'));
  });

  test('cancel stops a running run at once: status cancelled, browser context closed, viewers told', async () => {
    const { body } = await execute(stack.base, { workflow: hold(pages, 20_000), visual_enabled: true });
    const viewer = await WsViewer.open(body.visual_stream_url!);
    const session = stack.server.deps.registry.get(body.session_id)!;
    await waitFor('the long step', () => session.currentStep === 1);
    const page = stack.server.deps.runs.page(body.session_id)!;
    const res = await fetch(`${stack.base}/workflows/${body.session_id}/cancel`, { method: 'POST' });
    assert.equal(res.status, 202);
    assert.deepEqual(await res.json(), { session_id: body.session_id, status: 'cancelled' });
    assert.deepEqual(await viewer.closed, { code: 1000, reason: 'session ended' });
    const end = viewer.frames.at(-1);
    assert.ok(end?.t === 'end' && end.status === 'cancelled');
    await waitFor('the page closed', () => page.isClosed(), 5000);
    const run = await record(stack, body.session_id);
    assert.deepEqual(run.steps.map((s) => s.state), ['succeeded', 'cancelled', 'skipped']);
    const again = await fetch(`${stack.base}/workflows/${body.session_id}/cancel`, { method: 'POST' });
    assert.equal(again.status, 409);
  });
});

describe('cancelling a queued run', () => {
  test('a queued run that is cancelled never starts', async () => {
    const stack = await startStack({ MAX_CONCURRENT_SESSIONS: '1' });
    const pages = await serveStatic(join(fixtures, 'pages'));
    try {
      const first = await execute(stack.base, { workflow: hold(pages, 1500) });
      const second = await execute(stack.base, { workflow: hold(pages, 100) });
      assert.equal(second.body.status, 'queued');
      const res = await fetch(`${stack.base}/workflows/${second.body.session_id}/cancel`, { method: 'POST' });
      assert.equal(res.status, 202);
      await waitFor('the first to end', async () => (await record(stack, first.body.session_id)).status === 'succeeded');
      const run = await record(stack, second.body.session_id);
      assert.equal(run.status, 'cancelled');
      assert.equal(run.started_at, null);
    } finally {
      await pages.close();
      await stack.close();
    }
  });
});
