import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createLogger, projectRoot } from '../../src/common/index.js';
import { serveStatic, type StaticSite } from '../../src/cli/static-site.js';
import { CloseCode } from '../../src/protocol/index.js';
import { SqliteStore } from '../../src/store/index.js';
import { WsViewer, waitFor } from '../helpers/stack.js';

/** `domcast serve` as its own process, so SIGTERM and the exit code are the real ones. */
interface Served {
  child: ChildProcess;
  base: string;
  dataDir: string;
  exited: Promise<number | null>;
  output: () => string;
}

const KEY = 'shutdown-test-key-0123456789';

async function serve(env: Record<string, string>): Promise<Served> {
  const dataDir = mkdtempSync(join(tmpdir(), 'domcast-shutdown-'));
  const child = spawn(process.execPath, [join(projectRoot, 'dist', 'cli.js'), 'serve'], {
    cwd: projectRoot,
    env: { ...process.env, PORT: '0', LOG_LEVEL: 'info', DOMCAST_DATA_DIR: dataDir, DOMCAST_API_KEY: KEY, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const line = await waitFor('the server to listen', () => out.split('\n').find((l) => l.includes('domcast listening')), 30_000);
  const base = (JSON.parse(line) as { url: string }).url;
  return { child, base, dataDir, exited, output: () => out };
}

async function api(base: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${base}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

function holdingWorkflow(site: string, holdMs: number) {
  return {
    name: 'hold',
    steps: [
      { type: 'navigation', url: `${site}/about.html` },
      { type: 'wait', ms: holdMs, description: 'hold' },
    ],
  };
}

async function startHeldRun(served: Served, site: string, holdMs: number): Promise<{ id: string; viewer: WsViewer }> {
  const run = await api(served.base, '/workflows/execute', { workflow: holdingWorkflow(site, holdMs), visual_enabled: true });
  assert.equal(run.status, 202, JSON.stringify(run.body));
  const viewer = await WsViewer.open(String(run.body.visual_stream_url));
  await waitFor('the hold step', () => viewer.frames.some((f) => f.t === 'status' && f.currentStep === 1));
  return { id: String(run.body.session_id), viewer };
}

async function stored(dataDir: string, id: string) {
  const store = new SqliteStore(dataDir, createLogger('silent'), { readOnly: true });
  try {
    return await store.get(id);
  } finally {
    await store.close();
  }
}

describe('SIGTERM', () => {
  let site: StaticSite;
  before(async () => {
    site = await serveStatic(join(projectRoot, 'demo', 'site'));
  });
  after(() => site.close());

  test('stops taking runs, lets the running one finish, closes viewers with 1001 after its end, keeps the record, exits 0', async () => {
    const served = await serve({ SHUTDOWN_GRACE_MS: '20000' });
    const { id, viewer } = await startHeldRun(served, site.url, 1500);
    served.child.kill('SIGTERM');
    await waitFor('draining', async () => (await api(served.base, '/health')).body.status === 'draining');
    const refused = await api(served.base, '/workflows/execute', { workflow: holdingWorkflow(site.url, 10), visual_enabled: true });
    assert.equal(refused.status, 503);
    assert.match(String(refused.body.error), /shutting down/);

    const closed = await viewer.closed;
    assert.equal(closed.code, CloseCode.goingAway);
    const end = viewer.frames.find((f) => f.t === 'end');
    assert.equal(end?.t === 'end' && end.status, 'succeeded', `the run finished within the grace period\n${served.output()}`);
    assert.equal(await served.exited, 0, served.output());
    const record = await stored(served.dataDir, id);
    assert.equal(record?.status, 'succeeded');
    assert.equal(record?.eventCount, viewer.lastSeq, 'every event the viewer saw was flushed to the store');
  });

  test('a queued run is cancelled when shutdown begins and never starts during the grace period', async () => {
    const served = await serve({ SHUTDOWN_GRACE_MS: '20000', MAX_CONCURRENT_SESSIONS: '1' });
    const { id: runningId, viewer } = await startHeldRun(served, site.url, 2000);
    const queued = await api(served.base, '/workflows/execute', { workflow: holdingWorkflow(site.url, 10), visual_enabled: true });
    assert.equal(queued.status, 202, JSON.stringify(queued.body));
    assert.equal(queued.body.status, 'queued', 'MAX_CONCURRENT_SESSIONS=1: the second run waits');
    const queuedId = String(queued.body.session_id);
    const queuedViewer = await WsViewer.open(String(queued.body.visual_stream_url));
    // Admitted before the signal, so it is told the status as it changes (a viewer joining an ended session gets only `end`).
    await waitFor('the queued run\'s viewer to be admitted', () => queuedViewer.hello()?.status === 'queued');
    served.child.kill('SIGTERM');

    const end = (v: WsViewer) => v.frames.find((f) => f.t === 'end');
    await queuedViewer.closed;
    const queuedEnd = end(queuedViewer);
    assert.equal(queuedEnd?.t === 'end' && queuedEnd.status, 'cancelled', `the queued run's viewer is told it was cancelled\n${served.output()}`);
    const status = queuedViewer.frames.findLast((f) => f.t === 'status');
    assert.match(String(status?.t === 'status' && status.error), /server is shutting down; this run had not started/);
    await viewer.closed;
    const runningEnd = end(viewer);
    assert.equal(runningEnd?.t === 'end' && runningEnd.status, 'succeeded', 'the running one finished within the grace period');
    assert.equal(await served.exited, 0, served.output());

    const record = await stored(served.dataDir, queuedId);
    assert.equal(record?.status, 'cancelled');
    assert.match(String(record?.error), /shutting down; this run had not started/);
    assert.equal(record?.startedAt, null, 'it never started');
    assert.deepEqual((record?.steps as { state: string }[]).map((s) => s.state), ['skipped', 'skipped'], 'it never ran a step');
    assert.equal((await stored(served.dataDir, runningId))?.status, 'succeeded');
  });

  test('past the grace period the run is cancelled, viewers are told and closed with 1001, the record says cancelled, exit 0', async () => {
    const served = await serve({ SHUTDOWN_GRACE_MS: '500' });
    const { id, viewer } = await startHeldRun(served, site.url, 60_000);
    const signalled = Date.now();
    served.child.kill('SIGTERM');
    const closed = await viewer.closed;
    assert.equal(closed.code, CloseCode.goingAway);
    assert.match(closed.reason, /shutting down/);
    const end = viewer.frames.find((f) => f.t === 'end');
    assert.equal(end?.t === 'end' && end.status, 'cancelled');
    const status = viewer.frames.findLast((f) => f.t === 'status');
    assert.match(String(status?.t === 'status' && status.error), /server is shutting down/);
    assert.equal(await served.exited, 0, served.output());
    assert.ok(Date.now() - signalled < 15_000, 'it did not wait for the 60 s step');
    const record = await stored(served.dataDir, id);
    assert.equal(record?.status, 'cancelled', 'not "interrupted": the store was flushed before exit');
    assert.equal(record?.eventCount, viewer.lastSeq);
  });
});
