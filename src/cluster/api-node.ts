import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { ConfigError, errorMessage, type Logger } from '../common/index.js';
import { CustomTag, RrwebEventType, TERMINAL_STATUSES, type SessionStatus } from '../protocol/index.js';
import type { StartRun } from '../runs/index.js';
import type { SessionRegistry, StreamMetrics } from '../session/index.js';
import type { RecordingStore, StoredSession } from '../store/index.js';
import { SessionMirrors } from './mirror.js';
import { describeRedisUrl } from './redis-url.js';
import { RunQueue } from './run-queue.js';
import { streamKeys, withStreamCommands } from './stream-keys.js';
import { StreamTail } from './stream-tail.js';
import { parseView, type SessionView } from './view.js';

/** What a queued run carries to its worker: the run as the API node prepared it (src/runs, StartRun). */
export type RunJob = Omit<StartRun, 'sessionId'>;

/** How long an ended run's stream stays in Redis (its recording is in PostgreSQL by then). */
export const ENDED_STREAM_TTL_MS = 60_000;
/** How often an API node looks for runs whose worker died. */
export const SWEEP_MS = 1000;
/** Swept runs whose end failed, kept to try again: a bound on what an outage of the store can make a node hold. */
const MAX_UNENDED = 10_000;
/** A swept run whose end failed is tried again after 1 s, then 2, 4… up to a minute apart. */
const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 60_000;

/** The pub/sub channel on which API nodes ask the worker running a session to stop it. */
export const cancelChannel = (prefix: string): string => `${prefix}:cancel`;
/** Set with each cancel: a worker that takes the run after the message went by still finds it. */
export const cancelKey = (prefix: string, sessionId: string): string => `${prefix}:cancelled:${sessionId}`;

/** A Redis connection that fails fast with a clear message when Redis cannot be reached at start. */
export async function connectRedis(url: string, log: Logger, name: string): Promise<Redis> {
  const redis = new Redis(url, { maxRetriesPerRequest: null, lazyConnect: true, connectionName: `domcast-${name}` });
  redis.on('error', (err) => log.debug({ err: errorMessage(err), redis: describeRedisUrl(url), connection: name }, 'redis connection error'));
  try {
    await Promise.race([
      redis.connect(),
      new Promise((_resolve, reject) => setTimeout(() => reject(new Error('no answer within 5 s')), 5000).unref()),
    ]);
  } catch (err) {
    redis.disconnect();
    throw new ConfigError(`cannot reach Redis at ${describeRedisUrl(url)} (DOMCAST_REDIS_URL): ${errorMessage(err)}`);
  }
  return redis;
}

export interface ClusterApiOptions {
  url: string;
  prefix: string;
  /** The copies of sessions run on workers (the hub's registry on this node). */
  copies: SessionRegistry;
  metrics: StreamMetrics;
  store: RecordingStore;
  log: Logger;
  /** Viewers of a session on this node, and closing them when its stream started over. */
  viewers: (sessionId: string) => number;
  restarted: (sessionId: string, reason: string) => void;
}

/** A step of a run that ended from outside: pending ones are skipped, the one running is cancelled. */
function endedStep<S extends { state?: string }>(s: S): S {
  return s.state === 'pending' ? { ...s, state: 'skipped' } : s.state === 'running' ? { ...s, state: 'cancelled' } : s;
}

/** A stored run with its final status. */
function ended(row: StoredSession, status: SessionStatus, error: string, at: number): StoredSession {
  const steps = (row.steps as { state?: string }[]).map(endedStep);
  return { ...row, status, error, endedAt: at, steps, detail: row.detail ? { ...row.detail, currentStep: null } : row.detail };
}

/** How far an end from outside got: an end tried again after a failure does not do a part twice. */
export interface EndProgress {
  /** The final status was handed to the store (whose write queue retries a write that fails). */
  stored?: boolean;
  /** The status event is on the stream: only the end marker is left. */
  appended?: boolean;
}

/**
 * Ends a run from outside the process that ran it (it never started, its worker died, or a job was
 * delivered again): in the store, and on its stream, where viewers get the status event and the end.
 * `progress` notes each part done, so that a try after a failure (Redis gone between the status
 * event and the end marker) does not append a second status event.
 */
