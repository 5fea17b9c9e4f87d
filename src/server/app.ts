import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import { serializerCompiler } from 'fastify-type-provider-zod';
import { AssetIndex } from '../assets/index.js';
import { BadRequestError, createLogger, InputsError, type Logger } from '../common/index.js';
import { ControlHub } from '../control/index.js';
import { CloseCode } from '../protocol/index.js';
import { SessionRegistry, StreamMetrics } from '../session/index.js';
import { createStore, track } from '../store/index.js';
import { StreamHub } from '../stream/index.js';
import { WorkflowLibrary } from '../workflow/index.js';
import type { Config } from './config.js';
import { createRunManager } from './run-manager.js';
import { registerAccess } from './access.js';
import { registerOpenApi } from './openapi.js';
import { zodValidatorCompiler } from './validation.js';
import type { AppDeps } from './deps.js';
import { DashboardSessions } from './dashboard-session.js';
import { viewerOriginAllowed } from './origins.js';
import { ViewerTokens, viewerTokenSecret } from './viewer-tokens.js';
import { clientAddress, requestHost, trustProxy } from './trust-proxy.js';
import { registerAssets } from './routes/assets.js';
import { registerDocs } from './routes/docs.js';
import { registerExecute } from './routes/execute.js';
import { registerHealth } from './routes/health.js';
import { registerSessions } from './routes/sessions.js';
import { registerViewer, viewerErrorPage } from './routes/viewer.js';
import { registerRecordings } from './routes/recordings.js';
import { registerDashboard } from './routes/dashboard.js';
import { registerLinks } from './routes/links.js';
import { registerControl } from './routes/control.js';
import { registerMetrics } from './routes/metrics.js';
import { pathOf, registerRequestLog } from './request-log.js';

export interface RegisteredRoute {
  method: string;
  url: string;
}

