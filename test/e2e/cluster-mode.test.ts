import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { assetPath } from '../../src/assets/index.js';
import { serveStatic, type StaticSite } from '../../src/cli/static-site.js';
import { projectRoot } from '../../src/common/index.js';
import { demoWorkflow, waitFor, WsViewer } from '../helpers/stack.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { ClusterNode, clusterEnv, OwnRedis, type ClusterSettings } from '../helpers/cluster-nodes.js';

/**
 * Cluster mode as it is deployed: API nodes (`domcast serve`) and workers (`domcast worker`) as
 * separate processes of the built CLI, on a real Redis and the real PostgreSQL of 127.0.0.1
 * (.ci/run installs and starts them when missing). The Redis is a redis-server of this file's own,
 * on a free port, so that it can be restarted mid-run; the database is this file's own too.
 */
const prefix = `dc-mode-${randomBytes(4).toString('hex')}`;
const redis = new OwnRedis();
const nodes = new Set<ClusterNode>();
let settings: ClusterSettings;
let database: TestDatabase;
let site: StaticSite;

/** A node of this file's cluster (stopped at the end). */
async function start(name: string, args: string[], ready: string, env: Record<string, string> = {}): Promise<ClusterNode> {
  const node = await ClusterNode.start(settings, name, args, ready, env);
  nodes.add(node);
  return node;
}

type Run = { status: string; error: string | null; events: { last_seq: number } };

function contiguous(viewer: WsViewer): void {
  const seqs = viewer.received.map((r) => r.seq);
  seqs.forEach((seq, i) => {
    if (i > 0) assert.equal(seq, seqs[i - 1]! + 1, `seq ${seq} follows ${seqs[i - 1]} (no gap, no duplicate)`);
  });
}

const longWorkflow = (url: string) => ({
  name: 'cluster long run',
  steps: [
    { type: 'navigation', url: `${url}/index.html` },
    { type: 'input', cssSelector: '#username', value: 'ada' },
    { type: 'wait', ms: 20_000 },
  ],
});

let a: ClusterNode;
let b: ClusterNode;
let worker: ClusterNode;

before(async () => {
  await redis.start();
  database = await createTestDatabase('e2e_cluster');
  settings = { redisUrl: redis.url, databaseUrl: database.url, prefix };
  site = await serveStatic(join(projectRoot, 'demo', 'site'));
  // The first node brings the schema up; the others start beside it.
  a = await start('api-a', ['serve'], 'domcast listening');
  [b, worker] = await Promise.all([start('api-b', ['serve'], 'domcast listening'), start('worker-1', ['worker'], 'worker taking runs', { BROWSER_ISOLATION: 'run' })]);
});

after(async () => {
  await Promise.all([...nodes].map((n) => n.stop()));
  await site.close();
  await database.drop();
  await redis.kill();
});

