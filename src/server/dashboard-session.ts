import { randomBytes } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { BadRequestError } from '../common/index.js';

/** The dashboard's sign-in cookie: a random id known to this process, never the key itself. */
export const SESSION_COOKIE = 'domcast_session';

/** How long a sign-in lasts. */
export const SESSION_TTL_MS = 12 * 60 * 60 * 1000;

/** Signed-in browsers kept at once; past this the oldest sign-in is forgotten (it signs in again). */
const MAX_SESSIONS = 1000;

const ID = /^[A-Za-z0-9_-]{43}$/;

/**
 * Dashboard sign-ins, server-side: the cookie holds a random 256-bit id and this table says whether
 * it is still good. Signing out removes it for good (a copied cookie stops working too); a restart
 * signs everyone out, which is the price of keeping nothing on disk.
 */
export class DashboardSessions {
  private readonly sessions = new Map<string, number>();

  constructor(
    private readonly ttlMs = SESSION_TTL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** A new sign-in: its id and when it expires (ms since the epoch). */
  create(): { id: string; expiresAt: number } {
    const id = randomBytes(32).toString('base64url');
    const expiresAt = this.now() + this.ttlMs;
    this.sessions.set(id, expiresAt);
    for (const [old, at] of this.sessions) {
      if (this.sessions.size <= MAX_SESSIONS && at > this.now()) break;
      this.sessions.delete(old);
    }
    return { id, expiresAt };
  }

  valid(id: string | null): boolean {
    if (id === null) return false;
    const at = this.sessions.get(id);
    if (at === undefined) return false;
    if (at > this.now()) return true;
    this.sessions.delete(id);
    return false;
  }

  revoke(id: string | null): void {
    if (id !== null) this.sessions.delete(id);
  }
}

/** The sign-in id in the request's cookie, if it looks like one of ours. */
export function sessionCookieId(req: FastifyRequest): string | null {
  const header = req.headers.cookie;
  if (typeof header !== 'string') return null;
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq > 0 && pair.slice(0, eq).trim() === SESSION_COOKIE) {
      const value = pair.slice(eq + 1).trim();
      if (ID.test(value)) return value;
    }
  }
  return null;
}

/** The Set-Cookie value for a sign-in (HttpOnly, SameSite=Strict, whole site), or one that clears it. */
export function sessionCookie(value: { id: string; expiresAt: number } | null, secure: boolean): string {
  const flags = `Path=/; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
  if (value === null) return `${SESSION_COOKIE}=; Max-Age=0; ${flags}`;
  const maxAge = Math.max(0, Math.floor((value.expiresAt - Date.now()) / 1000));
  return `${SESSION_COOKIE}=${value.id}; Max-Age=${maxAge}; ${flags}`;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * A cookie goes wherever the browser sends it, so a request that changes something must also show
 * that it came from one of our own pages: `Sec-Fetch-Site: same-origin` when the browser sends it,
 * else an `Origin` on our host. A request with neither (no browser sends a POST without Origin) is refused.
 * Compared by host, as viewer sockets are (a TLS proxy makes an https origin reach us as http).
 */
export function checkSameOrigin(req: FastifyRequest): void {
  if (SAFE_METHODS.has(req.method)) return;
  const site = req.headers['sec-fetch-site'];
  const origin = req.headers.origin;
  let ok: boolean;
  if (typeof site === 'string') ok = site === 'same-origin';
  else if (typeof origin === 'string') ok = sameHost(origin, req.headers.host);
  else ok = false;
  if (typeof site === 'string' && typeof origin === 'string') ok &&= sameHost(origin, req.headers.host);
  if (!ok) throw new BadRequestError('cross-origin request refused: the dashboard cookie works only from the dashboard itself', 403, 'CROSS_ORIGIN');
}

function sameHost(origin: string, host: string | undefined): boolean {
  try {
    const url = new URL(origin);
    return (url.protocol === 'http:' || url.protocol === 'https:') && host !== undefined && url.host === host.toLowerCase();
  } catch {
    return false;
  }
}
