import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError, redactUrlPassword } from '../common/index.js';
// From the modules themselves, not their folders' index: `domcast health` loads this file alone.
import { MIB, type RecordingLimits } from '../session/limits.js';
import { postgresUrlProblem } from '../store/pg-url.js';
import { redisUrlProblem } from '../cluster/redis-url.js';

const bool = z
  .string()
  .trim()
  .toLowerCase()
  .refine((v) => ['true', 'false', '1', '0', 'yes', 'no'].includes(v), 'must be true or false')
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const int = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));

/** `3600`, `90s`, `30m`, `1h`, `2d` → seconds. */
const duration = z
  .string()
  .trim()
  .toLowerCase()
  .regex(/^\d+(s|m|h|d)?$/, 'must be seconds or a duration like 90s, 30m, 1h, 2d')
  .transform((v) => {
    const n = Number.parseInt(v, 10);
    const unit = v.at(-1) ?? '';
    return n * ({ m: 60, h: 3600, d: 86_400 }[unit] ?? 1);
  })
  .pipe(z.number().int().min(10, 'must be at least 10 seconds').max(30 * 86_400, 'must be at most 30 days'));

const list = (item: z.ZodType<string, string>) =>
  z
    .string()
    .transform((v) => v.split(',').map((s) => s.trim()).filter((s) => s !== ''))
    .pipe(z.array(item));

/** PostgreSQL for the recordings store; a secret (it may hold a password), so never shown whole. */
const databaseUrl = z
  .string()
  .trim()
  .superRefine((v, ctx) => {
    const problem = postgresUrlProblem(v);
    if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
  });

/** Redis for cluster mode (docs/CLUSTER.md); a secret too. */
const redisUrl = z
  .string()
  .trim()
  .superRefine((v, ctx) => {
    const problem = redisUrlProblem(v);
    if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
  });

/** Settings shown back in an error only with their password taken out. */
const redacted: Record<string, (value: string) => string> = { DOMCAST_DATABASE_URL: redactUrlPassword, DOMCAST_REDIS_URL: redactUrlPassword };

/** An origin as a browser sends it: scheme://host[:port], nothing after. */
const origin = z.string().refine((v) => {
  try {
    const u = new URL(v);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.origin === v.replace(/\/$/, '');
  } catch {
    return false;
  }
}, 'each entry must be an origin like https://watch.example.com');

/** A host name, `*.`-wildcard domain, IP address or CIDR block (checked fully by the navigation policy). */
const hostPattern = z
  .string()
  .toLowerCase()
  .regex(/^(\*\.)?[a-z0-9.:_\-[\]]+(\/\d{1,3})?$/, 'each entry must be a host name, *.domain, IP address or CIDR block');

/** An address or CIDR block a proxy connects from, or proxy-addr's names for ranges. */
const proxyAddress = (v: string): boolean => {
  if (['loopback', 'linklocal', 'uniquelocal'].includes(v)) return true;
  const [ip = '', bits, ...rest] = v.split('/');
  const family = isIP(ip);
  if (family === 0 || rest.length > 0) return false;
  return bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128));
};

/**
 * Which proxies in front of us to believe about the client (X-Forwarded-For, -Proto, -Host):
 * `false` (none), `true` (any), a hop count, or the proxies' addresses. Fastify's trustProxy.
 */
const trustProxy = z
  .string()
  .trim()
  .toLowerCase()
  .transform((v, ctx): boolean | number | string[] => {
    if (v === 'true' || v === 'false') return v === 'true';
    if (/^\d+$/.test(v)) return Number(v);
    const entries = v.split(',').map((e) => e.trim()).filter((e) => e !== '');
    const bad = entries.filter((e) => !proxyAddress(e));
    if (entries.length === 0 || bad.length > 0) {
      ctx.addIssue({
        code: 'custom',
        message: `must be true, false, a number of proxies, or the proxies' addresses (IPs, CIDR blocks, loopback), comma-separated${bad.length ? `; not an address: ${bad.join(', ')}` : ''}`,
      });
      return z.NEVER;
    }
    return entries;
  });

