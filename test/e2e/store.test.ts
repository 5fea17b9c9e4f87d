import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { serveStatic } from '../../src/cli/static-site.js';
import { projectRoot } from '../../src/common/index.js';
import { RrwebEventType, type WireEvent } from '../../src/protocol/index.js';
import { WsViewer, demoWorkflow, execute, startStack, waitFor } from '../helpers/stack.js';

const pagesDir = join(projectRoot, 'test', 'fixtures', 'pages');
const freshDir = () => mkdtempSync(join(tmpdir(), 'domcast-store-'));

async function exported(base: string, id: string, gzip = false): Promise<WireEvent[]> {
  const res = await fetch(`${base}/workflows/${id}/events`, { headers: gzip ? { 'accept-encoding': 'gzip' } : { 'accept-encoding': 'identity' } });
  assert.equal(res.status, 200);
  if (!gzip) return (await res.json()) as WireEvent[];
  // fetch inflates it; the header shows it was gzip on the wire.
  assert.equal(res.headers.get('content-encoding'), 'gzip');
  return (await res.json()) as WireEvent[];
}

test('a run is kept on disk: its record, its full event log and the sessions list survive a restart', async () => {
  const dataDir = freshDir();
  const first = await startStack({ DOMCAST_DATA_DIR: dataDir });
  let id: string;
  let streamed: string[];
  try {
    const { body } = await execute(first.base, {
      workflow: demoWorkflow(first.site.url, { midWaitMs: 100, holdMs: 100 }),
      inputs: { user: 'ada', api_token: 'tok-123' },
      visual_enabled: true,
    });
    id = body.session_id;
    const viewer = await WsViewer.open(body.visual_stream_url!);
    await viewer.closed;
    assert.equal(viewer.received[0]?.seq, 1);
    streamed = viewer.received.map((r) => r.json);
    const live = await exported(first.base, id);
    assert.deepEqual(live.map((e) => JSON.stringify(e)), streamed, 'the export is exactly what viewers were sent');
  } finally {
    await first.close();
  }

  const second = await startStack({ DOMCAST_DATA_DIR: dataDir });
  try {
    const record = (await (await fetch(`${second.base}/workflows/${id}`)).json()) as { status: string; inputs: Record<string, unknown>; steps: unknown[]; events: { total: number } };
    assert.equal(record.status, 'succeeded');
    assert.deepEqual(record.inputs, { user: 'ada', api_token: '[redacted]' });
    assert.equal(record.steps.length, 13);
    assert.equal(record.events.total, streamed.length);
    const after = await exported(second.base, id, true);
    assert.deepEqual(after.map((e) => JSON.stringify(e)), streamed);
    const list = (await (await fetch(`${second.base}/workflows/sessions`)).json()) as { sessions: { session_id: string }[] };
    assert.deepEqual(list.sessions.map((s) => s.session_id), [id]);
  } finally {
    await second.close();
  }
});

test('kill -9 mid-run: the store reopens cleanly, the run is interrupted, its recording holds all but the last second, and its counts and end are those of the recording', async () => {
  const dataDir = freshDir();
  const pages = await serveStatic(pagesDir);
  const child = spawn(process.execPath, [join(projectRoot, 'dist', 'cli.js'), 'serve'], {
    cwd: projectRoot,
    env: { ...process.env, PORT: '0', DOMCAST_DATA_DIR: dataDir, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const base = await waitFor('the server to listen', () => /"url":"(http:[^"]+)"/.exec(out)?.[1]);
    const { body } = await execute(base, {
      workflow: { name: 'churn', steps: [{ type: 'navigation', url: `${pages.url}/churn.html` }, { type: 'wait', ms: 30_000 }] },
      visual_enabled: true,
    });
    await waitFor('events on disk', async () => {
      const h = (await (await fetch(`${base}/health/visual`)).json()) as { store_events_written: number };
      return h.store_events_written > 100;
    });
    await new Promise((r) => setTimeout(r, 1000));
    const killedAt = Date.now();
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));

    const stack = await startStack({ DOMCAST_DATA_DIR: dataDir });
    try {
      const record = (await (await fetch(`${stack.base}/workflows/${body.session_id}`)).json()) as {
        status: string;
        error: string;
        ended_at: string;
        events: { total: number; bytes: number };
      };
      assert.equal(record.status, 'interrupted');
      assert.match(record.error, /server stopped/);
      const events = await exported(stack.base, body.session_id);
      const meta = events.findIndex((e) => e.type === RrwebEventType.Meta);
      assert.equal(events[meta + 1]?.type, RrwebEventType.FullSnapshot, 'the recording starts the page with Meta + FullSnapshot');
      const lastAt = Math.max(...events.map((e) => e.timestamp));
      assert.ok(killedAt - lastAt <= 1000, `the recording stops ${killedAt - lastAt} ms before the kill`);
      // The counts were last saved when the run started; the recording on disk is what they must say.
      assert.equal(record.events.total, events.length, 'events.total counts the stored events');
      assert.equal(record.events.bytes, events.reduce((n, e) => n + JSON.stringify(e).length, 0), 'events.bytes counts their text');
      const endedAt = Date.parse(record.ended_at);
      assert.ok(endedAt <= lastAt && lastAt - endedAt < 1000, `ended_at ${record.ended_at} is the last stored event's time (${new Date(lastAt).toISOString()}), not the restart`);
    } finally {
      await stack.close();
    }
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await pages.close();
  }
});

