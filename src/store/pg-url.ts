/**
 * DOMCAST_DATABASE_URL is a secret (it may carry a password): it is shown, in errors and logs,
 * only as what these functions make of it.
 */

/** Why the setting is not a PostgreSQL URL we can use, or null when it is. */
export function postgresUrlProblem(value: string): string | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'must be a URL like postgres://user:password@host:5432/database';
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') return `must start with postgres:// or postgresql:// (not ${url.protocol}//)`;
  if (url.hostname === '') return 'must name a host, like postgres://user@host:5432/database';
  if (url.pathname.length <= 1) return 'must name a database, like postgres://user@host:5432/database';
  return null;
}

/** host:port/database of the URL, never its user or password (for messages). */
export function describePostgresUrl(value: string): string {
  try {
    const url = new URL(value);
    return `${url.hostname}:${url.port || '5432'}${url.pathname}`;
  } catch {
    return 'an unreadable DOMCAST_DATABASE_URL';
  }
}
