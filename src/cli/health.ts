import { hostname } from 'node:os';
import { ConfigError, errorMessage } from '../common/errors.js';
import { loadConfig } from '../server/config.js';
import { UsageError } from './usage.js';

/**
 * A container's health check (the Dockerfile's HEALTHCHECK): exit 0 when this container's domcast
 * answers. Without flags, the server on PORT answers GET /health; with --worker, this machine's
 * worker (DOMCAST_WORKER_ID, else one named after the host name, as workers name themselves) has
 * a current heartbeat in Redis. One line on stderr when it does not.
 */
export async function healthCommand(args: string[]): Promise<number> {
  const unknown = args.filter((a) => a !== '--worker');
  if (unknown.length > 0) throw new UsageError(`health takes only --worker (got ${unknown.join(' ')})`);
  const config = loadConfig();
  if (args.includes('--worker')) {
    if (!config.cluster) throw new ConfigError('health --worker needs DOMCAST_REDIS_URL (cluster mode)');
    const [{ Redis }, { runKeys }] = await Promise.all([import('ioredis'), import('../cluster/run-queue.js')]);
    const redis = new Redis(config.cluster.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 3000 });
    redis.on('error', () => undefined);
    try {
      await redis.connect();
      const [seconds, micros] = await redis.time();
      const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
      const live = await redis.zrangebyscore(runKeys(config.cluster.prefix).workers, now, '+inf');
      const mine = config.cluster.workerId ?? `${hostname()}-`;
      const found = live.some((id) => (config.cluster?.workerId ? id === mine : id.startsWith(mine)));
      if (!found) console.error(`domcast: no live worker ${config.cluster.workerId ?? `named ${mine}…`} in Redis (${live.length} live in all)`);
      return found ? 0 : 1;
    } catch (err) {
      console.error(`domcast: cannot ask Redis: ${errorMessage(err)}`);
      return 1;
    } finally {
      redis.disconnect();
    }
  }
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host.includes(':') ? `[${config.host}]` : config.host;
  try {
    const res = await fetch(`http://${host}:${config.port}/health`, { signal: AbortSignal.timeout(3000) });
    const body = (await res.json()) as { status?: string };
    if (res.ok && body.status === 'ok') return 0;
    console.error(`domcast: /health answered ${res.status} ${body.status ?? ''}`.trim());
    return 1;
  } catch (err) {
    console.error(`domcast: nothing answers on ${host}:${config.port}: ${errorMessage(err)}`);
    return 1;
  }
}
