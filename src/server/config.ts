import { resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../common/index.js';

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

const schema = z.object({
  PORT: int(0, 65535).default(3000),
  HOST: z.string().trim().min(1, 'must not be empty').default('127.0.0.1'),
  VISUAL_STREAMING_ENABLED: bool.default(true),
  VISUAL_WEBSOCKET_MAX_CONNECTIONS: int(1, 1_000_000).default(100),
  VISUAL_EVENT_BUFFER_SIZE: int(10, 10_000_000).default(1000),
  MAX_CONCURRENT_SESSIONS: int(1, 1000).default(4),
  WORKFLOWS_DIR: z.string().trim().min(1, 'must not be empty').default('./workflows'),
  DOMCAST_RECORDINGS: bool.default(true),
  DOMCAST_DATA_DIR: z.string().trim().min(1, 'must not be empty').default('./data'),
  DOMCAST_RETENTION_DAYS: z.string().trim().regex(/^\d+(\.\d+)?$/, 'must be a number of days').transform(Number).optional(),
  DOMCAST_MAX_STORE_MB: int(1, 10_000_000).optional(),
  CHROMIUM_PATH: z.string().trim().min(1).optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export interface Config {
  readonly port: number;
  readonly host: string;
  readonly visualStreamingEnabled: boolean;
  readonly maxConnections: number;
  readonly eventBufferSize: number;
  readonly maxConcurrentSessions: number;
  /** Absolute path of the stored workflows folder. */
  readonly workflowsDir: string;
  /** false: runs are streamed live but not kept on disk. */
  readonly recordings: boolean;
  /** Absolute path of the recordings store's folder. */
  readonly dataDir: string;
  readonly retentionDays: number | undefined;
  readonly maxStoreMb: number | undefined;
  readonly chromiumPath: string | undefined;
  readonly logLevel: string;
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
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}=${JSON.stringify(picked[String(i.path[0])])}: ${i.message}`);
    throw new ConfigError(`invalid settings:\n${lines.join('\n')}`);
  }
  const c = parsed.data;
  return Object.freeze({
    port: c.PORT,
    host: c.HOST,
    visualStreamingEnabled: c.VISUAL_STREAMING_ENABLED,
    maxConnections: c.VISUAL_WEBSOCKET_MAX_CONNECTIONS,
    eventBufferSize: c.VISUAL_EVENT_BUFFER_SIZE,
    maxConcurrentSessions: c.MAX_CONCURRENT_SESSIONS,
    workflowsDir: resolve(c.WORKFLOWS_DIR),
    recordings: c.DOMCAST_RECORDINGS,
    dataDir: resolve(c.DOMCAST_DATA_DIR),
    retentionDays: c.DOMCAST_RETENTION_DAYS,
    maxStoreMb: c.DOMCAST_MAX_STORE_MB,
    chromiumPath: c.CHROMIUM_PATH,
    logLevel: c.LOG_LEVEL,
  });
}
