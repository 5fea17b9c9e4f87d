#!/usr/bin/env node
// Only what every command needs is imported here; each command's module is imported when it runs
// (dist/cli.js is built with code splitting): `domcast health`, a container's HEALTHCHECK every
// 15 s, and `--help` load no server, browser, Redis or PostgreSQL code.
import { ChromiumNotFoundError, ConfigError, errorMessage } from '../common/errors.js';
import type { Worker } from '../server/index.js';
import { StoreError } from '../store/migrations.js';
import { DEMO_SITE_USAGE, DEMO_USAGE, HEALTH_USAGE, RUN_USAGE, UsageError } from './usage.js';

const HELP = `domcast — run browser workflows and watch them live as DOM

Usage:
  ${RUN_USAGE}
      run a workflow file (browser-use/workflow-use format) here and now: a line per step on stderr,
      the outputs as JSON on stdout; --visual prints a live viewer URL; exit 0 on success, 1 on failure
  domcast serve            start the server (PORT, default 3000; HOST, default 127.0.0.1)
  domcast serve --with-worker
                           cluster mode (DOMCAST_REDIS_URL): an API node and a worker in one process
  domcast worker           cluster mode: a worker node, taking queued runs (Chromium, no HTTP); docs/CLUSTER.md
  ${DEMO_USAGE}
      the demo site on 127.0.0.1:8080, the server, and a short link (http://127.0.0.1:3000/demo) that starts
      a run of workflows/demo.json for whoever opens it; --once runs it at once and exits when it ends
  ${DEMO_SITE_USAGE}
      serve the demo site (demo/site) on 127.0.0.1, for workflows/demo.json and the README's examples
  ${HEALTH_USAGE}
                           a container's health check: exit 0 when the server on PORT answers /health, or (--worker)
                           when this host's worker has a current heartbeat in Redis
  domcast export <id>      the recording of a run as a JSON array of rrweb events on stdout (from the store: DOMCAST_DATA_DIR or DOMCAST_DATABASE_URL)
  domcast replay <file>    serve any rrweb recording (ours or not) in the domcast viewer
  domcast --help           this text

Settings (environment): PORT, HOST, VISUAL_STREAMING_ENABLED (true), VISUAL_WEBSOCKET_MAX_CONNECTIONS (100),
VISUAL_EVENT_BUFFER_SIZE (1000), MAX_CONCURRENT_SESSIONS (4), WORKFLOWS_DIR (./workflows), DOMCAST_DATA_DIR (./data),
DOMCAST_DATABASE_URL (PostgreSQL for the recordings), DOMCAST_REDIS_URL (cluster mode; also DOMCAST_CLUSTER_PREFIX,
DOMCAST_WORKER_ID), DOMCAST_RETENTION_DAYS, DOMCAST_MAX_STORE_MB, CHROMIUM_PATH, LOG_LEVEL (info), LOG_FORMAT (pretty on a terminal, else json).
Security and limits: DOMCAST_API_KEY, VIEWER_TOKEN_SECRET, VIEWER_TOKEN_TTL (1h), VIEWER_ORIGINS, ALLOWED_HOSTS,
BLOCKED_HOSTS, MAX_BODY_BYTES (1 MiB), MAX_WORKFLOW_STEPS (500), VISUAL_MAX_CONNECTIONS_PER_IP (50),
VISUAL_HEARTBEAT_MS (10000), EXECUTE_RATE_LIMIT (60 a minute), SHUTDOWN_GRACE_MS (30000), TRUST_PROXY (false).
See docs/SECURITY.md; the API's reference is at /docs once the server runs.`;

