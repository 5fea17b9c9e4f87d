import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { RunQueue, RunWorker, runKeys } from '../../src/cluster/index.js';
import { ClusterApi, endRun, type EndProgress } from '../../src/cluster/api-node.js';
import { decodeEntry, streamKeys, withStreamCommands } from '../../src/cluster/stream-keys.js';
import { createLogger } from '../../src/common/index.js';
import { SessionRegistry, StreamMetrics } from '../../src/session/index.js';
import type { RecordingStore, StoredSession } from '../../src/store/index.js';

// A real Redis on 127.0.0.1 (.ci/run starts one if none is running); the tests' keys have a prefix of their own.
const REDIS_URL = process.env.DOMCAST_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * BullMQ's lock and stall check, shortened for every worker here: after one worker checks, the
 * others skip their checks for that worker's interval.
 */
const SHORT_LOCKS = { lockDurationMs: 2000, stalledIntervalMs: 1000 };

async function until<T>(probe: () => Promise<T | null | undefined | false>, what: string, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A worker node in a process of its own (test/helpers/cluster-worker.ts), and the lines it printed. */
function spawnWorker(prefix: string, id: string): { child: ChildProcess; lines: string[] } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/cluster-worker.ts'], {
    env: { ...process.env, REDIS_URL, PREFIX: prefix, WORKER_ID: id },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: string[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => lines.push(line));
  return { child, lines };
}

