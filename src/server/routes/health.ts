import type { FastifyInstance } from 'fastify';
import { roundMs } from '../../session/index.js';
import type { AppDeps } from '../deps.js';
import { EventLoopDelayWindow } from '../event-loop-delay.js';

export function registerHealth(app: FastifyInstance, deps: AppDeps): void {
  const eventLoopDelay = new EventLoopDelayWindow();
  app.addHook('onClose', async () => eventLoopDelay.stop());

  app.get('/health', { config: { access: 'public' } }, async () => ({ status: deps.lifecycle.draining ? 'draining' : 'ok', uptime_s: Math.round((Date.now() - deps.startedAt) / 1000) }));

  app.get('/health/visual', async () => {
    const { metrics, registry, hub, config } = deps;
    return {
      status: config.visualStreamingEnabled ? 'ok' : 'disabled',
      active_sessions: registry.activeCount,
      queued_sessions: deps.runs.queued,
      max_concurrent_sessions: config.maxConcurrentSessions,
      total_events_processed: metrics.totalEventsProcessed,
      /** ms from an event's page timestamp to its hand-off to every viewer socket, over the latest 4096 events. */
      average_latency: roundMs(metrics.latency.average()),
      latency_p95: roundMs(metrics.latency.percentile(95)),
      latency_samples: metrics.latency.size,
      batches_processed: metrics.totalBatches,
      events_rejected: metrics.rejectedEvents,
      /** Messages pages made their browsers send past their bounds, dropped unread by the DevTools relay (docs/SECURITY.md, Hostile pages). */
      devtools_messages_dropped: metrics.devtoolsMessagesDropped,
      /** Assets the runs' browsers captured (bodies stored once each, however many runs) and skipped (over a limit, failed), since start. */
      assets: metrics.assetTotals(),
      viewers: hub.connectionCount,
      max_viewers: config.maxConnections,
      viewers_refused: hub.connectionsRefused,
      /** Unsent bytes queued for all viewers (bounded; see docs/PROTOCOL.md, Backpressure), as of the last 250 ms check. */
      viewer_buffered_bytes: hub.backlog.bufferedBytes,
      viewers_lagging: hub.backlog.lagging,
      viewer_resets: hub.backlog.resets,
      event_buffer_size: config.eventBufferSize,
      rss_bytes: process.memoryUsage().rss,
      /** ms, over the last 10 s window (a stall shows in the window in which it ended), and the longest since start. */
      event_loop_delay_ms: eventLoopDelay.summary(),
      store_events_written: deps.store.eventsWritten,
      store_bytes: deps.store.sizeBytes(),
      uptime_s: Math.round((Date.now() - deps.startedAt) / 1000),
    };
  });
}
