import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import { AssetIndex } from '../assets/index.js';
import { BrowserLauncher } from '../browser/index.js';
import { BadRequestError, createLogger, type Logger } from '../common/index.js';
import { CloseCode } from '../protocol/index.js';
import { RunManager } from '../runs/index.js';
import { SessionRegistry, StreamMetrics } from '../session/index.js';
import { SqliteStore, track } from '../store/index.js';
import { StreamHub } from '../stream/index.js';
import { WorkflowLibrary } from '../workflow/index.js';
import type { Config } from './config.js';
import { registerAccess } from './access.js';
import type { AppDeps } from './deps.js';
import { viewerOriginAllowed } from './origins.js';
import { ViewerTokens, viewerTokenSecret } from './viewer-tokens.js';
import { registerAssets } from './routes/assets.js';
import { registerExecute } from './routes/execute.js';
import { registerHealth } from './routes/health.js';
import { registerSessions } from './routes/sessions.js';
import { registerViewer, viewerErrorPage } from './routes/viewer.js';
import { registerRecordings } from './routes/recordings.js';

export interface Server {
  app: FastifyInstance;
  deps: AppDeps;
  /** Starts listening; resolves with the base URL (http://host:port). */
  listen(): Promise<string>;
  close(): Promise<void>;
  /**
   * Graceful stop (SIGTERM): no new runs or viewers; running sessions get `graceMs` to finish, then
   * are cancelled; the store is flushed and every socket closed with 1001.
   */
  shutdown(graceMs: number): Promise<void>;
  /** A viewer link (with a fresh token) for a session, on the address listen() gave. */
  viewerUrl(sessionId: string): Promise<string>;
}

/** Why a run still queued when the server stops never ran. */
const QUEUED_AT_SHUTDOWN = 'cancelled: the server is shutting down; this run had not started';