describe('runs as BullMQ jobs, at most once', () => {
  const prefix = `domcast-test-${randomUUID().slice(0, 8)}`;
  let redis: Redis;
  let queue: RunQueue<{ ms: number }>;
  const children: ChildProcess[] = [];

  before(() => {
    redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    queue = new RunQueue(redis, { url: REDIS_URL, prefix });
  });

  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await queue.close();
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  test('each run is taken once, by a worker with a free slot, never more runs at once than its slots', async () => {
    const ran: string[] = [];
    let running = 0;
    let most = 0;
    const worker = new RunWorker<{ ms: number }>(redis, {
      url: REDIS_URL,
      prefix,
      id: 'slots-2',
      slots: 2,
      ...SHORT_LOCKS,
      run: async (sessionId, data) => {
        ran.push(sessionId);
        most = Math.max(most, ++running);
        await new Promise((r) => setTimeout(r, data.ms));
        running--;
        return 'succeeded';
      },
    });
    const ids = Array.from({ length: 5 }, (_, i) => `batch-${i}`);
    for (const id of ids) await queue.enqueue(id, { ms: 150 });
    const before = await queue.figures();
    assert.equal(before.waiting, 5);
    assert.equal(before.workers, 0);
    await worker.start();
    assert.equal((await queue.figures()).workers, 1);
    await until(async () => ran.length === 5 && running === 0, 'five runs');
    assert.deepEqual([...ran].sort(), ids);
    assert.equal(most, 2);
    await worker.close();
    assert.equal((await queue.figures()).workers, 0, 'a worker that closed leaves at once');
  });

  test('a run delivered again after it started is not run a second time', async () => {
    const ran: string[] = [];
    const refused: string[] = [];
    await redis.set(runKeys(prefix).claim('again'), 'a-worker-that-died');
    const worker = new RunWorker<{ ms: number }>(redis, {
      url: REDIS_URL,
      prefix,
      id: 'again',
      slots: 1,
      ...SHORT_LOCKS,
      run: async (sessionId) => {
        ran.push(sessionId);
        return 'succeeded';
      },
      refused: (sessionId) => refused.push(sessionId),
    });
    await worker.start();
    await queue.enqueue('again', { ms: 0 });
    await until(async () => refused.length === 1, 'the refusal');
    assert.deepEqual(ran, []);
    await worker.close();
  });

  test('a waiting run can be taken off the queue; one a worker has started cannot', async () => {
    await queue.enqueue('waits', { ms: 0 });
    assert.equal(await queue.removeWaiting('waits'), true);
    assert.equal(await queue.removeWaiting('waits'), false, 'gone');
    await redis.set(runKeys(prefix).claim('started'), 'some-worker');
    assert.equal(await queue.removeWaiting('started'), false);
  });

  test('a run swept from a worker that stalled is stopped there and not reported as run', async () => {
    let aborted = '';
    const worker = new RunWorker<{ ms: number }>(redis, {
      url: REDIS_URL,
      prefix,
      id: 'stalls',
      slots: 1,
      ...SHORT_LOCKS,
      run: (_id, _data, signal) =>
        new Promise<string>((resolve) => {
          signal.addEventListener('abort', () => {
            aborted = String((signal.reason as Error).message);
            resolve('cancelled');
          });
        }),
    });
    await worker.start();
    await queue.enqueue('swept', { ms: 0 });
    await until(async () => (await redis.hget(runKeys(prefix).runs, 'swept')) === 'stalls', 'the run to start');
    // What a sweep does when the heartbeat lapsed: off the record, and noted as swept.
    await redis.multi().hdel(runKeys(prefix).runs, 'swept').zadd(runKeys(prefix).swept, Date.now(), 'swept').exec();
    await until(async () => aborted !== '', 'the run to be stopped at the next beat');
    assert.match(aborted, /taken from worker stalls/);
    const bull = new Queue('runs', { connection: { url: REDIS_URL }, prefix: `${prefix}:q` });
    const outcome = await until(async () => (await bull.getJob('swept'))?.returnvalue as { ran: boolean } | undefined, 'the outcome');
    assert.equal(outcome.ran, false);
    await bull.close();
    await worker.close();
  });

  test('a run swept from a dead worker whose end failed (the store down) is ended at a later sweep', async () => {
    const row: StoredSession = {
      id: 'orphan', workflow: 'w', inputs: {}, status: 'running', error: null, visual: false, createdAt: 1, startedAt: 1, endedAt: null,
      steps: [{ state: 'done' }, { state: 'running' }, { state: 'pending' }], outputs: {}, eventCount: 0, byteCount: 0,
    };
    let reads = 0;
    const saved: StoredSession[] = [];
    const store = {
      async get() {
        if (++reads === 1) throw new Error('the store is down');
        return row;
      },
      saveSession: (r: StoredSession) => void saved.push(r),
      async flush() {},
    } as unknown as RecordingStore;
    const api = await ClusterApi.connect({
      url: REDIS_URL, prefix, copies: new SessionRegistry(), metrics: new StreamMetrics(), store,
      log: createLogger('silent', 'json'), viewers: () => 0, restarted: () => undefined,
    });
    try {
      // On record for a worker with no heartbeat: the next sweep takes it, once.
      await redis.hset(runKeys(prefix).runs, 'orphan', 'gone');
      await api.sweep();
      const failedAt = Date.now();
      assert.equal(reads, 1, 'the first try read the store, and failed');
      assert.equal((await api.figures()).runs_unended, 1, 'held, and counted in health');
      await api.sweep();
      assert.ok(reads === 1 || Date.now() - failedAt >= 1000, 'not tried again before its back-off (1 s)');
      const ended = await until(async () => {
        await api.sweep();
        return saved[0];
      }, 'the run to be ended');
      assert.ok(reads >= 2, `store reads: ${reads}`);
      assert.equal(ended.status, 'interrupted');
      assert.match(ended.error ?? '', /worker gone stopped answering/);
      assert.deepEqual(ended.steps, [{ state: 'done' }, { state: 'cancelled' }, { state: 'skipped' }]);
      assert.equal(await redis.hget(runKeys(prefix).runs, 'orphan'), null);
      assert.equal(saved.length, 1, 'ended once');
      assert.equal((await api.figures()).runs_unended, 0);
    } finally {
      await api.close();
    }
  });

  test('an end tried again after Redis failed between the status event and the end marker puts one status event on the stream', async () => {
    const id = `half-${randomUUID()}`;
    const keys = streamKeys(prefix, id);
    await withStreamCommands(redis).domcastLogSeed(keys.stream, keys.meta, randomUUID(), 1, 0, '', '', 1, Date.now(), '');
    const store = { get: async () => null, saveSession: () => undefined, flush: async () => undefined } as unknown as RecordingStore;
    // A connection of its own, whose end marker fails once (as if Redis went away just then).
    const flaky = withStreamCommands(new Redis(REDIS_URL, { maxRetriesPerRequest: null }));
    const realEnd = flaky.domcastLogEnd.bind(flaky);
    let ends = 0;
    flaky.domcastLogEnd = async (...args) => {
      if (++ends === 1) throw new Error('Redis went away');
      return realEnd(...args);
    };
    try {
      const progress: EndProgress = {};
      await assert.rejects(endRun(flaky, prefix, store, id, 'interrupted', 'interrupted: test', progress), /Redis went away/);
      assert.deepEqual(progress, { stored: true, appended: true }, 'the status event went on before the end marker failed');
      await endRun(flaky, prefix, store, id, 'interrupted', 'interrupted: test', progress);
      const entries = (await redis.xrange(keys.stream, '-', '+')).map(([entryId, fields]) => decodeEntry(entryId, fields));
      const statuses = entries
        .flatMap((e) => e.events)
        .map((e) => JSON.parse(e) as { data?: { payload?: { status?: string } } })
        .filter((e) => e.data?.payload?.status === 'interrupted');
      assert.equal(statuses.length, 1, 'one status event');
      assert.deepEqual(entries.filter((e) => e.end !== null).map((e) => e.end), ['interrupted'], 'one end marker');
      assert.equal(await redis.hget(keys.meta, 'ended'), 'interrupted');
    } finally {
      flaky.disconnect();
    }
  });

  test('a run whose record Redis lost (it restarted without persistence) is not taken for swept: it goes on, on record again', async () => {
    let aborted = false;
    let finish: (status: string) => void = () => {};
    const worker = new RunWorker<{ ms: number }>(redis, {
      url: REDIS_URL,
      prefix,
      id: 'keeps',
      slots: 1,
      ...SHORT_LOCKS,
      run: (_id, _data, signal) =>
        new Promise<string>((resolve) => {
          finish = resolve;
          signal.addEventListener('abort', () => (aborted = true));
        }),
    });
    await worker.start();
    await queue.enqueue('lost', { ms: 0 });
    await until(async () => (await redis.hget(runKeys(prefix).runs, 'lost')) === 'keeps', 'the run to start');
    await redis.hdel(runKeys(prefix).runs, 'lost'); // lost, not swept: no mark in `swept`
    await until(async () => (await redis.hget(runKeys(prefix).runs, 'lost')) === 'keeps', 'the worker to put it on record again');
    assert.equal(aborted, false);
    finish('succeeded');
    const bull = new Queue('runs', { connection: { url: REDIS_URL }, prefix: `${prefix}:q` });
    const outcome = await until(async () => (await bull.getJob('lost'))?.returnvalue as { ran: boolean } | undefined, 'the outcome');
    assert.equal(outcome.ran, true);
    await bull.close();
    await worker.close();
  });

  test('kill -9 a worker mid-run: its run is swept within seconds, never run again, and another worker takes the next run', async (t) => {
    const doomed = spawnWorker(prefix, 'doomed');
    children.push(doomed.child);
    await until(async () => doomed.lines.includes('ready'), 'the worker process');
    await queue.enqueue('long', { ms: 60_000 });
    await until(async () => doomed.lines.includes('started long'), 'the run to start');
    assert.equal((await queue.figures()).active, 1);
    const killedAt = Date.now();
    doomed.child.kill('SIGKILL');
    await once(doomed.child, 'exit');

    const ran: string[] = [];
    const survivor = new RunWorker<{ ms: number }>(redis, {
      url: REDIS_URL,
      prefix,
      id: 'survivor',
      slots: 1,
      ...SHORT_LOCKS,
      run: async (sessionId, data) => {
        ran.push(sessionId);
        await new Promise((r) => setTimeout(r, data.ms));
        return 'succeeded';
      },
    });
    await survivor.start();
    const swept = await until(async () => {
      const found = await queue.sweep();
      return found.length > 0 ? found : null;
    }, 'the sweep to find the dead worker’s run');
    const sweptAfterMs = Date.now() - killedAt;
    assert.deepEqual(swept, [{ sessionId: 'long', workerId: 'doomed' }]);
    t.diagnostic(`swept ${sweptAfterMs} ms after the kill`);
    assert.ok(sweptAfterMs < 8000, `swept ${sweptAfterMs} ms after the kill`);
    assert.deepEqual(await queue.sweep(), [], 'each swept run is handed out once');

    await queue.enqueue('next', { ms: 50 });
    await until(async () => ran.includes('next'), 'the next run on the other worker');
    // BullMQ's own stall check (lock 2 s, checked every 1 s here) has had time to act on the dead job:
    // it fails it rather than queue it again.
    const bull = new Queue('runs', { connection: { url: REDIS_URL }, prefix: `${prefix}:q` });
    const state = await until(async () => {
      const s = await (await bull.getJob('long'))?.getState();
      return s === 'failed' ? s : null;
    }, 'BullMQ to fail the stalled job');
    assert.equal(state, 'failed');
    assert.match((await bull.getJob('long'))?.failedReason ?? '', /stalled/);
    await bull.close();
    assert.deepEqual(ran, ['next'], 'the dead worker’s run was not run again');
    await survivor.close();
  });
});