/** Stops on SIGINT/SIGTERM with `stop` (graceful); a second signal stops at once with `now`. */
function onSignals(log: { info: (o: object, m: string) => void; warn: (o: object, m: string) => void; error: (o: object, m: string) => void }, graceMs: number, stop: () => Promise<void>, now: () => Promise<void>): void {
  let stopping = false;
  const shutdown = (signal: string) => {
    // A second signal means "now": skip what is left of the grace period.
    if (stopping) {
      log.warn({ signal }, 'second signal: stopping now');
      void now().finally(() => process.exit(0));
      return;
    }
    stopping = true;
    log.info({ signal, graceMs }, 'shutting down');
    stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

async function worker(args: string[]): Promise<number> {
  if (args.length > 0) throw new UsageError(`worker takes no arguments (got ${args.join(' ')})`);
  const [{ createWorker, loadConfig }, { findChromium }] = await Promise.all([import('../server/index.js'), import('../browser/index.js')]);
  const config = loadConfig();
  if (!config.cluster) throw new ConfigError('domcast worker needs DOMCAST_REDIS_URL (cluster mode; see docs/CLUSTER.md)');
  const chromiumPath = findChromium({ explicitPath: config.chromiumPath, install: true, log: (m) => console.error(m) });
  const node = createWorker(config, { chromiumPath });
  await startWorker(node);
  // SIGTERM: no new runs; those in progress get SHUTDOWN_GRACE_MS, then end cancelled.
  onSignals(node.log, config.shutdownGraceMs, () => node.shutdown(config.shutdownGraceMs), () => node.close());
  return new Promise<number>(() => {});
}

async function startWorker(node: Worker): Promise<void> {
  try {
    await node.start();
  } catch (err) {
    await node.close().catch(() => undefined);
    throw err;
  }
}

async function serve(args: string[]): Promise<number> {
  const withWorker = args.includes('--with-worker');
  const unknown = args.filter((a) => a !== '--with-worker');
  if (unknown.length > 0) throw new UsageError(`serve takes only --with-worker (got ${unknown.join(' ')})`);
  const [{ createServer, createWorker, loadConfig }, { findChromium }] = await Promise.all([import('../server/index.js'), import('../browser/index.js')]);
  const config = loadConfig();
  if (withWorker && !config.cluster) throw new ConfigError('--with-worker is for cluster mode: set DOMCAST_REDIS_URL (without it, serve runs the workflows itself already)');
  // Find (or install) Chromium now, so a missing browser is a clear error at start, not at the first run.
  const chromiumPath = config.cluster && !withWorker ? undefined : findChromium({ explicitPath: config.chromiumPath, install: true, log: (m) => console.error(m) });
  const server = createServer(config, { chromiumPath });
  const node = withWorker ? createWorker(config, { chromiumPath, log: server.deps.log }) : null;
  let base: string;
  try {
    base = await server.listen();
    if (node) await startWorker(node);
  } catch (err) {
    await server.close().catch(() => undefined);
    // A server's address is what its clients were given: say so, rather than pick another port as `run` and `demo` do.
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new ConfigError(`${config.host}:${config.port} is already in use (another domcast, or another program): stop it, or start on another port with PORT=…`);
    }
    if ((err as NodeJS.ErrnoException).code === 'EACCES') {
      throw new ConfigError(`not allowed to listen on ${config.host}:${config.port} (ports under 1024 need privileges): choose another with PORT=…`);
    }
    throw err;
  }
  const mode = config.cluster ? (node ? 'cluster: API node and worker' : 'cluster: API node') : 'single process';
  server.deps.log.info({ url: base, chromiumPath, apiKey: config.apiKey ? 'required' : 'off', mode }, 'domcast listening');
  if (!config.apiKey) server.deps.log.warn('DOMCAST_API_KEY is not set: anyone who can reach this address may use the API');
  onSignals(
    server.deps.log,
    config.shutdownGraceMs,
    async () => {
      await Promise.all([server.shutdown(config.shutdownGraceMs), node?.shutdown(config.shutdownGraceMs)]);
    },
    async () => {
      await Promise.all([server.close(), node?.close()]);
    },
  );
  return new Promise<number>(() => {});
}

async function main(argv: string[]): Promise<number> {
  const [command = 'serve', ...rest] = argv;
  if (command === '--help' || command === '-h' || command === 'help') {
    console.log(HELP);
    return 0;
  }
  if (command === 'serve') return serve(rest);
  if (command === 'worker') return worker(rest);
  if (command === 'health') return (await import('./health.js')).healthCommand(rest);
  if (command === 'demo') return (await import('./demo.js')).runDemo(rest);
  if (command === 'demo-site') return (await import('./demo-site.js')).demoSiteCommand(rest);
  if (command === 'run') return (await import('./run.js')).runCommand(rest);
  if (command === 'export') return (await import('./recordings.js')).exportCommand(rest);
  if (command === 'replay') return (await import('./recordings.js')).replayCommand(rest);
  console.error(`domcast: unknown command "${command}"\n\n${HELP}`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof UsageError || (err instanceof Error && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS'))) {
      console.error(`domcast: ${err.message}`);
      process.exit(2);
    }
    if (err instanceof ConfigError || err instanceof ChromiumNotFoundError || err instanceof StoreError) console.error(`domcast: ${err.message}`);
    else console.error(`domcast: ${errorMessage(err)}`, err);
    process.exit(1);
  },
);
