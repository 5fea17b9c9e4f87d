import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { AssetIndex } from '../assets/index.js';
import type { ClusterWorker } from '../cluster/worker-node.js';
import { ConfigError, createLogger, type Logger } from '../common/index.js';
import type { RunManager } from '../runs/index.js';
import { SessionRegistry, StreamMetrics } from '../session/index.js';
import { createStore, track } from '../store/index.js';
import type { Config } from './config.js';
import { createRunManager } from './run-manager.js';

export interface Worker {
  /** This worker's id in the cluster. */
  readonly id: string;
  readonly log: Logger;
  readonly runs: RunManager;
  readonly registry: SessionRegistry;
  /** Opens the store, connects to Redis, and starts taking runs. */
  start(): Promise<void>;
  /** SIGTERM: no new runs; those in progress get `graceMs`, then are cancelled. */
  shutdown(graceMs: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * A worker node (cluster mode, `domcast worker`, or beside the API with `serve --with-worker`):
 * Chromium and the runs, taken from the queue the API nodes fill; recordings go to PostgreSQL,
 * events to the runs' Redis streams. It serves no HTTP.
 */
export function createWorker(config: Config, options: { log?: Logger; chromiumPath?: string; lockDurationMs?: number; stalledIntervalMs?: number } = {}): Worker {
  const cluster = config.cluster;
  if (!cluster) throw new ConfigError('domcast worker needs DOMCAST_REDIS_URL (cluster mode; see docs/CLUSTER.md)');
  const id = cluster.workerId ?? `${hostname()}-${randomUUID().slice(0, 8)}`;
  const log = (options.log ?? createLogger(config.logLevel, config.logFormat)).child({ worker: id });
  const store = createStore(config, log, { queuedElsewhere: config.cluster !== null });
  const assets = new AssetIndex(store);
  const registry = new SessionRegistry({ onCreate: (session) => track(store, session) });
  const metrics = new StreamMetrics();
  const { launcher, runs } = createRunManager(config, { log, registry, metrics, assets, chromiumPath: options.chromiumPath });
  let node: ClusterWorker | null = null;
  let closed: Promise<void> | null = null;
  return {
    id,
    log,
    runs,
    registry,
    async start() {
      await store.open();
      const { ClusterWorker } = await import('../cluster/worker-node.js');
      node = await ClusterWorker.connect({
        url: cluster.redisUrl,
        prefix: cluster.prefix,
        id,
        slots: config.maxConcurrentSessions,
        runs,
        registry,
        store,
        log,
        ...(options.lockDurationMs !== undefined ? { lockDurationMs: options.lockDurationMs } : {}),
        ...(options.stalledIntervalMs !== undefined ? { stalledIntervalMs: options.stalledIntervalMs } : {}),
      });
      await node.start();
    },
    async shutdown(graceMs) {
      const closing = node?.close();
      const settled = await Promise.race([runs.idle().then(() => true), new Promise<false>((r) => setTimeout(r, graceMs, false).unref())]);
      if (!settled) {
        log.warn({ running: registry.activeCount }, 'grace period over: cancelling the runs still going');
        await runs.cancelAll('cancelled: the worker is shutting down');
      }
      await closing;
      await this.close();
    },
    close() {
      closed ??= (async () => {
        const closing = node?.close();
        await launcher.close();
        await runs.idle();
        await closing;
        await store.close();
      })();
      return closed;
    },
  };
}