export async function endRun(
  redis: Redis,
  prefix: string,
  store: RecordingStore,
  sessionId: string,
  status: SessionStatus,
  reason: string,
  progress: EndProgress = {},
): Promise<void> {
  const at = Date.now();
  if (!progress.stored) {
    const row = await store.get(sessionId);
    if (row && !TERMINAL_STATUSES.includes(row.status as SessionStatus)) {
      store.saveSession(ended(row, status, reason, at));
      await store.flush();
    }
    progress.stored = true;
  }
  const keys = streamKeys(prefix, sessionId);
  const commands = withStreamCommands(redis);
  if (!progress.appended) {
    const current = await redis.hget(keys.meta, 'view');
    const before = current ? parseView(current) : null;
    const view = before
      ? JSON.stringify({ ...before, status, error: reason, currentStep: null, endedAt: at, steps: before.steps.map(endedStep) })
      : '';
    const event = JSON.stringify({ type: RrwebEventType.Custom, timestamp: at, data: { tag: CustomTag.status, payload: { status, error: reason } } });
    const reply = await commands.domcastLogAppend(keys.stream, keys.meta, '', 1, event, String(at), 0, 0, '', view);
    // No stream (a run without a viewer), or one that has ended already: nothing more to do.
    if (reply[0] !== 'ok') return;
    progress.appended = true;
  }
  await commands.domcastLogEnd(keys.stream, keys.meta, status, '', ENDED_STREAM_TTL_MS);
}

/** A swept run whose end failed, and when to try it again. */
interface Unended {
  reason: string;
  progress: EndProgress;
  tries: number;
  nextAt: number;
}

/**
 * An API node's part in cluster mode: it queues runs for the workers, follows the streams of the
 * sessions its viewers watch (SessionMirrors), asks workers to cancel, and ends `interrupted` the
 * runs of workers that died (the sweep, every SWEEP_MS, shared by all API nodes: each run is
 * swept by one of them).
 */
export class ClusterApi {
  readonly queue: RunQueue<RunJob>;
  readonly mirrors: SessionMirrors;
  private readonly tail: StreamTail;
  private sweepTimer: NodeJS.Timeout | null = null;
  private sweeping: Promise<void> | null = null;
  runsInterrupted = 0;
  /**
   * Runs a sweep took whose end failed (the store or Redis answered with an error): the sweep took
   * them off the record, so no other sweep will; this node tries each again at a later sweep,
   * backing off (RETRY_FIRST_MS, doubling up to RETRY_MAX_MS).
   */
  private readonly unended = new Map<string, Unended>();

  private constructor(
    private readonly options: ClusterApiOptions,
    private readonly redis: Redis,
    private readonly blocking: Redis,
  ) {
    this.queue = new RunQueue<RunJob>(redis, { url: options.url, prefix: options.prefix });
    this.tail = new StreamTail(redis, blocking, options.prefix, (err) => options.log.warn({ err: errorMessage(err) }, 'following the runs’ streams: Redis failed; retrying'));
    this.mirrors = new SessionMirrors({
      tail: this.tail,
      registry: options.copies,
      metrics: options.metrics,
      viewers: options.viewers,
      restarted: options.restarted,
      log: options.log,
    });
  }

  static async connect(options: ClusterApiOptions): Promise<ClusterApi> {
    const redis = await connectRedis(options.url, options.log, 'api');
    const blocking = await connectRedis(options.url, options.log, 'api-tail').catch((err: unknown) => {
      redis.disconnect();
      throw err;
    });
    const api = new ClusterApi(options, redis, blocking);
    // A job BullMQ failed before any worker started its run (its worker stalled, or threw first): it
    // ends here rather than stay `queued`. A run that started is the sweep's (its worker's heartbeat).
    api.queue.onFailed((sessionId, reason) => {
      void (async () => {
        const row = await options.store.get(sessionId);
        if (row?.status !== 'queued') return;
        await api.end(sessionId, 'interrupted', `interrupted: the run's job failed before a worker started it (${reason.slice(0, 200)}); it is not run again`);
      })().catch((err: unknown) => options.log.error({ err, session: sessionId }, 'could not end a run whose job failed'));
    });
    api.sweepTimer = setInterval(() => void api.sweep(), SWEEP_MS);
    api.sweepTimer.unref();
    return api;
  }

  /**
   * Queues a run: its `queued` row goes to the store first (every node sees it at once), then,
   * for a visual run, an empty stream a viewer can wait on, then the job.
   */
  async enqueue(sessionId: string, job: RunJob, row: StoredSession, view: SessionView): Promise<void> {
    this.options.store.saveSession(row);
    await this.options.store.flush();
    try {
      if (job.visual) {
        const keys = streamKeys(this.options.prefix, sessionId);
        await withStreamCommands(this.redis).domcastLogSeed(keys.stream, keys.meta, randomUUID(), 1, 0, '', '', 1, Date.now(), JSON.stringify(view));
      }
      await this.queue.enqueue(sessionId, job);
    } catch (err) {
      // Never queued: its record and its stream say so, rather than `queued` for ever.
      await this.end(sessionId, 'failed', `could not queue the run: ${errorMessage(err)}`).catch(() => undefined);
      throw err;
    }
  }

