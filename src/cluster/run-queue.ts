import { randomUUID } from 'node:crypto';
import { Queue, QueueEvents, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';

/**
 * Runs as BullMQ jobs, delivered at most once.
 *
 * A browser run has side effects (a form sent, an order placed): BullMQ's default, putting a job
 * whose worker stopped renewing its lock back in the queue, would run it again unseen. Here:
 * - a job is tried once (`attempts: 1`) and a stalled one is failed, not re-queued (`maxStalledCount: 0`);
 * - before it starts a run, a worker claims the session (SET NX): a job delivered again, whatever
 *   the reason, finds the claim taken and ends `interrupted` instead of running twice;
 * - each worker keeps a heartbeat in Redis (`workers`, a sorted set scored by when each heartbeat
 *   lapses, in Redis's own clock), and the runs in progress name their worker (`runs`). Any node's
 *   sweep finds the runs of a worker whose heartbeat lapsed and takes each one once (HDEL), to end
 *   it `interrupted` with the reason: within seconds, not after BullMQ's 30 s lock.
 */

export interface RunQueueOptions {
  /** Redis URL (DOMCAST_REDIS_URL). */
  url: string;
  /** Key prefix shared by every node of the cluster. */
  prefix: string;
}

/** What a worker was handed, and what became of the run. */
export type RunOutcome = { ran: true; status: string } | { ran: false; reason: string };

export const HEARTBEAT_MS = 1000;
/** A worker whose heartbeat is older than this is taken for dead. */
export const HEARTBEAT_LAPSE_MS = 3500;
const CLAIM_TTL_S = 7 * 86_400;

const queueName = 'runs';

/** KEYS: workers. ARGV: worker id, lapse ms. Scores by Redis's clock, so nodes' clocks need not agree. */
const HEARTBEAT_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return now
`;

/**
 * KEYS: workers, runs, swept. → flat list of session id, worker id: runs whose worker's heartbeat
 * lapsed, each taken off `runs` (so one sweep gets it) and noted in `swept` (kept a day), so that a
 * worker that only stalled knows its run was taken, and one whose entry Redis lost (a restart) does not.
 */
const SWEEP_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local runs = redis.call('HGETALL', KEYS[2])
local out = {}
for i = 1, #runs, 2 do
  local score = redis.call('ZSCORE', KEYS[1], runs[i + 1])
  if not score or tonumber(score) < now then
    redis.call('HDEL', KEYS[2], runs[i])
    redis.call('ZADD', KEYS[3], now, runs[i])
    table.insert(out, runs[i])
    table.insert(out, runs[i + 1])
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 60000)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - 86400000)
return out
`;

export interface RunKeys {
  workers: string;
  runs: string;
  /** Runs a sweep took from their worker, scored by when. */
  swept: string;
  claim: (sessionId: string) => string;
}

export function runKeys(prefix: string): RunKeys {
  return { workers: `${prefix}:workers`, runs: `${prefix}:runs`, swept: `${prefix}:swept`, claim: (id) => `${prefix}:claim:${id}` };
}

/**
 * KEYS: claim, runs. ARGV: mark, claim TTL s, session id, worker id. → 1 when the run is this
 * worker's (claimed now, or by this very mark before), and on record in `runs` in the same step, so
 * that no instant exists in which a claimed run is not on record for the sweep; 0 when another has it.
 */
const CLAIM_SCRIPT = `
local ok = redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2], 'NX')
if not ok and redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
return 1
`;

type Commands = Redis & {
  domcastHeartbeat(workers: string, id: string, lapse: number): Promise<number>;
  domcastSweep(workers: string, runs: string, swept: string): Promise<string[]>;
  domcastClaim(claim: string, runs: string, mark: string, ttlS: number, sessionId: string, workerId: string): Promise<number>;
};

function withRunCommands(redis: Redis): Commands {
  const r = redis as Commands;
  if (typeof r.domcastHeartbeat !== 'function') {
    redis.defineCommand('domcastHeartbeat', { numberOfKeys: 1, lua: HEARTBEAT_SCRIPT });
    redis.defineCommand('domcastSweep', { numberOfKeys: 3, lua: SWEEP_SCRIPT });
    redis.defineCommand('domcastClaim', { numberOfKeys: 2, lua: CLAIM_SCRIPT });
  }
  return r;
}

/** The API nodes' side: enqueue runs, see the queue, find runs whose worker died. */
export class RunQueue<T extends object> {
  private readonly queue: Queue<T>;
  private readonly keys: RunKeys;
  private readonly redis: Commands;

  private events: QueueEvents | null = null;
  private readonly url: string;
  private readonly prefix: string;

  constructor(redis: Redis, options: RunQueueOptions) {
    this.redis = withRunCommands(redis);
    this.keys = runKeys(options.prefix);
    this.url = options.url;
    this.prefix = `${options.prefix}:q`;
    this.queue = new Queue<T>(queueName, { connection: { url: options.url }, prefix: this.prefix });
  }

  /**
   * Calls `listener` with each run whose job failed (BullMQ failed it: its worker stalled past the
   * lock before it had started the run, or threw). Every node hears each one.
   */
  onFailed(listener: (sessionId: string, reason: string) => void): void {
    this.events ??= new QueueEvents(queueName, { connection: { url: this.url }, prefix: this.prefix });
    this.events.on('failed', ({ jobId, failedReason }) => listener(jobId, failedReason));
  }

  /** Queues the run of `sessionId` for the first worker with a free slot. */
  async enqueue(sessionId: string, data: T): Promise<void> {
    await this.queue.add(queueName as never, data as never, {
      jobId: sessionId,
      attempts: 1,
      removeOnComplete: { age: 3600, count: 10_000 },
      removeOnFail: { age: 3600, count: 10_000 },
    });
  }

  /** Takes a run that no worker has started off the queue; false when one has (cancel it through its worker). */
  async removeWaiting(sessionId: string): Promise<boolean> {
    // Claimed: a worker started it (it may have died since, its lock lapsed: remove() would not refuse it).
    if ((await this.redis.exists(this.keys.claim(sessionId))) === 1) return false;
    const job = await this.queue.getJob(sessionId);
    if (!job || !(await job.isWaiting())) return false;
    // A job a worker took since is locked: remove() refuses it.
    return job.remove().then(
      () => true,
      () => false,
    );
  }

  /** Runs waiting for a slot, runs in progress, and workers whose heartbeat is current. */
  async figures(): Promise<{ waiting: number; active: number; workers: number }> {
    const [counts, workers] = await Promise.all([
      this.queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active'),
      this.liveWorkers(),
    ]);
    return { waiting: (counts.waiting ?? 0) + (counts.prioritized ?? 0) + (counts.delayed ?? 0), active: counts.active ?? 0, workers: workers.length };
  }

  async liveWorkers(): Promise<string[]> {
    const time = await this.redis.time();
    const now = Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000);
    return this.redis.zrangebyscore(this.keys.workers, now, '+inf');
  }

  /** The runs whose worker died since the last sweep, each handed to one caller only. */
  async sweep(): Promise<{ sessionId: string; workerId: string }[]> {
    const flat = await this.redis.domcastSweep(this.keys.workers, this.keys.runs, this.keys.swept);
    const out: { sessionId: string; workerId: string }[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) out.push({ sessionId: flat[i]!, workerId: flat[i + 1]! });
    return out;
  }

  async close(): Promise<void> {
    await this.events?.close();
    await this.queue.close();
  }
}

