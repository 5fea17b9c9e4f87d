import fastifySwagger from '@fastify/swagger';
import type { FastifyInstance } from 'fastify';
import { jsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod';
import type { OpenAPIV3_1 } from 'openapi-types';
import type { RouteAccess } from './access.js';

/** Who may call a route (its `config.access`, see access.ts), as OpenAPI security requirements. */
const SECURITY: Record<RouteAccess | 'api', OpenAPIV3_1.SecurityRequirementObject[]> = {
  api: [{ apiKey: [] }],
  public: [],
  viewer: [{ apiKey: [] }, { viewerToken: [] }],
  'viewer-only': [{ viewerToken: [] }],
  'viewer-asset': [{ apiKey: [] }, { viewerToken: [] }, { assetCookie: [] }],
  metrics: [{ apiKey: [] }, { metricsToken: [] }],
};

/** The contract's version: bumped when an answer loses a field or a request needs a new one. */
export const API_VERSION = '1.0.0';

const DESCRIPTION = `Run browser workflows in headless Chromium and watch them live as DOM.

The live stream itself is a WebSocket, \`GET /workflows/visual/{id}?token=…\` (upgrade), outside this
document: its frames are described in docs/PROTOCOL.md. Errors are JSON \`{error, code}\`; a 400's
\`error\` names each field that was wrong (\`workflow.steps[2].url: must not be empty\`).`;

/**
 * Collects every route's zod schemas into an OpenAPI 3.1 document (served by routes/docs.ts).
 * Registered before any route: @fastify/swagger sees routes through an onRoute hook, so routes
 * must be added once it is loaded (createServer adds them in `app.after`). Each operation's
 * security comes from its route's `config.access`, the same rule the access hook enforces.
 */
export function registerOpenApi(app: FastifyInstance): void {
  app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'domcast', version: API_VERSION, description: DESCRIPTION },
      components: {
        securitySchemes: {
          apiKey: {
            type: 'http',
            scheme: 'bearer',
            description: 'DOMCAST_API_KEY, as `Authorization: Bearer <key>`. Not needed when the server runs without a key.',
          },
          metricsToken: {
            type: 'http',
            scheme: 'bearer',
            description: 'METRICS_TOKEN, as `Authorization: Bearer <token>`: GET /metrics only, for a scraper that should not hold the API key.',
          },
          viewerToken: {
            type: 'apiKey',
            in: 'query',
            name: 'token',
            description:
              'A viewer token for the session in the path, from viewer_url or visual_stream_url (`?token=`, or as `Authorization: Bearer`). Read-only, one session, expires after VIEWER_TOKEN_TTL.',
          },
          assetCookie: {
            type: 'apiKey',
            in: 'cookie',
            name: 'domcast_assets',
            description: "The viewer page's token, set as a cookie scoped to the session's asset path.",
          },
        },
      },
    },
    // Schemas with a `.meta({ id })` (Session, Error, …) become components, referenced by $ref.
    transformObject: jsonSchemaTransformObject,
    transform(document) {
      const { schema, url } = jsonSchemaTransform(document);
      const access = document.route.config?.access;
      const security = SECURITY[access ?? 'api'] ?? SECURITY.api;
      return { schema: { ...schema, security }, url };
    },
  });
}
