import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { BadRequestError } from '../common/index.js';
import { assetCookieToken } from './asset-cookie.js';
import { checkSameOrigin, sessionCookieId } from './dashboard-session.js';
import type { AppDeps } from './deps.js';
import { RateLimiter } from './rate-limit.js';

/**
 * Who may call a route, set per route as `config: { access }`:
 * - `public`: anyone (liveness, the viewer's static assets);
 * - `viewer`: the API key, or a viewer token for the session in the path (`?token=` or `Authorization: Bearer`);
 * - `viewer-only`: a viewer token for that session, always (the viewer page: its links carry one);
 * - `viewer-asset`: as `viewer`, or the token in the asset cookie the viewer page set (a session's
 *   captured assets, which `<img>`, CSS and fonts fetch without a header);
 * - `metrics`: the API key, or METRICS_TOKEN when one is set (a scraper need not hold the key);
 *   open only when neither is set;
 * - unset: the API, which needs DOMCAST_API_KEY when one is set.
 * The dashboard's sign-in cookie (src/server/dashboard-session.ts) counts as the API key on every
 * rule but `viewer-only`, and a request with it that changes something must come from our own origin.
 */
export type RouteAccess = 'public' | 'viewer' | 'viewer-only' | 'viewer-asset' | 'metrics';

/** The viewer token a request got in with, and when it expires (ms since the epoch). */
export interface ViewerGrant {
  token: string;
  expiresAt: number;
}

/** How the caller got in: with the API key, a viewer token, or because no key is set. */
export type Caller = 'key' | 'viewer' | 'open';

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: RouteAccess;
  }
  interface FastifyRequest {
    caller: Caller;
    /** Set when the caller got in with a viewer token. */
    viewerGrant: ViewerGrant | null;
  }
}

export class UnauthorizedError extends BadRequestError {
  constructor(message: string) {
    super(message, 401, 'UNAUTHORIZED');
  }
}

function bearer(req: FastifyRequest): string | null {
  const header = req.headers.authorization;
  const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  return match?.[1] ?? null;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Checks every request against its route's access rule and rate-limits runs per caller. */
export function registerAccess(app: FastifyInstance, deps: AppDeps): void {
  const key = deps.config.apiKey;
  const keyDigest = key === undefined ? null : digest(key);
  const isKey = (candidate: string | null) => keyDigest !== null && candidate !== null && timingSafeEqual(digest(candidate), keyDigest);
  const metricsDigest = deps.config.metricsToken === undefined ? null : digest(deps.config.metricsToken);

  app.decorateRequest('caller', 'open');
  app.decorateRequest('viewerGrant', null);
  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    const access = req.routeOptions.config.access;
    if (access === 'public') return;
    const presented = bearer(req);
    if (access === 'metrics' && metricsDigest !== null && presented !== null && timingSafeEqual(digest(presented), metricsDigest)) return;
    if (access !== 'viewer-only' && isKey(presented)) {
      req.caller = 'key';
      return;
    }
    if (access !== 'viewer-only' && keyDigest !== null && presented === null && deps.dashboardSessions.valid(sessionCookieId(req))) {
      checkSameOrigin(req);
      req.caller = 'key';
      return;
    }
    if (access === 'viewer' || access === 'viewer-only' || access === 'viewer-asset') {
      const query = req.query as Record<string, unknown>;
      // The viewer page is opened by a browser from its link: only the link's token counts there.
      const fromQuery = typeof query.token === 'string' ? query.token : null;
      const token =
        access === 'viewer-only' ? fromQuery : (fromQuery ?? presented ?? (access === 'viewer-asset' ? assetCookieToken(req) : null));
      const sessionId = (req.params as { id?: string }).id ?? '';
      if (token !== null || access === 'viewer-only' || keyDigest !== null) {
        const check = await deps.viewerTokens.grant(token, sessionId);
        if (check.ok) {
          req.caller = 'viewer';
          req.viewerGrant = token === null ? null : { token, expiresAt: check.expiresAt };
          return;
        }
        if (access === 'viewer-only' || keyDigest !== null) throw new UnauthorizedError(check.reason);
      }
    }
    const metricsLocked = access === 'metrics' && metricsDigest !== null;
    if (keyDigest === null && !metricsLocked) return;
    reply.header('www-authenticate', 'Bearer realm="domcast"');
    if (metricsLocked) throw new UnauthorizedError(presented === null ? 'send Authorization: Bearer <METRICS_TOKEN> (or the API key)' : 'wrong metrics token');
    throw new UnauthorizedError(
      presented === null ? 'this server needs an API key: send Authorization: Bearer <DOMCAST_API_KEY>' : 'wrong API key',
    );
  });
}

/** A preHandler for routes that start runs: EXECUTE_RATE_LIMIT per minute per caller. */
export function rateLimitRuns(perMinute: number): (req: FastifyRequest, reply: FastifyReply) => Promise<void> {
  const limiter = new RateLimiter(perMinute);
  return async (req, reply) => {
    // With a key every caller is that key's holder; without one, callers are told apart by address.
    const wait = limiter.take(req.caller === 'key' ? 'api-key' : req.ip);
    if (wait === 0) return;
    reply.header('retry-after', String(wait));
    throw new BadRequestError(`too many runs started: at most ${perMinute} a minute (EXECUTE_RATE_LIMIT); retry in ${wait} s`, 429, 'RATE_LIMITED');
  };
}