test('retention removes the oldest finished runs first and never a running one; DELETE removes one', async () => {
  const stack = await startStack({ DOMCAST_RETENTION_DAYS: '0.00001' }); // 0.864 s
  const pages = await serveStatic(pagesDir);
  const run = (ms: number) => execute(stack.base, { workflow: { name: `hold ${ms}`, steps: [{ type: 'navigation', url: `${pages.url}/shop.html` }, { type: 'wait', ms }] } });
  const record = async (id: string) => (await fetch(`${stack.base}/workflows/${id}`)).status;
  try {
    const a = (await run(100)).body.session_id;
    const session = (id: string) => stack.server.deps.registry.get(id)!;
    await waitFor('a to end', () => session(a).finished);
    const b = (await run(100)).body.session_id;
    await waitFor('b to end', () => session(b).finished);
    const c = (await run(20_000)).body.session_id;
    await waitFor('c to run', () => session(c).status === 'running');
    await new Promise((r) => setTimeout(r, 1000));
    await stack.server.deps.store.flush();
    assert.deepEqual(await stack.server.deps.applyRetention(), [a, b]);
    assert.equal(await record(a), 404);
    assert.equal(await record(b), 404);
    assert.equal(await record(c), 200);

    const del = await fetch(`${stack.base}/workflows/${c}`, { method: 'DELETE' });
    assert.equal(del.status, 409);
    await fetch(`${stack.base}/workflows/${c}/cancel`, { method: 'POST' });
    assert.equal((await fetch(`${stack.base}/workflows/${c}`, { method: 'DELETE' })).status, 204);
    assert.equal(await record(c), 404);
    assert.equal((await fetch(`${stack.base}/workflows/${c}`, { method: 'DELETE' })).status, 404);
  } finally {
    await pages.close();
    await stack.close();
  }
});

test('the sessions list pages newest first and filters by status', async () => {
  const stack = await startStack();
  try {
    const ids: string[] = [];
    for (const url of ['about.html', 'nope.html', 'index.html']) {
      const { body } = await execute(stack.base, { workflow: { name: url, steps: [{ type: 'navigation', url: `${stack.site.url}/${url}` }] } });
      ids.push(body.session_id);
      await waitFor('the run to end', () => stack.server.deps.registry.get(body.session_id)!.finished);
    }
    const page1 = (await (await fetch(`${stack.base}/workflows/sessions?limit=2`)).json()) as { sessions: { session_id: string }[]; next_cursor: string };
    assert.deepEqual(page1.sessions.map((s) => s.session_id), [ids[2], ids[1]]);
    const page2 = (await (await fetch(`${stack.base}/workflows/sessions?limit=2&cursor=${page1.next_cursor}`)).json()) as { sessions: { session_id: string }[]; next_cursor: string | null };
    assert.deepEqual(page2.sessions.map((s) => s.session_id), [ids[0]]);
    assert.equal(page2.next_cursor, null);
    const failed = (await (await fetch(`${stack.base}/workflows/sessions?status=failed`)).json()) as { sessions: { session_id: string }[] };
    assert.deepEqual(failed.sessions.map((s) => s.session_id), [ids[1]]);
    const bad = await fetch(`${stack.base}/workflows/sessions?limit=0`);
    assert.equal(bad.status, 400);
  } finally {
    await stack.close();
  }
});

test('a failed run keeps its failure screenshot across a restart', async () => {
  const dataDir = freshDir();
  const first = await startStack({ DOMCAST_DATA_DIR: dataDir });
  let id: string;
  try {
    const { body } = await execute(first.base, {
      workflow: { name: 'broken', steps: [{ type: 'navigation', url: `${first.site.url}/index.html` }, { type: 'click', cssSelector: '#ghost', timeoutMs: 300 }] },
    });
    id = body.session_id;
    await waitFor('the run to fail', () => first.server.deps.registry.get(id)!.finished);
  } finally {
    await first.close();
  }
  const second = await startStack({ DOMCAST_DATA_DIR: dataDir });
  try {
    const shot = await fetch(`${second.base}/workflows/${id}/screenshot`);
    assert.equal(shot.status, 200);
    assert.equal(shot.headers.get('content-type'), 'image/png');
    assert.equal((await fetch(`${second.base}/workflows/${id}/steps/1/screenshot`)).status, 200);
    assert.equal((await fetch(`${second.base}/workflows/${id}/steps/0/screenshot`)).status, 404);
  } finally {
    await second.close();
  }
});
