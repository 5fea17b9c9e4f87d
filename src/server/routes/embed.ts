import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { readBuiltAsset } from '../../common/index.js';
import { binary } from '../schemas.js';

/** Where the `<domcast-viewer>` custom element is served (src/embed/, bundled by scripts/build.mjs). */
export const EMBED_SCRIPT_PATH = '/embed/domcast-viewer.js';

/**
 * The custom element another site's page loads with `<script type="module" src>`: public, and with
 * CORS, because a cross-origin module script is fetched in CORS mode. It holds no secret; what it
 * shows is decided by the viewer link it is given and by who may frame the viewer (frame-ancestors).
 */
export function registerEmbed(fastify: FastifyInstance): void {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const body = readBuiltAsset('embed/domcast-viewer.js');
  app.get(
    EMBED_SCRIPT_PATH,
    {
      config: { access: 'public' },
      schema: {
        tags: ['viewer'],
        summary: 'The <domcast-viewer> custom element',
        description: 'An ES module defining `<domcast-viewer src="…viewer link…">`, which frames the viewer in embed mode and dispatches `domcast-status`, `domcast-step` and `domcast-error` events. Any origin may load it (CORS); only VIEWER_ORIGINS may frame the viewer.',
        response: { 200: binary('A JavaScript module', 'text/javascript') },
      },
    },
    async (_req, reply) =>
      reply
        .header('access-control-allow-origin', '*')
        .header('cross-origin-resource-policy', 'cross-origin')
        .header('x-content-type-options', 'nosniff')
        .header('cache-control', 'public, max-age=300')
        .type('text/javascript; charset=utf-8')
        .send(body),
  );
}
