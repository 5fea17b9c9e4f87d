import type { FastifyInstance } from 'fastify';
import { NotFoundError, readBuiltAsset } from '../../common/index.js';
import { assetCookie } from '../asset-cookie.js';
import type { AppDeps } from '../deps.js';

/**
 * The replayed page lives in rrweb's sandboxed iframe, which inherits this policy: nothing is
 * fetched from anywhere but us, recorded scripts never run, recorded styles do apply.
 */
export const VIEWER_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self' data:",
  "media-src 'self' data: blob:",
  "connect-src 'self'",
  "frame-src 'self' blob: data:",
  "base-uri 'none'",
  "form-action 'none'",
  "object-src 'none'",
  "frame-ancestors 'self'",
].join('; ');

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** What a person who opened a viewer link sees when it cannot be shown: the reason, in words. */
export function viewerErrorPage(status: number, message: string): string {
  const title = status === 401 ? 'This viewer link does not work' : 'Nothing to watch here';
  const hint = status === 401 ? 'Ask whoever shared it for a fresh link (links expire after a while).' : 'The run may have been deleted, or the link is mistyped.';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>domcast · ${escapeHtml(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{margin:0;min-height:100vh;display:grid;place-items:center;background:#0b1120;color:#e2e8f0;font:15px/1.5 system-ui,sans-serif}
main{max-width:32rem;padding:2rem;border:1px solid #1e293b;border-radius:12px;background:#0f172a}h1{font-size:1.15rem;margin:0 0 .5rem}
p{margin:.25rem 0;color:#94a3b8}code{color:#fca5a5}</style></head>
<body><main><h1>${escapeHtml(title)}</h1><p><code>${escapeHtml(message)}</code></p><p>${hint}</p></main></body></html>`;
}

const ASSETS: Record<string, { file: string; type: string }> = {
  'viewer.js': { file: 'viewer/viewer.js', type: 'text/javascript; charset=utf-8' },
  'viewer.css': { file: 'viewer/viewer.css', type: 'text/css; charset=utf-8' },
  'rrweb.css': { file: 'viewer/rrweb.css', type: 'text/css; charset=utf-8' },
};

export function registerViewer(app: FastifyInstance, deps: AppDeps): void {
  const html = readBuiltAsset('viewer/index.html');
  const assets = new Map(Object.entries(ASSETS).map(([name, a]) => [name, { body: readBuiltAsset(a.file), type: a.type }]));

  app.get<{ Params: { id: string } }>('/workflows/visual/:id/viewer', { config: { access: 'viewer-only' } }, async (req, reply) => {
    const { id } = req.params;
    const session = deps.registry.get(id) ?? deps.store.get(id);
    if (!session) throw new NotFoundError(`unknown session ${id.slice(0, 64)}`);
    if (!session.visual) throw new NotFoundError(`session ${id} runs with visual_enabled=false; there is nothing to view`);
    // The replay's <img>, CSS and fonts fetch the session's captured assets without a header: the link's token goes to them as a cookie.
    const grant = req.viewerGrant;
    const cookie = grant && assetCookie(id, grant.token, grant.expiresAt, req.protocol === 'https');
    if (cookie) reply.header('set-cookie', cookie);
    return reply
      .header('content-security-policy', VIEWER_CSP)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('cache-control', 'no-store')
      .type('text/html; charset=utf-8')
      .send(html);
  });

  app.get<{ Params: { name: string } }>('/assets/:name', { config: { access: 'public' } }, async (req, reply) => {
    const asset = assets.get(req.params.name);
    if (!asset) throw new NotFoundError(`no asset ${req.params.name}`);
    return reply.header('cache-control', 'public, max-age=300').header('x-content-type-options', 'nosniff').type(asset.type).send(asset.body);
  });
}