describe('cluster mode: API nodes and workers as separate processes on Redis and PostgreSQL', () => {
  test('a run started on node A is watched live from node B (and by a late joiner there), then exported from node A', async () => {
    const answer = await a.execute({ workflow: demoWorkflow(site.url, { midWaitMs: 600, holdMs: 1200 }), inputs: { user: 'ada' }, visual_enabled: true });
    assert.equal(answer.status, 202, JSON.stringify(answer.body));
    assert.equal(answer.body.status, 'queued');
    const id = answer.body.session_id;
    // Any node knows the run at once, from the store.
    assert.equal((await b.get<Run>(`/workflows/${id}`)).status, 'queued');
    const live = await WsViewer.open(b.streamUrl(answer.body.visual_stream_url!));
    await waitFor('the page on node B', () => live.received.some((r) => r.event.type === 2), 30_000);
    const late = await WsViewer.open(b.streamUrl(answer.body.visual_stream_url!));
    await Promise.all([live.closed, late.closed]);
    assert.ok(live.ended() && late.ended(), 'both viewers were told the run ended');
    assert.equal(live.frames.findLast((f) => f.t === 'end')?.status, 'succeeded');
    contiguous(live);
    contiguous(late);
    assert.equal(live.received[0]!.seq, 1);
    // The late joiner started at a checkpoint (Meta, then FullSnapshot) and ended where the first viewer did.
    assert.equal(late.received[0]!.event.type, 4);
    assert.equal(late.received[1]!.event.type, 2);
    assert.equal(late.lastSeq, live.lastSeq);
    // One epoch from the queue on: the worker took over the stream the API node wrote for the queued run.
    assert.equal(late.hello()!.epoch, live.hello()!.epoch);
    const run = await waitFor('the stored run', async () => {
      const r = await a.get<Run>(`/workflows/${id}`);
      return r.status === 'succeeded' ? r : null;
    });
    assert.equal(run.events.last_seq, live.lastSeq);
    // The recording, exported from node A, is what node B's viewer was sent, event for event.
    const exported = await a.get<unknown[]>(`/workflows/${id}/events`);
    assert.equal(exported.length, live.received.length);
    assert.deepEqual(exported.map((e) => JSON.stringify(e)), live.received.map((r) => r.json));
    // Once a worker took it, the run's workflow and inputs are no longer in Redis.
    const job = new Redis(redis.url);
    assert.equal(await job.hget(`${prefix}:q:runs:${id}`, 'data'), '{}');
    job.disconnect();
    // The worker captured the page's stylesheet into PostgreSQL (a browser of its own per run): node B serves it to viewers.
    const css = await fetch(`${b.url}${assetPath(id, `${site.url}/style.css`)}`);
    assert.equal(css.status, 200);
    assert.match(css.headers.get('content-type') ?? '', /text\/css/);
    const health = await a.get<{ cluster: { live_workers: number; queue_waiting: number } | null }>('/health/visual');
    assert.equal(health.cluster?.live_workers, 1);
    assert.equal(health.cluster?.queue_waiting, 0);
  });

  test('the containers\' health checks: `domcast health` asks the server on PORT, `health --worker` the worker\'s heartbeat in Redis', async () => {
    const cli = (args: string[], env: Record<string, string>) =>
      new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [join(projectRoot, 'dist', 'cli.js'), ...args], { cwd: projectRoot, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
        let stderr = '';
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('exit', (code) => resolve({ code, stderr }));
      });
    const cluster = clusterEnv(settings);
    const [api, nobody, live, other] = await Promise.all([
      cli(['health'], { PORT: new URL(a.url).port, HOST: '127.0.0.1' }),
      cli(['health'], { PORT: '1', HOST: '127.0.0.1' }),
      cli(['health', '--worker'], cluster),
      cli(['health', '--worker'], { ...cluster, DOMCAST_WORKER_ID: 'no-such-worker' }),
    ]);
    assert.equal(api.code, 0, api.stderr);
    assert.equal(nobody.code, 1);
    assert.match(nobody.stderr, /nothing answers on 127\.0\.0\.1:1/);
    assert.equal(live.code, 0, live.stderr);
    assert.equal(other.code, 1);
    assert.match(other.stderr, /no live worker no-such-worker in Redis \(1 live in all\)/);
  });

  test('a viewer whose API node is killed resumes on another node with since/epoch: no gap, no duplicate', async () => {
    const c = await start('api-c', ['serve'], 'domcast listening');
    // One page, typed into slowly: no new checkpoint while the viewer is away (one would mean a reset, as with one process).
    const typing = {
      name: 'cluster typing',
      steps: [
        { type: 'navigation', url: `${site.url}/index.html` },
        { type: 'input', cssSelector: '#username', value: 'ada-lovelace-of-the-analytical-engine', typeDelayMs: 120 },
        { type: 'wait', ms: 500 },
      ],
    };
    const answer = await a.execute({ workflow: typing, inputs: {}, visual_enabled: true });
    const id = answer.body.session_id;
    const first = await WsViewer.open(c.streamUrl(answer.body.visual_stream_url!));
    await waitFor('some of the page on node C', () => first.received.length > 5, 30_000);
    await c.kill();
    const cut = await first.closed;
    assert.notEqual(cut.code, 1000);
    const epoch = first.hello()!.epoch;
    const since = first.lastSeq;
    const url = new URL(b.streamUrl(answer.body.visual_stream_url!));
    url.searchParams.set('since', String(since));
    url.searchParams.set('epoch', epoch);
    const resumed = await WsViewer.open(url.toString());
    await resumed.closed;
    assert.equal(resumed.frames.some((f) => f.t === 'reset'), false, 'resumed, not reset');
    assert.equal(resumed.received[0]?.seq, since + 1);
    contiguous(resumed);
    const stored = await waitFor('the stored run to end', async () => {
      const r = await b.get<Run>(`/workflows/${id}`);
      return r.status === 'queued' || r.status === 'running' ? null : r;
    });
    assert.equal(stored.status, 'succeeded', JSON.stringify(stored).slice(0, 600));
    assert.equal(resumed.lastSeq, stored.events.last_seq);
  });

  test('kill -9 the worker mid-run: the run ends interrupted within seconds, its viewers are told, it is not run again, and another worker takes the next run', async () => {
    const answer = await b.execute({ workflow: longWorkflow(site.url), inputs: {}, visual_enabled: true });
    const id = answer.body.session_id;
    const viewer = await WsViewer.open(a.streamUrl(answer.body.visual_stream_url!));
    await waitFor('the run to be running', async () => (await a.get<Run>(`/workflows/${id}`)).status === 'running', 30_000);
    await waitFor('the page on node A', () => viewer.received.some((r) => r.event.type === 2), 30_000);
    const killedAt = Date.now();
    await worker.kill();
    const run = await waitFor('the run to end', async () => {
      const r = await a.get<Run>(`/workflows/${id}`);
      return r.status !== 'running' ? r : null;
    }, 30_000);
    const tookMs = Date.now() - killedAt;
    assert.equal(run.status, 'interrupted');
    assert.match(run.error ?? '', /worker .* stopped answering/);
    await viewer.closed;
    const end = viewer.frames.findLast((f) => f.t === 'end');
    assert.equal(end?.status, 'interrupted', 'the viewer was told');
    contiguous(viewer);
    const health = await a.get<{ cluster: { live_workers: number } }>('/health/visual');
    assert.equal(health.cluster.live_workers, 0);
    // Another worker (an API node and a worker in one process): it takes the next run, and never the interrupted one.
    // Queued while no worker lives: it waits, and says so.
    const next = await a.execute({ workflow: { name: 'after the kill', steps: [{ type: 'navigation', url: `${site.url}/index.html` }] }, inputs: {}, visual_enabled: false });
    assert.deepEqual((next.body as { warnings?: string[] }).warnings, ['no worker is running (cluster mode): the run waits in the queue until one starts']);
    const second = await start('api-and-worker', ['serve', '--with-worker'], 'worker taking runs');
    await waitFor('the next run to succeed', async () => (await b.get<Run>(`/workflows/${next.body.session_id}`)).status === 'succeeded', 30_000);
    assert.equal((await a.get<Run>(`/workflows/${id}`)).status, 'interrupted');
    assert.equal(second.lines.some((l) => l.session === id), false, 'the interrupted run was not handed to the new worker');
    console.log(`# worker killed: run interrupted after ${tookMs} ms`);
    worker = second;
  });

  test('a Redis restart mid-run: viewers are closed with 1012 and, resuming, get an explicit reset under a new epoch; the run goes on', async () => {
    const answer = await a.execute({ workflow: demoWorkflow(site.url, { midWaitMs: 3000, holdMs: 1500 }), inputs: { user: 'ada' }, visual_enabled: true });
    const id = answer.body.session_id;
    const viewer = await WsViewer.open(b.streamUrl(answer.body.visual_stream_url!));
    await waitFor('the page on node B', () => viewer.received.some((r) => r.event.type === 2), 30_000);
    const before = viewer.hello()!.epoch;
    await redis.kill();
    await redis.start();
    const closed = await viewer.closed;
    assert.equal(closed.code, 1012, `closed with ${closed.code} ${closed.reason}`);
    contiguous(viewer);
    const url = new URL(b.streamUrl(answer.body.visual_stream_url!));
    url.searchParams.set('since', String(viewer.lastSeq));
    url.searchParams.set('epoch', before);
    const resumed = await WsViewer.open(url.toString());
    const hello = await waitFor('hello', () => resumed.hello());
    assert.notEqual(hello.epoch, before, 'a new epoch');
    await waitFor('a reset', () => resumed.frames.find((f) => f.t === 'reset'));
    assert.equal(resumed.frames.filter((f) => f.t === 'events' || f.t === 'reset')[0]?.t, 'reset', 'the first events come as a reset, never as a silent continuation');
    await resumed.closed;
    contiguous(resumed);
    assert.equal(resumed.frames.findLast((f) => f.t === 'end')?.status, 'succeeded');
    const stored = await waitFor('the stored run', async () => {
      const r = await a.get<Run>(`/workflows/${id}`);
      return r.status === 'succeeded' ? r : null;
    });
    assert.equal(resumed.lastSeq, stored.events.last_seq);
  });

  test('cancel reaches the worker running the run, from any node; a queued run is taken off the queue', async () => {
    // Two slots on the one worker: the third run waits in the queue.
    const answers = await Promise.all([1, 2, 3].map(() => a.execute({ workflow: longWorkflow(site.url), inputs: {}, visual_enabled: true })));
    const ids = answers.map((x) => x.body.session_id);
    const statuses = async () => Promise.all(ids.map(async (id) => (await b.get<Run>(`/workflows/${id}`)).status));
    await waitFor('two runs running, one queued', async () => {
      const s = await statuses();
      return s.filter((x) => x === 'running').length === 2 && s.includes('queued');
    }, 30_000);
    const queued = ids[(await statuses()).indexOf('queued')]!;
    // Take control needs the page, which is on a worker: not yet in cluster mode, and said so.
    const control = await fetch(`${a.url}/workflows/${ids[0]}/control`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(control.status, 501);
    assert.match(((await control.json()) as { error: string }).error, /take control is not available in cluster mode yet/);
    const res = await fetch(`${b.url}/workflows/${queued}/cancel`, { method: 'POST' });
    assert.equal(res.status, 202);
    assert.equal(((await res.json()) as { status: string }).status, 'cancelled');
    const stored = await a.get<Run>(`/workflows/${queued}`);
    assert.equal(stored.status, 'cancelled');
    assert.equal(stored.error, 'cancelled before it started');
    for (const id of ids.filter((x) => x !== queued)) {
      const r = await fetch(`${b.url}/workflows/${id}/cancel`, { method: 'POST' });
      assert.equal(r.status, 202);
    }
    await waitFor('the running ones cancelled by their worker', async () => (await statuses()).every((x) => x === 'cancelled'), 15_000);
    const again = await fetch(`${a.url}/workflows/${ids[0]}/cancel`, { method: 'POST' });
    assert.equal(again.status, 409);
    assert.equal(((await again.json()) as { code: string }).code, 'ALREADY_ENDED');
    // Not run after all: the queued one never reached a worker.
    assert.equal(worker.lines.some((l) => l.session === queued && l.msg === 'run started'), false);
  });

  test('SIGTERM stops a worker gracefully: no new run, the one in progress gets the grace period, then ends cancelled; the process exits 0', async () => {
    await worker.stop();
    nodes.delete(worker);
    const last = await start('worker-3', ['worker'], 'worker taking runs', { SHUTDOWN_GRACE_MS: '1000' });
    const answer = await a.execute({ workflow: longWorkflow(site.url), inputs: {}, visual_enabled: true });
    const id = answer.body.session_id;
    await waitFor('the run to be running', async () => (await a.get<Run>(`/workflows/${id}`)).status === 'running', 30_000);
    const exited = new Promise<number | null>((resolve) => last.child.once('exit', (code) => resolve(code)));
    last.child.kill('SIGTERM');
    assert.equal(await exited, 0);
    const run = await a.get<Run>(`/workflows/${id}`);
    assert.equal(run.status, 'cancelled');
    assert.equal(run.error, 'cancelled: the worker is shutting down');
    const health = await a.get<{ cluster: { live_workers: number } }>('/health/visual');
    assert.equal(health.cluster.live_workers, 0, 'it left the cluster');
  });
});