export interface RunWorkerOptions<T> extends RunQueueOptions {
  /** This worker's id, unique in the cluster. */
  id: string;
  /** Runs at once (MAX_CONCURRENT_SESSIONS). */
  slots: number;
  /**
   * Runs one session; resolves with its final status. `signal` aborts when a sweep took the run
   * from this worker (its heartbeat lapsed: a long stall): the run was ended `interrupted` elsewhere
   * and must stop.
   */
  run: (sessionId: string, data: T, signal: AbortSignal) => Promise<string>;
  /** Told of what went wrong on the way that does not stop the run. */
  onError?: (message: string) => void;
  /** A job for a session already claimed (delivered again): not run; the caller ends it `interrupted`. */
  refused?: (sessionId: string, reason: string) => void;
  /** BullMQ's lock; a stalled job is failed once it lapses (tests shorten it). */
  lockDurationMs?: number;
  stalledIntervalMs?: number;
}

/** A worker node's side: takes runs from the queue, at most `slots` at once, each at most once. */
export class RunWorker<T extends object> {
  private readonly worker: Worker<T, RunOutcome>;
  private readonly keys: RunKeys;
  private readonly redis: Commands;
  private heartbeat: NodeJS.Timeout | null = null;
  private readonly active = new Map<string, AbortController>();
  /** When Redis last took this worker's heartbeat: past the lapse, the sweep may have ended its runs. */
  private lastBeat = 0;

