import type { FastifyInstance } from 'fastify';
import { NotFoundError, readBuiltAsset } from '../../common/index.js';
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
