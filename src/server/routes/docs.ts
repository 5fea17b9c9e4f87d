import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { NotFoundError } from '../../common/index.js';
import { binary, errors } from '../schemas.js';

/**
 * Swagger UI runs from our own files only: no CDN, no inline script, no validator badge fetched
 * from swagger.io. Its styles set inline `style` attributes and its icons are `data:` SVGs.
 */
export const DOCS_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "object-src 'none'",
  "frame-ancestors 'none'",
].join('; ');

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>domcast API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,"><link rel="stylesheet" href="docs/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script src="docs/init.js"></script>
</body></html>
`;

/** Relative to /docs, so the page works behind a proxy that mounts us under a path. */
const INIT = `window.ui = SwaggerUIBundle({
  url: 'openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: 'BaseLayout',
});
`;

const FILES: Record<string, { file?: string; body?: string; type: string }> = {
  'swagger-ui.css': { file: 'swagger-ui.css', type: 'text/css; charset=utf-8' },
  'swagger-ui-bundle.js': { file: 'swagger-ui-bundle.js', type: 'text/javascript; charset=utf-8' },
  'init.js': { body: INIT, type: 'text/javascript; charset=utf-8' },
};

/** swagger-ui-dist's folder in node_modules (a dependency: the CLI bundle keeps packages external). */
const swaggerUiDir = () => dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));

/**
 * The API contract: `GET /openapi.json` (OpenAPI 3.1, generated from the routes' zod schemas) and
 * a page that shows it, `GET /docs`. Both are public: they describe routes and shapes, which the
 * README does too, and hold no data; every operation still needs its own credentials.
 */
export function registerDocs(fastify: FastifyInstance): void {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  // Read on first use (the bundle is 1.5 MB), then kept.
  const loaded = new Map<string, Promise<string>>();
  const load = (name: string, f: { file?: string; body?: string }) => {
    let body = loaded.get(name);
    if (!body) {
      body = f.body !== undefined ? Promise.resolve(f.body) : readFile(join(swaggerUiDir(), f.file ?? name), 'utf8');
      loaded.set(name, body);
    }
    return body;
  };

  app.get(
    '/openapi.json',
    {
      config: { access: 'public' },
      schema: {
        tags: ['docs'],
        summary: 'This document (OpenAPI 3.1)',
        response: { 200: z.looseObject({ openapi: z.string() }).describe('An OpenAPI 3.1 document.'), ...errors },
      },
    },
    async (_req, reply) => {
      reply.header('cache-control', 'no-cache');
      return fastify.swagger() as { openapi: string };
    },
  );

  app.get(
    '/docs',
    { config: { access: 'public' }, schema: { tags: ['docs'], summary: 'The API reference (Swagger UI)', response: { 200: binary('An HTML page', 'text/html') } } },
    async (_req, reply) =>
      reply
        .header('content-security-policy', DOCS_CSP)
        .header('x-content-type-options', 'nosniff')
        .header('referrer-policy', 'no-referrer')
        .type('text/html; charset=utf-8')
        .send(PAGE),
  );

  app.get(
    '/docs/:file',
    {
      config: { access: 'public' },
      schema: {
        tags: ['docs'],
        summary: "The reference page's scripts and styles",
        params: z.object({ file: z.string().max(100) }),
        response: { 200: binary('A script or a stylesheet', 'text/plain'), ...errors },
      },
    },
    async (req, reply) => {
      const f = Object.hasOwn(FILES, req.params.file) ? FILES[req.params.file] : undefined;
      if (!f) throw new NotFoundError(`no docs file ${req.params.file}`);
      return reply
        .header('cache-control', 'public, max-age=3600')
        .header('x-content-type-options', 'nosniff')
        .type(f.type)
        .send(await load(req.params.file, f));
    },
  );
}
