import type { FastifyRequest } from 'fastify';
import { assetPrefix } from '../assets/index.js';

/**
 * The viewer page hands its token to the session's captured assets as a cookie: `<img>`, CSS and
 * fonts cannot send a header, and their URLs (written into the recording) carry no token.
 */
export const ASSET_COOKIE = 'domcast_assets';

const COMPACT_JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/**
 * Scoped to one session's asset path, unreadable by scripts, for as long as the token lives. Over
 * https it is `SameSite=None; Secure; Partitioned`, so a viewer embedded in another site's page
 * gets its assets (the cookie lives in that site's partition only); over http, `SameSite=Strict`.
 */
export function assetCookie(sessionId: string, token: string, expiresAt: number, secure: boolean): string | null {
  // A verified token is three base64url parts; anything else could smuggle cookie attributes.
  if (!COMPACT_JWT.test(token)) return null;
  const maxAge = Math.max(0, Math.floor((expiresAt - Date.now()) / 1000));
  const site = secure ? 'SameSite=None; Secure; Partitioned' : 'SameSite=Strict';
  return `${ASSET_COOKIE}=${token}; Path=${assetPrefix(sessionId)}; Max-Age=${maxAge}; HttpOnly; ${site}`;
}

/** The token in the request's asset cookie, if any (the first: the browser sends the most specific path first). */
export function assetCookieToken(req: FastifyRequest): string | null {
  const header = req.headers.cookie;
  if (typeof header !== 'string') return null;
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq > 0 && pair.slice(0, eq).trim() === ASSET_COOKIE) return pair.slice(eq + 1).trim() || null;
  }
  return null;
}
