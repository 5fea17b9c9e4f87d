/**
 * DOMCAST_REDIS_URL is a secret (it may carry a password): it is shown, in errors and logs, only
 * as what these functions make of it.
 */

/** Why the setting is not a Redis URL we can use, or null when it is. */
export function redisUrlProblem(value: string): string | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'must be a URL like redis://host:6379 (or rediss:// for TLS)';
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') return `must start with redis:// or rediss:// (not ${url.protocol}//)`;
  if (url.hostname === '') return 'must name a host, like redis://host:6379';
  const db = url.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d{1,2}$/.test(db)) return `the path must be a database number, like redis://host:6379/0 (not /${db.slice(0, 20)})`;
  return null;
}

/** host:port of the URL, never its user or password (for messages). */
export function describeRedisUrl(value: string): string {
  try {
    const url = new URL(value);
    return `${url.hostname}:${url.port || '6379'}`;
  } catch {
    return 'an unreadable DOMCAST_REDIS_URL';
  }
}
