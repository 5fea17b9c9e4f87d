import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { TERMINAL_STATUSES } from '../protocol/index.js';
import type { AppDeps } from './deps.js';

/** Delivery lag buckets in seconds: from 1 ms (a quiet local page) to 10 s (a viewer far behind). */
export const LAG_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** What /metrics reads besides the app's own counters: figures only the HTTP layer sees. */
export interface HttpTally {
  /** Requests answered with a 5xx. */
  internalErrors: number;
}

type Sources = Pick<AppDeps, 'metrics' | 'hub' | 'registry' | 'runs' | 'store' | 'cluster'>;

/**
 * A Prometheus registry of its own (several servers in one process do not clash) whose metrics are
 * read from the counters the server keeps anyway, at scrape time: nothing on the hot paths but the
 * delivery-lag histogram's observe, where the latency sample is taken already.
 */
export function createPrometheus(deps: Sources, http: HttpTally): Registry {
  const { metrics, hub, registry, runs, store } = deps;
  const register = new Registry();
  collectDefaultMetrics({ register, prefix: 'domcast_' });
  const registers = [register];

  /** A counter whose value is a running total kept elsewhere. */
  const total = (name: string, help: string, read: () => number): void => {
    new Counter({
      name, help, registers,
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  };
  /** A counter with one label, its values kept elsewhere. */
  const labelled = <L extends string>(name: string, help: string, label: L, read: () => Iterable<[string, number]>): void => {
    new Counter<L>({
      name, help, registers, labelNames: [label],
      collect() {
        this.reset();
        for (const [value, n] of read()) this.inc({ [label]: value } as Record<L, string>, n);
      },
    });
  };

  new Gauge({ name: 'domcast_viewer_connections', help: 'Viewer WebSockets open now.', registers, collect() {
    this.set(hub.connectionCount);
  } });
  total('domcast_events_total', 'rrweb events accepted into session logs.', () => metrics.totalEventsProcessed);
  total('domcast_event_batches_total', 'Batches of events accepted from pages.', () => metrics.totalBatches);
  labelled('domcast_viewer_reconnections_total', 'Viewers that came back with since= (a resume): resumed in the log, or reset because the gap was gone or the epoch changed.', 'outcome', () => [
    ['resumed', hub.reconnections.total - hub.reconnections.reset],
    ['reset', hub.reconnections.reset],
  ]);
  total('domcast_viewer_sent_bytes_total', 'Bytes written to viewer sockets (on the wire, compressed).', () => hub.bytesSent);
  labelled('domcast_errors_total', 'Errors by type.', 'type', () => [
    ['rejected_event', metrics.rejectedEvents],
    ['refused_connection', hub.connectionsRefused],
    ['failed_run', metrics.runsEnded.get('failed') ?? 0],
    ['devtools_drop', metrics.devtoolsMessagesDropped],
    ['internal', http.internalErrors],
  ]);
  // Every status from the start (at 0), so that a rate over the first run of one is not lost.
  labelled('domcast_runs_finished_total', 'Runs that ended, by final status.', 'status', () => TERMINAL_STATUSES.map((status) => [status, metrics.runsEnded.get(status) ?? 0]));
  // Cluster mode: the cluster's runs and queue (deps.cluster is set once the server is ready).
  new Gauge({ name: 'domcast_runs', help: 'Runs not yet ended, by status (queued, running); the cluster\'s in cluster mode.', labelNames: ['status'], registers, async collect() {
    const counts = { queued: 0, running: 0 };
    if (deps.cluster) {
      const f = await deps.cluster.figures();
      counts.queued = f.queue_waiting;
      counts.running = f.runs_active;
    } else for (const s of registry.all()) if (s.status === 'queued' || s.status === 'running') counts[s.status]++;
    for (const [status, n] of Object.entries(counts)) this.set({ status }, n);
  } });
  new Gauge({ name: 'domcast_run_queue_depth', help: 'Runs waiting for a free slot (MAX_CONCURRENT_SESSIONS); for a worker, in cluster mode.', registers, async collect() {
    this.set(deps.cluster ? (await deps.cluster.figures()).queue_waiting : runs.queued);
  } });
  new Gauge({ name: 'domcast_cluster_live_workers', help: 'Cluster mode: workers whose heartbeat is current (0 otherwise).', registers, async collect() {
    this.set(deps.cluster ? (await deps.cluster.figures()).live_workers : 0);
  } });
  const lag = new Histogram({
    name: 'domcast_delivery_lag_seconds',
    help: "From an event's page timestamp to its hand-off to every viewer socket.",
    buckets: LAG_BUCKETS,
    registers,
  });
  metrics.latencyObserver = (ms) => lag.observe(ms / 1000);
  labelled('domcast_viewer_resets_total', 'Full snapshots sent instead of a continuation: to a viewer that fell behind and drained (lagging), or that resumed past the log (resume).', 'reason', () => [
    ['lagging', hub.backlog.resets],
    ['resume', hub.reconnections.reset],
  ]);
  total('domcast_store_events_written_total', 'Events written to the recordings store.', () => store.eventsWritten);
  new Gauge({ name: 'domcast_store_bytes', help: 'Bytes the recordings store uses (SQLite: its pages in use; PostgreSQL: the bytes of what it keeps).', registers, async collect() {
    this.set(await store.sizeBytes());
  } });
  new Gauge({ name: 'domcast_viewer_buffered_bytes', help: 'Unsent bytes queued for all viewers (as of the last 250 ms check).', registers, collect() {
    this.set(hub.backlog.bufferedBytes);
  } });
  return register;
}