  constructor(redis: Redis, private readonly options: RunWorkerOptions<T>) {
    this.redis = withRunCommands(redis);
    this.keys = runKeys(options.prefix);
    this.worker = new Worker<T, RunOutcome>(queueName, (job) => this.process(job), {
      connection: { url: options.url, maxRetriesPerRequest: null },
      prefix: `${options.prefix}:q`,
      concurrency: options.slots,
      maxStalledCount: 0,
      lockDuration: options.lockDurationMs ?? 30_000,
      stalledInterval: options.stalledIntervalMs ?? 30_000,
      autorun: false,
    });
  }

  /** Beats once (so sweeps see this worker before it takes a run), then takes runs. */
  async start(): Promise<void> {
    await this.beat();
    let beating = false;
    this.heartbeat = setInterval(() => {
      // Cut off from Redis past the lapse (a beat failing, or not answered at all): any node's sweep
      // may have ended these runs; they stop here too.
      if (Date.now() - this.lastBeat > HEARTBEAT_LAPSE_MS) this.abortAll(`worker ${this.options.id} lost Redis for more than ${HEARTBEAT_LAPSE_MS} ms`);
      if (beating) return;
      beating = true;
      this.beat()
        .catch(() => undefined)
        .finally(() => (beating = false));
    }, HEARTBEAT_MS);
    this.heartbeat.unref();
    void this.worker.run();
    await this.worker.waitUntilReady();
  }

  /** Renews the heartbeat, and stops the runs a sweep took from this worker meanwhile. */
  private abortAll(reason: string): void {
    for (const controller of this.active.values()) controller.abort(new Error(reason));
  }

  private async beat(): Promise<void> {
    const sent = Date.now();
    await this.redis.domcastHeartbeat(this.keys.workers, this.options.id, HEARTBEAT_LAPSE_MS);
    this.lastBeat = sent;
    if (this.active.size === 0) return;
    const ids = [...this.active.keys()];
    const owners = await this.redis.hmget(this.keys.runs, ...ids);
    for (const [i, id] of ids.entries()) {
      if (owners[i] === this.options.id) continue;
      // Swept (this worker stalled past the lapse): another node ended it; it stops here too.
      if ((await this.redis.zscore(this.keys.swept, id)) !== null) {
        this.active.get(id)?.abort(new Error(`run ${id} was taken from worker ${this.options.id}: its heartbeat lapsed`));
      } else if (this.active.has(id)) {
        // Not swept, yet not on record: Redis lost it (it restarted without persistence). Still ours.
        await this.redis.hset(this.keys.runs, id, this.options.id);
      }
    }
  }

  private async process(job: Job<T, RunOutcome>): Promise<RunOutcome> {
    const sessionId = job.id ?? '';
    // Our own mark: a SET NX sent again after a dropped connection finds it, and is ours.
    const mark = `${this.options.id}:${randomUUID()}`;
    const claimed = await this.redis.domcastClaim(this.keys.claim(sessionId), this.keys.runs, mark, CLAIM_TTL_S, sessionId, this.options.id);
    if (claimed !== 1) {
      const reason = `run ${sessionId} was delivered again after it had started: not run twice`;
      this.options.refused?.(sessionId, reason);
      return { ran: false, reason };
    }
    // The run is the worker's now: its workflow and inputs (secrets among them) leave Redis.
    const data = job.data;
    await job.updateData({} as T).catch((err: unknown) => this.options.onError?.(`could not empty the job of run ${sessionId} in Redis: ${String(err)}`));
    const controller = new AbortController();
    /** Off the record; false when a sweep had taken it (a record lost with a Redis restart is not a sweep). */
    const release = async (): Promise<boolean> => (await this.redis.hdel(this.keys.runs, sessionId)) === 1 || (await this.redis.zscore(this.keys.swept, sessionId)) === null;
    try {
      this.active.set(sessionId, controller);
      const status = await this.options.run(sessionId, data, controller.signal);
      // Taken by a sweep meanwhile (this worker stalled): another node ended it `interrupted`.
      if (!(await release())) return { ran: false, reason: `run ${sessionId} was ended by a sweep while worker ${this.options.id} had stalled` };
      return { ran: true, status };
    } catch (err) {
      await release().catch(() => false);
      throw err;
    } finally {
      this.active.delete(sessionId);
    }
  }

  /** Stops taking runs, waits for those in progress, and leaves the cluster. */
  async close(): Promise<void> {
    await this.worker.close();
    if (this.heartbeat) clearInterval(this.heartbeat);
    await this.redis.zrem(this.keys.workers, this.options.id);
  }
}