export interface Server {
  app: FastifyInstance;
  deps: AppDeps;
  /** Every route the server registered (HEAD ones included), known once `app.ready()` resolved. */
  routes: readonly RegisteredRoute[];
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

export function createServer(config: Config, options: { log?: Logger; chromiumPath?: string; spareBrowser?: boolean } = {}): Server {
  const log = options.log ?? createLogger(config.logLevel, config.logFormat);
  const trust = trustProxy(config.trustProxy);
  const app: FastifyInstance = Fastify({ loggerInstance: log as FastifyBaseLogger, bodyLimit: config.maxBodyBytes,
    logController: new LogController({ disableRequestLogging: true }),
    // An asset key is the base64url of a page's URL: up to Node's request-head limit, not find-my-way's 100.
    routerOptions: { maxParamLength: 16 * 1024 },
    // TRUST_PROXY: req.ip, req.protocol and req.host then come from the trusted proxies' X-Forwarded-* headers.
    trustProxy: trust,
  });
  /**
   * Every route declares ONE zod schema per part (params, querystring, body, response by status):
   * it validates the request (a failure is a 400 naming the field), types the handler (through
   * `app.withTypeProvider<ZodTypeProvider>()`), shapes the answer (unknown fields are dropped: use
   * z.looseObject where a shape is open) and becomes the OpenAPI document. See routes/health.ts:
   *
   *   app.withTypeProvider<ZodTypeProvider>().get('/x/:id', {
   *     schema: { tags: ['x'], summary: '…', params: z.object({ id: z.string() }), response: { 200: answer, '4xx': errorBody } },
   *   }, async (req) => …req.params.id…);
   */
  app.setValidatorCompiler(zodValidatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  /** Every route added, for tests that check the OpenAPI document covers them all. */
  const routes: RegisteredRoute[] = [];
  app.addHook('onRoute', (r) => {
    for (const method of [r.method].flat()) routes.push({ method, url: r.url });
  });
  registerOpenApi(app);
  const store = createStore(config, log, { queuedElsewhere: config.cluster !== null });
  const assets = new AssetIndex(store);
  const registry = new SessionRegistry(config.recordings ? { onCreate: (session) => track(store, session) } : {});
  // Cluster mode: runs are on workers; viewers here watch copies of them (src/cluster/mirror.ts), held apart.
  const viewed = config.cluster ? new SessionRegistry() : registry;
  const metrics = new StreamMetrics();
  const { launcher, runs } = createRunManager(config, { log, registry, metrics, assets, chromiumPath: options.chromiumPath, spareBrowser: options.spareBrowser });
  const viewerTokens = new ViewerTokens(viewerTokenSecret(config), config.viewerTokenTtl);
  const hub = new StreamHub({
    registry: viewed,
    ...(config.cluster ? { prepare: (id: string) => deps.cluster?.mirrors.ensure(id) ?? Promise.resolve(false) } : {}),
    maxConnections: config.maxConnections,
    maxConnectionsPerIp: config.maxConnectionsPerIp,
    pingIntervalMs: config.heartbeatMs,
    enabled: config.visualStreamingEnabled,
    recordings: config.recordings,
    log,
    clientAddress: (req) => clientAddress(req, trust),
    async authorize(sessionId, token, req) {
      const origin = req.headers.origin;
      if (origin !== undefined && !viewerOriginAllowed(origin, requestHost(req, trust), config.viewerOrigins)) {
        return { code: CloseCode.forbiddenOrigin, reason: `origin ${origin.slice(0, 60)} may not open viewers (VIEWER_ORIGINS)` };
      }
      const check = await viewerTokens.verify(token, sessionId);
      return check.ok ? null : { code: CloseCode.unauthorized, reason: check.reason };
    },
  });
  // Take control (issue 16): a person's input to a run's page, on a socket of its own.
  const control = new ControlHub({
    registry,
    page: (id) => runs.page(id),
    log,
    async authorize(sessionId, token, req) {
      const origin = req.headers.origin;
      if (origin !== undefined && !viewerOriginAllowed(origin, requestHost(req, trust), config.viewerOrigins)) {
        return { code: CloseCode.forbiddenOrigin, reason: `origin ${origin.slice(0, 60)} may not take control (VIEWER_ORIGINS)` };
      }
      const check = await viewerTokens.verifyControl(token, sessionId);
      return check.ok ? { jti: check.jti } : { code: CloseCode.unauthorized, reason: check.reason };
    },
  });
  const library = new WorkflowLibrary(config.workflowsDir);
  let pruning: Promise<string[]> | undefined;
  /** Retention now; a call while one is under way shares it. */
  const prune = (): Promise<string[]> => {
    pruning ??= store
      .prune({
        maxAgeMs: config.retentionDays === undefined ? undefined : config.retentionDays * 86_400_000,
        maxBytes: config.maxStoreMb === undefined ? undefined : config.maxStoreMb * 1024 * 1024,
        isLive: (id) => registry.get(id)?.finished === false,
        isKnown: (id) => registry.get(id) !== undefined,
      })
      .then((removed) => {
        for (const id of removed) registry.delete(id);
        if (removed.length) log.info({ removed: removed.length }, 'retention removed old recordings');
        return removed;
      })
      .finally(() => (pruning = undefined));
    return pruning;
  };
  const deps: AppDeps = { config, log, registry, metrics, runs, hub, library, store, assets, applyRetention: prune, startedAt: Date.now(), viewerTokens, dashboardSessions: new DashboardSessions(), cluster: null, lifecycle: { draining: false } };
  const pruneTimer = setInterval(() => void prune().catch((err: unknown) => log.error({ err }, 'retention failed')), 60_000);
  pruneTimer.unref();
  // The store opens (connects, migrates) before the server is ready: a store that cannot be used
  // rejects app.ready() and listen() with its StoreError, and no request reaches it before.
  app.register(async () => {
    await store.open();
    if (store.interrupted > 0) log.warn({ sessions: store.interrupted }, 'marked runs of a previous process as interrupted');
    if (config.cluster) {
      // Loaded only in cluster mode: the single process never loads BullMQ and ioredis.
      const { ClusterApi } = await import('../cluster/api-node.js');
      deps.cluster = await ClusterApi.connect({
        url: config.cluster.redisUrl,
        prefix: config.cluster.prefix,
        copies: viewed,
        metrics,
        store,
        log,
        viewers: (id) => hub.viewerCount(id),
        restarted: (id, reason) => hub.restart(id, reason),
      });
    }
    await prune();
  });

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
      return reply.code(err.statusCode).send({ error: err.message, code: err.code, ...(err instanceof InputsError ? { fields: err.fields } : {}) });
    }
    const status = err.statusCode ?? 500;
    if (status >= 500) {
      req.log.error({ err, path: pathOf(req.url) }, 'request failed');
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

  // Routes are added once @fastify/swagger has loaded (it sees them through an onRoute hook), so
  // every route goes in here; one added outside is missing from /openapi.json (test/unit/openapi.test.ts).
  // Async, so that a route module that throws (a missing built asset) rejects app.ready() with its error.
  app.after(async () => {
    registerRequestLog(app);
    registerAccess(app, deps);
    registerExecute(app, deps);
    registerRecordings(app, deps);
    registerLinks(app, deps);
    registerControl(app, deps);
    registerDashboard(app, deps);
    registerSessions(app, deps);
    registerViewer(app, deps);
    registerAssets(app, deps);
    registerHealth(app, deps);
    registerMetrics(app, deps);
    registerDocs(app);
  });

  app.server.on('upgrade', (req, socket, head) => {
    if (!hub.handleUpgrade(req, socket, head) && !control.handleUpgrade(req, socket, head)) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    }
  });

  let base = `http://${config.host}:${config.port}`;
  return {
    app,
    deps,
    routes,
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
      control.close();
      await app.close();
      await deps.cluster?.close();
      // Closing the browser ends runs still in flight (their steps fail); then wait for them to settle.
      await launcher.close();
      await runs.idle();
      clearInterval(pruneTimer);
      await store.close();
    },
  };
}