const schema = z.object({
  PORT: int(0, 65535).default(3000),
  HOST: z.string().trim().min(1, 'must not be empty').default('127.0.0.1'),
  VISUAL_STREAMING_ENABLED: bool.default(true),
  VISUAL_WEBSOCKET_MAX_CONNECTIONS: int(1, 1_000_000).default(100),
  VISUAL_EVENT_BUFFER_SIZE: int(10, 10_000_000).default(1000),
  VISUAL_SESSION_MAX_MB: int(2, 4096).default(64),
  VISUAL_MAX_EVENT_MB: int(1, 2048).default(16),
  MAX_CONCURRENT_SESSIONS: int(1, 1000).default(4),
  BROWSER_ISOLATION: z.enum(['run', 'shared'], { message: 'must be run or shared' }).default('run'),
  VISUAL_ASSETS: bool.default(true),
  VISUAL_ASSET_MAX_MB: int(1, 1024).default(16),
  VISUAL_ASSETS_SESSION_MAX_MB: int(1, 100_000).default(128),
  WORKFLOWS_DIR: z.string().trim().min(1, 'must not be empty').default('./workflows'),
  DOMCAST_RECORDINGS: bool.default(true),
  DOMCAST_DATA_DIR: z.string().trim().min(1, 'must not be empty').default('./data'),
  DOMCAST_DATABASE_URL: databaseUrl.optional(),
  DOMCAST_REDIS_URL: redisUrl.optional(),
  DOMCAST_CLUSTER_PREFIX: z.string().trim().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1 to 64 letters, digits, dots, dashes or underscores').default('domcast'),
  DOMCAST_WORKER_ID: z.string().trim().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1 to 64 letters, digits, dots, dashes or underscores').optional(),
  DOMCAST_RETENTION_DAYS: z.string().trim().regex(/^\d+(\.\d+)?$/, 'must be a number of days').transform(Number).optional(),
  DOMCAST_MAX_STORE_MB: int(1, 10_000_000).optional(),
  CHROMIUM_PATH: z.string().trim().min(1).optional(),
  DOMCAST_API_KEY: z.string().trim().min(16, 'must be at least 16 characters (generate one with: openssl rand -hex 24)').optional(),
  METRICS_TOKEN: z.string().trim().min(16, 'must be at least 16 characters (generate one with: openssl rand -hex 24)').optional(),
  VIEWER_TOKEN_SECRET: z.string().trim().min(32, 'must be at least 32 characters').optional(),
  VIEWER_TOKEN_TTL: duration.default(3600),
  VIEWER_ORIGINS: list(origin).default([]),
  ALLOWED_HOSTS: list(hostPattern).default([]),
  BLOCKED_HOSTS: list(hostPattern).default([]),
  MAX_BODY_BYTES: int(1024, 64 * 1024 * 1024).default(1024 * 1024),
  MAX_WORKFLOW_STEPS: int(1, 100_000).default(500),
  VISUAL_MAX_CONNECTIONS_PER_IP: int(1, 1_000_000).default(50),
  VISUAL_HEARTBEAT_MS: int(100, 15_000).default(10_000),
  EXECUTE_RATE_LIMIT: int(0, 1_000_000).default(60),
  SHUTDOWN_GRACE_MS: int(0, 3_600_000).default(30_000),
  TRUST_PROXY: trustProxy.default(false),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** `pretty` (one readable line per entry) or `json` (pino's lines, for a log pipeline); default pretty on a terminal, json otherwise. */
  LOG_FORMAT: z.enum(['pretty', 'json']).optional(),
});

/** Every setting the server reads from its environment (for the packaging's consistency test). */
export const SETTING_NAMES: readonly string[] = Object.freeze(Object.keys(schema.shape));

export interface Config {
  readonly port: number;
  readonly host: string;
  readonly visualStreamingEnabled: boolean;
  readonly maxConnections: number;
  readonly eventBufferSize: number;
  /** Each session's recording: events and characters held in memory, the largest event (see RecordingLimits). */
  readonly recordingLimits: Readonly<RecordingLimits>;
  readonly maxConcurrentSessions: number;
  /** `run`: a Chromium per run; `shared`: one for all runs. */
  readonly browserIsolation: 'run' | 'shared';
  /**
   * Capture the bodies of the images, stylesheets and fonts a visual run's page loaded and serve
   * them to its viewers (needs BROWSER_ISOLATION=run), with these limits in bytes; null: off.
   */
  readonly assets: Readonly<{ maxAssetBytes: number; maxSessionBytes: number }> | null;
  /** Absolute path of the stored workflows folder. */
  readonly workflowsDir: string;
  /** false: runs are streamed live but not kept on disk. */
  readonly recordings: boolean;
  /** Absolute path of the recordings store's folder (SQLite, and the viewer token key when none is set). */
  readonly dataDir: string;
  /** PostgreSQL URL of the recordings store (a secret: never logged); undefined: SQLite in `dataDir`. */
  readonly databaseUrl: string | undefined;
  /**
   * Cluster mode (DOMCAST_REDIS_URL, docs/CLUSTER.md): runs are queued in Redis and taken by
   * workers, viewers watch from any API node. Null: one process does everything (the default).
   */
  readonly cluster: Readonly<{ redisUrl: string; prefix: string; workerId: string | undefined }> | null;
  readonly retentionDays: number | undefined;
  readonly maxStoreMb: number | undefined;
  readonly chromiumPath: string | undefined;
  readonly logLevel: string;
  /** Undefined: pretty on a terminal, JSON otherwise. */
  readonly logFormat: 'pretty' | 'json' | undefined;
  /** When set, every API call needs `Authorization: Bearer <key>`. */
  readonly apiKey: string | undefined;
  /** When set, `GET /metrics` takes `Authorization: Bearer <token>` (as well as the API key), and needs one of them. */
  readonly metricsToken: string | undefined;
  /** Signs viewer tokens; when unset the server keeps one in the data folder (or, without recordings, makes one per process). */
  readonly viewerTokenSecret: string | undefined;
  /** Seconds a viewer link stays valid. */
  readonly viewerTokenTtl: number;
  /** Origins besides the server's own whose pages may open viewer WebSockets. */
  readonly viewerOrigins: readonly string[];
  /** Navigation policy: when not empty, only these hosts may be visited. */
  readonly allowedHosts: readonly string[];
  /** Navigation policy: never visited (on top of the built-in refusals). */
  readonly blockedHosts: readonly string[];
  readonly maxBodyBytes: number;
  readonly maxWorkflowSteps: number;
  readonly maxConnectionsPerIp: number;
  /** Interval of viewer pings; a viewer silent for two of them is dropped. */
  readonly heartbeatMs: number;
  /** `POST /workflows/execute` calls per minute per API key (or per address without one); 0 turns the limit off. */
  readonly executeRateLimit: number;
  /** On SIGTERM, how long running sessions may go on before they are cancelled. */
  readonly shutdownGraceMs: number;
  /**
   * Proxies whose X-Forwarded-For/-Proto/-Host are believed (fastify's trustProxy): links then
   * carry the public scheme and host, and limits key on the client's address. false: none.
   */
  readonly trustProxy: boolean | number | readonly string[];
}

/** Reads and validates settings from an environment; throws ConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const picked: Record<string, string> = {};
  for (const key of Object.keys(schema.shape)) {
    const value = env[key];
    if (value !== undefined && value !== '') picked[key] = value;
  }
  const parsed = schema.safeParse(picked);
  if (!parsed.success) {
    const shown = (key: string) => {
      const value = picked[key] ?? '';
      return JSON.stringify(redacted[key]?.(value) ?? value);
    };
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}=${shown(String(i.path[0]))}: ${i.message}`);
    throw new ConfigError(`invalid settings:\n${lines.join('\n')}`);
  }
  const c = parsed.data;
  if (c.VISUAL_MAX_EVENT_MB * 2 > c.VISUAL_SESSION_MAX_MB) {
    throw new ConfigError(
      `invalid settings:\n  VISUAL_MAX_EVENT_MB=${c.VISUAL_MAX_EVENT_MB}: must be at most half of VISUAL_SESSION_MAX_MB (${c.VISUAL_SESSION_MAX_MB}), so a checkpoint of that size leaves room for what follows it`,
    );
  }
  if (c.VISUAL_ASSET_MAX_MB > c.VISUAL_ASSETS_SESSION_MAX_MB) {
    throw new ConfigError(
      `invalid settings:\n  VISUAL_ASSET_MAX_MB=${c.VISUAL_ASSET_MAX_MB}: must be at most VISUAL_ASSETS_SESSION_MAX_MB (${c.VISUAL_ASSETS_SESSION_MAX_MB})`,
    );
  }
  if (c.DOMCAST_REDIS_URL !== undefined) {
    const missing = [
      c.DOMCAST_DATABASE_URL === undefined ? '  DOMCAST_DATABASE_URL: required with DOMCAST_REDIS_URL (cluster mode): every node reads and writes the recordings in one PostgreSQL' : null,
      c.VIEWER_TOKEN_SECRET === undefined ? '  VIEWER_TOKEN_SECRET: required with DOMCAST_REDIS_URL (cluster mode): every node must accept the viewer links any node made' : null,
      !c.DOMCAST_RECORDINGS ? '  DOMCAST_RECORDINGS=false: cluster mode keeps every run in PostgreSQL (its status is read from there by every node)' : null,
    ].filter((line) => line !== null);
    if (missing.length > 0) throw new ConfigError(`invalid settings:\n${missing.join('\n')}`);
  }
  return Object.freeze({
    port: c.PORT,
    host: c.HOST,
    visualStreamingEnabled: c.VISUAL_STREAMING_ENABLED,
    maxConnections: c.VISUAL_WEBSOCKET_MAX_CONNECTIONS,
    eventBufferSize: c.VISUAL_EVENT_BUFFER_SIZE,
    recordingLimits: Object.freeze({
      bufferEvents: c.VISUAL_EVENT_BUFFER_SIZE,
      maxSessionChars: c.VISUAL_SESSION_MAX_MB * MIB,
      maxEventChars: c.VISUAL_MAX_EVENT_MB * MIB,
    }),
    maxConcurrentSessions: c.MAX_CONCURRENT_SESSIONS,
    browserIsolation: c.BROWSER_ISOLATION,
    assets:
      c.VISUAL_ASSETS && c.BROWSER_ISOLATION === 'run'
        ? Object.freeze({ maxAssetBytes: c.VISUAL_ASSET_MAX_MB * MIB, maxSessionBytes: c.VISUAL_ASSETS_SESSION_MAX_MB * MIB })
        : null,
    workflowsDir: resolve(c.WORKFLOWS_DIR),
    recordings: c.DOMCAST_RECORDINGS,
    dataDir: resolve(c.DOMCAST_DATA_DIR),
    databaseUrl: c.DOMCAST_DATABASE_URL,
    cluster: c.DOMCAST_REDIS_URL === undefined ? null : Object.freeze({ redisUrl: c.DOMCAST_REDIS_URL, prefix: c.DOMCAST_CLUSTER_PREFIX, workerId: c.DOMCAST_WORKER_ID }),
    retentionDays: c.DOMCAST_RETENTION_DAYS,
    maxStoreMb: c.DOMCAST_MAX_STORE_MB,
    chromiumPath: c.CHROMIUM_PATH,
    logLevel: c.LOG_LEVEL,
    logFormat: c.LOG_FORMAT,
    apiKey: c.DOMCAST_API_KEY,
    metricsToken: c.METRICS_TOKEN,
    viewerTokenSecret: c.VIEWER_TOKEN_SECRET,
    viewerTokenTtl: c.VIEWER_TOKEN_TTL,
    viewerOrigins: Object.freeze(c.VIEWER_ORIGINS.map((o) => o.replace(/\/$/, ''))),
    allowedHosts: Object.freeze(c.ALLOWED_HOSTS),
    blockedHosts: Object.freeze(c.BLOCKED_HOSTS),
    maxBodyBytes: c.MAX_BODY_BYTES,
    maxWorkflowSteps: c.MAX_WORKFLOW_STEPS,
    maxConnectionsPerIp: c.VISUAL_MAX_CONNECTIONS_PER_IP,
    heartbeatMs: c.VISUAL_HEARTBEAT_MS,
    executeRateLimit: c.EXECUTE_RATE_LIMIT,
    shutdownGraceMs: c.SHUTDOWN_GRACE_MS,
    trustProxy: Array.isArray(c.TRUST_PROXY) ? Object.freeze(c.TRUST_PROXY) : c.TRUST_PROXY,
  });
}
