// e2e: alone (it crashes renderers and kills Chromium, and times how soon runs fail)
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import type { ServerFrame } from '../../src/protocol/index.js';
import { WsViewer, execute, startStack, waitFor, type Stack } from '../helpers/stack.js';

interface RunState {
  status: string;
  error: string | null;
  current_step: number | null;
  steps: { state: string }[];
}

async function state(stack: Stack, id: string): Promise<RunState> {
  return (await (await fetch(`${stack.base}/workflows/${id}`)).json()) as RunState;
}

const ended = (s: RunState) => ['succeeded', 'failed', 'cancelled'].includes(s.status);

/** Starts a run that opens the demo site then waits `holdMs`; resolves once it is in that wait, with its page. */
async function startHolding(stack: Stack, holdMs: number, visual: boolean): Promise<{ id: string; streamUrl: string | null; page: Page }> {
  const { status, body } = await execute(stack.base, {
    workflow: {
      name: 'hold',
      steps: [
        { type: 'navigation', url: `${stack.site.url}/index.html` },
        { type: 'wait', ms: holdMs, description: 'hold' },
      ],
    },
    visual_enabled: visual,
  });
  assert.equal(status, 202);
  const id = body.session_id;
  await waitFor('the run to reach its wait', async () => (await state(stack, id)).current_step === 1);
  const page = stack.server.deps.runs.page(id);
  assert.ok(page, 'a running session has a page');
  return { id, streamUrl: body.visual_stream_url, page };
}

async function runToEnd(stack: Stack): Promise<RunState> {
  const { body } = await execute(stack.base, {
    workflow: {
      name: 'after',
      steps: [
        { type: 'navigation', url: `${stack.site.url}/index.html` },
        { type: 'wait', cssSelector: '#username' },
      ],
    },
  });
  return waitFor('the run to end', async () => {
    const s = await state(stack, body.session_id);
    return ended(s) ? s : null;
  });
}

async function browserPid(page: Page): Promise<number> {
  const browser = page.context().browser();
  assert.ok(browser);
  const cdp = await browser.newBrowserCDPSession();
  const { processInfo } = await cdp.send('SystemInfo.getProcessInfo');
  await cdp.detach();
  const pid = processInfo.find((p) => p.type === 'browser')?.id;
  assert.ok(pid, 'the browser process is listed');
  return pid;
}

/** The viewer's last status frame and its end frame, once it was told the run ended. */
async function told(viewer: WsViewer): Promise<{ status: Extract<ServerFrame, { t: 'status' }>; end: Extract<ServerFrame, { t: 'end' }> }> {
  await waitFor('the viewer to be told the run ended', () => viewer.ended(), 10_000);
  const status = viewer.frames.filter((f): f is Extract<ServerFrame, { t: 'status' }> => f.t === 'status').at(-1);
  const end = viewer.frames.find((f): f is Extract<ServerFrame, { t: 'end' }> => f.t === 'end');
  assert.ok(status && end);
  return { status, end };
}

describe('faults: a crashed page or a dead browser', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ BROWSER_ISOLATION: 'run', MAX_CONCURRENT_SESSIONS: '4' });
  });
  after(async () => {
    await stack?.close();
  });

  test('a renderer crash fails its session at once with the reason, viewers are told, other sessions carry on', async () => {
    const done = await runToEnd(stack);
    assert.equal(done.status, 'succeeded', 'a session that ran before');
    const neighbour = await startHolding(stack, 2500, false);
    const victim = await startHolding(stack, 30_000, true);
    const viewer = await WsViewer.open(victim.streamUrl!);

    const crashedAt = Date.now();
    const cdp = await victim.page.context().newCDPSession(victim.page);
    cdp.send('Page.crash').catch(() => undefined); // the target dies before it can answer

    const { status, end } = await told(viewer);
    assert.ok(Date.now() - crashedAt < 5000, `told after ${Date.now() - crashedAt} ms`);
    assert.equal(status.status, 'failed');
    assert.equal(status.error, 'step 2 (wait) failed: the page crashed (renderer process gone)');
    assert.equal(end.status, 'failed');

    const after = await state(stack, victim.id);
    assert.equal(after.status, 'failed');
    assert.equal(after.error, 'step 2 (wait) failed: the page crashed (renderer process gone)');
    assert.deepEqual(after.steps.map((s) => s.state), ['succeeded', 'failed']);

    const other = await waitFor('the neighbour to end', async () => {
      const s = await state(stack, neighbour.id);
      return ended(s) ? s : null;
    });
    assert.equal(other.status, 'succeeded', other.error ?? '');
    assert.equal((await runToEnd(stack)).status, 'succeeded', 'the next run');
  });

  test('Chromium killed with SIGKILL fails its run at once; another run, on a browser of its own, goes on; the next run gets a fresh browser', async () => {
    const first = await startHolding(stack, 30_000, true);
    const second = await startHolding(stack, 30_000, false);
    const viewer = await WsViewer.open(first.streamUrl!);
    const pid = await browserPid(first.page);
    assert.notEqual(await browserPid(second.page), pid, 'each run has a browser of its own (BROWSER_ISOLATION=run)');

    const killedAt = Date.now();
    process.kill(pid, 'SIGKILL');

    const { status, end } = await told(viewer);
    assert.ok(Date.now() - killedAt < 5000, `told after ${Date.now() - killedAt} ms`);
    assert.equal(status.status, 'failed');
    assert.equal(status.error, 'step 2 (wait) failed: the browser process exited');
    assert.equal(end.status, 'failed');
    const s1 = await waitFor('the first session to end', async () => {
      const r = await state(stack, first.id);
      return ended(r) ? r : null;
    }, 5000);
    assert.equal(s1.status, 'failed');
    assert.equal(s1.error, 'step 2 (wait) failed: the browser process exited');
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal((await state(stack, second.id)).status, 'running', 'the other run did not notice');
    assert.equal((await fetch(`${stack.base}/workflows/${second.id}/cancel`, { method: 'POST' })).status, 202);

    const health = await fetch(`${stack.base}/health/visual`);
    assert.equal(health.status, 200, 'the server still serves');
    const next = await startHolding(stack, 1000, false);
    assert.notEqual(await browserPid(next.page), pid, 'a new browser');
    const s = await waitFor('the next run to end', async () => {
      const r = await state(stack, next.id);
      return ended(r) ? r : null;
    });
    assert.equal(s.status, 'succeeded', s.error ?? '');
  });
});

describe('faults with BROWSER_ISOLATION=shared', () => {
  test('runs share one Chromium; killing it fails both, and the next run gets a fresh browser', async () => {
    const stack = await startStack({ BROWSER_ISOLATION: 'shared' });
    try {
      const first = await startHolding(stack, 30_000, false);
      const second = await startHolding(stack, 30_000, false);
      const pid = await browserPid(first.page);
      assert.equal(await browserPid(second.page), pid, 'both sessions share one browser');
      process.kill(pid, 'SIGKILL');
      for (const id of [first.id, second.id]) {
        const s = await waitFor('the session to end', async () => {
          const r = await state(stack, id);
          return ended(r) ? r : null;
        }, 5000);
        assert.equal(s.status, 'failed');
        assert.equal(s.error, 'step 2 (wait) failed: the browser process exited');
      }
      const next = await startHolding(stack, 500, false);
      assert.notEqual(await browserPid(next.page), pid, 'a new browser');
    } finally {
      await stack.close();
    }
  });
});
