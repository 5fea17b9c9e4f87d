import type { Redis } from 'ioredis';
import { errorMessage, type Logger } from '../common/index.js';
import type { RunManager } from '../runs/index.js';
import type { Session, SessionRegistry } from '../session/index.js';
import type { RecordingStore } from '../store/index.js';
import { cancelChannel, cancelKey, connectRedis, endRun, ENDED_STREAM_TTL_MS, type RunJob } from './api-node.js';
import { RunWorker } from './run-queue.js';
import { StreamPublisher } from './stream-publisher.js';
import { sessionView } from './view.js';

/** How often a worker checks that the streams it writes are still there (a Redis restart loses them). */
const VERIFY_MS = 1000;

export interface ClusterWorkerOptions {
  url: string;
  prefix: string;
  /** This worker's id in the cluster (DOMCAST_WORKER_ID, else made up at start). */
  id: string;
  /** Runs at once (MAX_CONCURRENT_SESSIONS). */
  slots: number;
  runs: RunManager;
  registry: SessionRegistry;
  store: RecordingStore;
  log: Logger;
  /** BullMQ's lock (tests shorten it). */
  lockDurationMs?: number;
  stalledIntervalMs?: number;
}

function finished(session: Session): Promise<void> {
  return new Promise((resolve) => {
    if (session.finished) return resolve();
    const check = (): void => {
      if (!session.finished) return;
      session.off('status', check);
      resolve();
    };
    session.on('status', check);
  });
}

/**
 * A worker node's part in cluster mode: takes queued runs (at most `slots` at once, each at most
 * once), runs each with the RunManager under the id the API node gave it, copies a visual run's
 * log to its Redis stream (StreamPublisher), and ends the stream once the store holds the run.
 * A cancel published by any API node stops the run here.
 */
export class ClusterWorker {
  private readonly worker: RunWorker<RunJob>;
  private readonly publishers = new Set<StreamPublisher>();
  private verifyTimer: NodeJS.Timeout | null = null;
  private closing: Promise<void> | null = null;

  private constructor(
    private readonly options: ClusterWorkerOptions,
    private readonly redis: Redis,
    private readonly subscriber: Redis,
  ) {
    this.worker = new RunWorker<RunJob>(redis, {
      url: options.url,
      prefix: options.prefix,
      id: options.id,
      slots: options.slots,
      run: (id, job, signal) => this.run(id, job, signal),
      onError: (message) => options.log.warn(message),
      refused: (id, reason) => {
        options.log.warn({ session: id, reason }, 'a run delivered again was refused');
        void endRun(redis, options.prefix, options.store, id, 'interrupted', `interrupted: ${reason}`).catch((err: unknown) => options.log.error({ err, session: id }, 'could not end a run delivered again'));
      },
      ...(options.lockDurationMs !== undefined ? { lockDurationMs: options.lockDurationMs } : {}),
      ...(options.stalledIntervalMs !== undefined ? { stalledIntervalMs: options.stalledIntervalMs } : {}),
    });
  }

  static async connect(options: ClusterWorkerOptions): Promise<ClusterWorker> {
    const redis = await connectRedis(options.url, options.log, 'worker');
    const subscriber = await connectRedis(options.url, options.log, 'worker-cancel').catch((err: unknown) => {
      redis.disconnect();
      throw err;
    });
    return new ClusterWorker(options, redis, subscriber);
  }

  /** Listens for cancels, then starts taking runs. */
  async start(): Promise<void> {
    this.subscriber.on('message', (_channel: string, sessionId: string) => this.cancel(sessionId));
    await this.subscriber.subscribe(cancelChannel(this.options.prefix));
    this.verifyTimer = setInterval(() => {
      for (const p of this.publishers) p.verify().catch(() => undefined);
    }, VERIFY_MS);
    this.verifyTimer.unref();
    await this.worker.start();
    this.options.log.info({ worker: this.options.id, slots: this.options.slots }, 'worker taking runs');
  }

  private cancel(sessionId: string): void {
    const session = this.options.registry.get(sessionId);
    if (!session || session.finished) return;
    this.options.log.info({ session: sessionId }, 'cancel asked by an API node');
    this.options.runs.cancel(session).catch((err: unknown) => this.options.log.warn({ err: errorMessage(err), session: sessionId }, 'cancel failed'));
  }

  private async run(sessionId: string, job: RunJob, signal: AbortSignal): Promise<string> {
    const { runs, log, store } = this.options;
    const session = runs.start({ ...job, sessionId });
    const publisher = job.visual
      ? new StreamPublisher(this.redis, sessionId, session.log, {
          prefix: this.options.prefix,
          view: () => JSON.stringify(sessionView(session)),
          onResync: (reason) => log.warn({ session: sessionId, reason }, 'the run’s stream starts over: its viewers get a reset'),
        })
      : null;
    const stop = (): void => {
      if (session.finished) return;
      const reason = signal.reason instanceof Error ? signal.reason.message : 'the run was taken from this worker';
      void runs.cancel(session, { status: 'interrupted', reason: `interrupted: ${reason}` }).catch(() => undefined);
    };
    signal.addEventListener('abort', stop);
    // A cancel sent before this worker had the session (the message went by): it is on record.
    if ((await this.redis.exists(cancelKey(this.options.prefix, sessionId)).catch(() => 0)) === 1) this.cancel(sessionId);
    try {
      if (publisher) {
        this.publishers.add(publisher);
        // Redis down at this instant: the run goes on, and the next verify seeds the stream.
        await publisher.start().catch((err: unknown) => log.warn({ err: errorMessage(err), session: sessionId }, 'could not start the run’s stream; retrying'));
      }
      await finished(session);
      // The recording is in the store before the stream says the run ended and starts to expire.
      await store.flush();
      await publisher?.end(session.status, ENDED_STREAM_TTL_MS);
      return session.status;
    } finally {
      signal.removeEventListener('abort', stop);
      if (publisher) {
        publisher.close();
        this.publishers.delete(publisher);
      }
    }
  }

  /** Stops taking runs and waits for those in progress (the caller cancels them when its grace ends). */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.verifyTimer) clearInterval(this.verifyTimer);
      await this.worker.close();
      this.subscriber.disconnect();
      this.redis.disconnect();
    })();
    return this.closing;
  }
}