  /**
   * Stops a run: one no worker took yet leaves the queue and ends `cancelled` here; one running is
   * stopped by its worker (told over pub/sub). Resolves with the status the store then holds.
   */
  async cancel(sessionId: string): Promise<'cancelled' | 'running'> {
    if (await this.queue.removeWaiting(sessionId)) {
      await this.end(sessionId, 'cancelled', 'cancelled before it started');
      return 'cancelled';
    }
    await this.redis.set(cancelKey(this.options.prefix, sessionId), '1', 'EX', 86_400);
    await this.redis.publish(cancelChannel(this.options.prefix), sessionId);
    return 'running';
  }

  /** Ends a swept run `interrupted`, or keeps it to try again at a later sweep. */
  private async endSwept(sessionId: string, reason: string): Promise<void> {
    const held = this.unended.get(sessionId);
    const progress = held?.progress ?? {};
    try {
      await this.end(sessionId, 'interrupted', reason, progress);
      this.unended.delete(sessionId);
      if (held) this.options.log.info({ session: sessionId, tries: held.tries + 1 }, 'a run of a dead worker is ended at last');
    } catch (err) {
      if (!held && this.unended.size >= MAX_UNENDED) {
        this.options.log.error({ err, session: sessionId }, `could not end a run of a dead worker, and ${MAX_UNENDED} others wait already: it stays as it is`);
        return;
      }
      const tries = (held?.tries ?? 0) + 1;
      const waitMs = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** (tries - 1));
      this.unended.set(sessionId, { reason, progress, tries, nextAt: Date.now() + waitMs });
      this.options.log.error({ err, session: sessionId, tries }, `could not end a run of a dead worker; trying again in ${waitMs / 1000} s`);
    }
  }

  /** Ends a run that its worker will not end (it never started, or its worker died). */
  end(sessionId: string, status: SessionStatus, reason: string, progress?: EndProgress): Promise<void> {
    return endRun(this.redis, this.options.prefix, this.options.store, sessionId, status, reason, progress);
  }

  /** Ends `interrupted` each run whose worker's heartbeat lapsed (this node got it from the sweep: no other did). */
  sweep(): Promise<void> {
    this.sweeping ??= (async () => {
      try {
        // Fresh ones first: held runs whose ends fail again do not hold up new ones. (A store or Redis
        // that hangs rather than fails holds up the whole sweep: there is no timeout.)
        for (const { sessionId, workerId } of await this.queue.sweep()) {
          const reason = `interrupted: worker ${workerId} stopped answering while the run was in progress; it is not run again (a browser run may have had effects)`;
          this.options.log.warn({ session: sessionId, worker: workerId }, 'a worker died during a run: it ends interrupted');
          this.runsInterrupted++;
          await this.endSwept(sessionId, reason);
        }
        const now = Date.now();
        for (const [sessionId, held] of [...this.unended]) if (held.nextAt <= now) await this.endSwept(sessionId, held.reason);
      } catch (err) {
        this.options.log.warn({ err: errorMessage(err) }, 'the sweep for dead workers failed; next try in a second');
      } finally {
        this.sweeping = null;
      }
    })();
    return this.sweeping;
  }

  /** What /health/visual reports of the cluster. */
  async figures(): Promise<{ queue_waiting: number; runs_active: number; live_workers: number; copies_followed: number; runs_interrupted: number; runs_unended: number }> {
    const f = await this.queue.figures();
    return {
      queue_waiting: f.waiting,
      runs_active: f.active,
      live_workers: f.workers,
      copies_followed: this.mirrors.following,
      runs_interrupted: this.runsInterrupted,
      runs_unended: this.unended.size,
    };
  }

  async close(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    await this.sweeping;
    if (this.unended.size > 0) {
      // No other node knows of them (the sweep took them off the record): say which stay unended.
      const sessions = [...this.unended.keys()];
      this.options.log.error(
        { sessions: sessions.slice(0, 100), count: sessions.length },
        `closing with ${sessions.length} run(s) of dead workers not ended (the store or Redis failed): they stay as the store has them`,
      );
      this.unended.clear();
    }
    this.mirrors.close();
    await this.tail.close();
    await this.queue.close();
    this.redis.disconnect();
    this.blocking.disconnect();
  }
}
