import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { BadRequestError, NotFoundError, readBuiltAsset } from '../../common/index.js';
import { UnauthorizedError } from '../access.js';
import { checkSameOrigin, sessionCookie, sessionCookieId } from '../dashboard-session.js';
import type { AppDeps } from '../deps.js';
import { RateLimiter } from '../rate-limit.js';
import { binary, errors } from '../schemas.js';

/**
 * The dashboard runs our own script only; rrweb's thumbnails need inline styles (the replayed
 * page's own) and its sandboxed iframe; the page's data comes from the API on this origin.
 */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "frame-src 'self' blob: data:",
  "base-uri 'none'",
  "form-action 'self'",
  "object-src 'none'",
  "frame-ancestors 'none'",
].join('; ');

const FILES: Record<string, { file: string; type: string }> = {
  'dashboard.js': { file: 'dashboard/dashboard.js', type: 'text/javascript; charset=utf-8' },
  'dashboard.css': { file: 'dashboard/dashboard.css', type: 'text/css; charset=utf-8' },
};

/** Sign-in attempts per minute per client address: the key is long, but guesses cost nothing else. */
const SIGN_IN_PER_MINUTE = 10;

const signInBody = z.strictObject({ key: z.string().min(1).max(1000).describe('DOMCAST_API_KEY.') });

const signInState = z.object({
  key_required: z.boolean().describe('false when DOMCAST_API_KEY is unset: the dashboard, like the API, is open.'),
  signed_in: z.boolean().describe('This browser may use the API (it holds a valid sign-in cookie, or no key is needed).'),
});

const secure = (req: FastifyRequest) => req.protocol === 'https';
const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * The operator dashboard at `/` and its sign-in: the API key, posted once, is exchanged for an
 * HttpOnly, SameSite=Strict cookie (src/server/dashboard-session.ts) that the access hook takes
 * for the key. The page and its files are public; everything they show comes from the API.
 */
export function registerDashboard(fastify: FastifyInstance, deps: AppDeps): void {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const html = readBuiltAsset('dashboard/index.html');
  const files = new Map(Object.entries(FILES).map(([name, f]) => [name, { body: readBuiltAsset(f.file), type: f.type }]));
  const key = deps.config.apiKey;
  const keyDigest = key === undefined ? null : digest(key);
  const limiter = new RateLimiter(SIGN_IN_PER_MINUTE);

  app.get(
    '/',
    { config: { access: 'public' }, schema: { tags: ['dashboard'], summary: 'The operator dashboard', response: { 200: binary('An HTML page', 'text/html') } } },
    async (_req, reply) =>
      reply
        .header('content-security-policy', DASHBOARD_CSP)
        .header('x-content-type-options', 'nosniff')
        .header('referrer-policy', 'no-referrer')
        .header('cache-control', 'no-store')
        .type('text/html; charset=utf-8')
        .send(html),
  );

  app.get(
    '/dashboard/:file',
    {
      config: { access: 'public' },
      schema: {
        tags: ['dashboard'],
        summary: "The dashboard's script and styles",
        params: z.object({ file: z.string().max(100) }),
        response: { 200: binary('A script or a stylesheet', 'text/plain'), ...errors },
      },
    },
    async (req, reply) => {
      const f = Object.hasOwn(FILES, req.params.file) ? files.get(req.params.file) : undefined;
      if (!f) throw new NotFoundError(`no dashboard file ${req.params.file}`);
      return reply.header('cache-control', 'no-cache').header('x-content-type-options', 'nosniff').type(f.type).send(f.body);
    },
  );

  app.get(
    '/dashboard/session',
    { config: { access: 'public' }, schema: { tags: ['dashboard'], summary: 'Whether this browser is signed in', response: { 200: signInState, ...errors } } },
    async (req, reply) => {
      reply.header('cache-control', 'no-store');
      return { key_required: keyDigest !== null, signed_in: keyDigest === null || deps.dashboardSessions.valid(sessionCookieId(req)) };
    },
  );

  app.post(
    '/dashboard/session',
    {
      config: { access: 'public' },
      schema: {
        tags: ['dashboard'],
        summary: 'Sign in: the API key for a session cookie',
        description:
          'Sets `domcast_session` (HttpOnly, SameSite=Strict, 12 h), which stands for the API key on this origin. Only from our own origin; 401 for a wrong key; 429 past 10 tries a minute.',
        body: signInBody,
        response: { 204: z.undefined().describe('Signed in.'), ...errors },
      },
    },
    async (req, reply) => {
      // A sign-in forced on a browser by another site (login CSRF) is refused like any other cross-origin write.
      checkSameOrigin(req);
      const wait = limiter.take(req.ip);
      if (wait > 0) {
        reply.header('retry-after', String(wait));
        throw new BadRequestError(`too many sign-in attempts; retry in ${wait} s`, 429, 'RATE_LIMITED');
      }
      if (keyDigest === null) throw new BadRequestError('this server has no API key (DOMCAST_API_KEY): the dashboard is open, no sign-in needed', 409, 'NO_KEY');
      if (!timingSafeEqual(digest(req.body.key), keyDigest)) throw new UnauthorizedError('wrong API key');
      reply.header('set-cookie', sessionCookie(deps.dashboardSessions.create(), secure(req)));
      return reply.code(204).send();
    },
  );

  app.delete(
    '/dashboard/session',
    {
      config: { access: 'public' },
      schema: { tags: ['dashboard'], summary: 'Sign out', description: 'The cookie stops working, here and in any copy of it.', response: { 204: z.undefined().describe('Signed out.'), ...errors } },
    },
    async (req, reply) => {
      checkSameOrigin(req);
      deps.dashboardSessions.revoke(sessionCookieId(req));
      reply.header('set-cookie', sessionCookie(null, secure(req)));
      return reply.code(204).send();
    },
  );
}