export function createServer(config: Config, options: { log?: Logger; chromiumPath?: string } = {}): Server {
  const log = options.log ?? createLogger(config.logLevel, config.logFormat);
  const app: FastifyInstance = Fastify({ loggerInstance: log as FastifyBaseLogger, bodyLimit: config.maxBodyBytes,
    logController: new LogController({ disableRequestLogging: true }),
    // An asset key is the base64url of a page's URL: up to Node's request-head limit, not find-my-way's 100.
    routerOptions: { maxParamLength: 16 * 1024 },
  });
  const store = new SqliteStore(config.dataDir, log);
  if (store.interrupted > 0) log.warn({ sessions: store.interrupted }, 'marked runs of a previous process as interrupted');
  const assets = new AssetIndex(store);
  const registry = new SessionRegistry(config.recordings ? { onCreate: (session) => track(store, session) } : {});
  const metrics = new StreamMetrics();
  const launcher = new BrowserLauncher({
    chromiumPath: options.chromiumPath ?? config.chromiumPath,
    log,
    isolation: config.browserIsolation,
    maxEventChars: config.recordingLimits.maxEventChars,
    onDrop: (drop) => (metrics.devtoolsMessagesDropped += drop.count),
  });
  const runs = new RunManager({
    launcher,
    registry,
    metrics,
    limits: config.recordingLimits,
    maxConcurrent: config.maxConcurrentSessions,
    log,
    navigation: { allowedHosts: config.allowedHosts, blockedHosts: config.blockedHosts },
    ...(config.assets ? { assets: { sink: assets, limits: config.assets } } : {}),
  });
  const viewerTokens = new ViewerTokens(viewerTokenSecret(config), config.viewerTokenTtl);
  const hub = new StreamHub({
    registry,
    maxConnections: config.maxConnections,
    maxConnectionsPerIp: config.maxConnectionsPerIp,
    pingIntervalMs: config.heartbeatMs,
    enabled: config.visualStreamingEnabled,
    recordings: config.recordings,
    log,
    async authorize(sessionId, token, req) {
      const origin = req.headers.origin;
      if (origin !== undefined && !viewerOriginAllowed(origin, req.headers.host, config.viewerOrigins)) {
        return { code: CloseCode.forbiddenOrigin, reason: `origin ${origin.slice(0, 60)} may not open viewers (VIEWER_ORIGINS)` };
      }
      const check = await viewerTokens.verify(token, sessionId);
      return check.ok ? null : { code: CloseCode.unauthorized, reason: check.reason };
    },
  });
  const library = new WorkflowLibrary(config.workflowsDir);
  const prune = (): string[] => {
    const removed = store.prune({
      maxAgeMs: config.retentionDays === undefined ? undefined : config.retentionDays * 86_400_000,
      maxBytes: config.maxStoreMb === undefined ? undefined : config.maxStoreMb * 1024 * 1024,
      isLive: (id) => registry.get(id)?.finished === false,
      isKnown: (id) => registry.get(id) !== undefined,
    });
    for (const id of removed) registry.delete(id);
    if (removed.length) log.info({ removed: removed.length }, 'retention removed old recordings');
    return removed;
  };
  const deps: AppDeps = { config, log, registry, metrics, runs, hub, library, store, assets, applyRetention: prune, startedAt: Date.now(), viewerTokens, lifecycle: { draining: false } };
  prune();
  const pruneTimer = setInterval(prune, 60_000);
  pruneTimer.unref();

  // Every error leaves as JSON {error}; a client's mistake is a 4xx that says what was wrong.
  app.setErrorHandler((err: FastifyError | BadRequestError, req, reply) => {
    if (err instanceof BadRequestError) {
      // A person who opened a viewer link gets a page that says why, not JSON.
      if (req.routeOptions.config.access === 'viewer-only' && /\btext\/html\b/.test(String(req.headers.accept ?? ''))) {
        return reply
          .code(err.statusCode)
          .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'")
          .type('text/html; charset=utf-8')
          .send(viewerErrorPage(err.statusCode, err.message));
      }
      return reply.code(err.statusCode).send({ error: err.message, code: err.code });
    }
    const status = err.statusCode ?? 500;
    if (status >= 500) {
      req.log.error({ err, url: req.url }, 'request failed');
      return reply.code(status).send({ error: 'internal error', code: 'INTERNAL' });
    }
    const message =
      err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE'
        ? 'the body must be JSON (Content-Type: application/json)'
        : err.code === 'FST_ERR_CTP_BODY_TOO_LARGE'
          ? `the body is larger than ${config.maxBodyBytes} bytes (MAX_BODY_BYTES)`
          : err.message;
    return reply.code(status).send({ error: message, code: err.code ?? 'BAD_REQUEST' });
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: `no route ${req.method} ${req.url.split('?')[0]}`, code: 'NOT_FOUND' }));

  registerAccess(app, deps);
  registerExecute(app, deps);
  registerRecordings(app, deps);
  registerSessions(app, deps);
  registerViewer(app, deps);
  registerAssets(app, deps);
  registerHealth(app, deps);

  app.server.on('upgrade', (req, socket, head) => {
    if (!hub.handleUpgrade(req, socket, head)) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    }
  });

  let base = `http://${config.host}:${config.port}`;
  return {
    app,
    deps,
    async viewerUrl(sessionId) {
      return (await viewerTokens.links(sessionId, base, base.replace(/^http/, 'ws'))).viewerUrl;
    },
    async listen() {
      await app.listen({ port: config.port, host: config.host });
      const addr = app.server.address();
      const port = typeof addr === 'object' && addr ? addr.port : config.port;
      const host = config.host.includes(':') ? `[${config.host}]` : config.host;
      base = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`;
      return base;
    },
    async shutdown(graceMs) {
      deps.lifecycle.draining = true;
      hub.beginShutdown();
      const queued = runs.queued;
      runs.stopQueue(QUEUED_AT_SHUTDOWN);
      log.info({ running: registry.activeCount, cancelledQueued: queued, graceMs }, 'shutting down: no new runs, queued ones cancelled; running ones may finish');
      const settled = await Promise.race([runs.idle().then(() => true), new Promise<false>((r) => setTimeout(r, graceMs, false).unref())]);
      if (!settled) {
        log.warn({ running: registry.activeCount }, 'grace period over: cancelling the runs still going');
        await runs.cancelAll('cancelled: the server is shutting down');
      }
      await this.close();
    },
    async close() {
      deps.lifecycle.draining = true;
      runs.stopQueue(QUEUED_AT_SHUTDOWN);
      hub.close();
      await app.close();
      // Closing the browser ends runs still in flight (their steps fail); then wait for them to settle.
      await launcher.close();
      await runs.idle();
      clearInterval(pruneTimer);
      await store.close();
    },
  };
}
