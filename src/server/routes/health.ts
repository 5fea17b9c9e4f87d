import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { roundMs } from '../../session/index.js';
import type { AppDeps } from '../deps.js';
import { EventLoopDelayWindow } from '../event-loop-delay.js';
import { errors } from '../schemas.js';

const liveness = z.object({
  status: z.enum(['ok', 'draining']).describe('draining once shutdown began (no new runs).'),
  uptime_s: z.number(),
});

const ms = z.number().nullable();
const visualHealth = z.object({
  status: z.enum(['ok', 'disabled']).describe('disabled when VISUAL_STREAMING_ENABLED=false.'),
  active_sessions: z.number(),
  queued_sessions: z.number(),
  max_concurrent_sessions: z.number(),
  total_events_processed: z.number(),
  average_latency: ms.describe('ms from an event\'s page timestamp to its hand-off to every viewer socket, over the latest 4096 events.'),
  latency_p95: ms,
  latency_samples: z.number(),
  batches_processed: z.number(),
  events_rejected: z.number(),
  devtools_messages_dropped: z.number().describe('Messages pages made their browsers send past their bounds, dropped unread by the DevTools relay.'),
  browsers_below_share: z
    .object({ now: z.number(), since_start: z.number(), available: z.boolean() })
    .describe("Runs' browsers moved below the others for taking more than their share of a busy machine (now, and times since start); available is false where the kernel has no autogroup or /proc."),
  assets: z.object({ captured: z.number(), skipped: z.number(), bytes: z.number() }).describe('Assets the runs\' browsers captured and skipped, since start.'),
  viewers: z.number(),
  max_viewers: z.number(),
  viewers_refused: z.number(),
  viewer_buffered_bytes: z.number().describe('Unsent bytes queued for all viewers, as of the last 250 ms check.'),
  viewers_lagging: z.number(),
  viewer_resets: z.number(),
  viewer_compression: z
    .object({
      mode: z.enum(['shared', 'ws']),
      problem: z.string().nullable(),
      ws_compressed_frames: z.number(),
      against_window_frames: z.number().describe('Frames written compressed against the viewers\' window (context kept), since start.'),
      alone_frames: z.number().describe('Frames written compressed alone (a first frame, a start-over, a large frame), since start.'),
    })
    .describe("shared: each frame deflated once for all viewers; ws: the installed ws lacks what that needs (problem says what)."),
  event_buffer_size: z.number(),
  rss_bytes: z.number(),
  event_loop_delay_ms: z
    .object({ p50: z.number(), p99: z.number(), max: z.number(), window_s: z.number(), max_since_start: z.number() })
    .describe('ms over the last window (a stall shows in the window in which it ended), and the longest since start.'),
  store_events_written: z.number(),
  store_bytes: z.number(),
  uptime_s: z.number(),
  cluster: z
    .object({
      queue_waiting: z.number().describe('Runs queued for a worker.'),
      runs_active: z.number().describe('Runs in progress on the workers.'),
      live_workers: z.number().describe('Workers whose heartbeat is current.'),
      copies_followed: z.number().describe("Runs whose streams this node follows for its viewers."),
      runs_interrupted: z.number().describe('Runs this node ended interrupted since start because their worker died.'),
      runs_unended: z.number().describe('Runs of dead workers this node could not end yet (the store or Redis failed): it tries again, 1 s to a minute apart.'),
    })
    .nullable()
    .describe('Cluster mode (DOMCAST_REDIS_URL): figures for the whole cluster; active_sessions and queued_sessions are then the cluster\'s too. Null otherwise.'),
});

export function registerHealth(fastify: FastifyInstance, deps: AppDeps): void {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const eventLoopDelay = new EventLoopDelayWindow();
  app.addHook('onClose', async () => eventLoopDelay.stop());

  app.get('/health', { config: { access: 'public' }, schema: { tags: ['health'], summary: 'Liveness', response: { 200: liveness, ...errors } } }, async () => ({ status: deps.lifecycle.draining ? ('draining' as const) : ('ok' as const), uptime_s: Math.round((Date.now() - deps.startedAt) / 1000) }));

  app.get('/health/visual', { schema: { tags: ['health'], summary: 'Streaming, store and process figures', response: { 200: visualHealth, ...errors } } }, async () => {
    const { metrics, registry, hub, config } = deps;
    const cluster = deps.cluster ? await deps.cluster.figures() : null;
    return {
      status: config.visualStreamingEnabled ? ('ok' as const) : ('disabled' as const),
      active_sessions: cluster ? cluster.runs_active : registry.activeCount,
      queued_sessions: cluster ? cluster.queue_waiting : deps.runs.queued,
      cluster,
      max_concurrent_sessions: config.maxConcurrentSessions,
      total_events_processed: metrics.totalEventsProcessed,
      average_latency: roundMs(metrics.latency.average()),
      latency_p95: roundMs(metrics.latency.percentile(95)),
      latency_samples: metrics.latency.size,
      batches_processed: metrics.totalBatches,
      events_rejected: metrics.rejectedEvents,
      devtools_messages_dropped: metrics.devtoolsMessagesDropped,
      browsers_below_share: { now: deps.runs.cpuGovernor.demoted, since_start: deps.runs.cpuGovernor.demotions, available: deps.runs.cpuGovernor.available },
      assets: metrics.assetTotals(),
      viewers: hub.connectionCount,
      max_viewers: config.maxConnections,
      viewers_refused: hub.connectionsRefused,
      viewer_buffered_bytes: hub.backlog.bufferedBytes,
      viewers_lagging: hub.backlog.lagging,
      viewer_resets: hub.backlog.resets,
      viewer_compression: hub.compression,
      event_buffer_size: config.eventBufferSize,
      rss_bytes: process.memoryUsage().rss,
      event_loop_delay_ms: eventLoopDelay.summary(),
      store_events_written: deps.store.eventsWritten,
      store_bytes: await deps.store.sizeBytes(),
      uptime_s: Math.round((Date.now() - deps.startedAt) / 1000),
    };
  });
}
