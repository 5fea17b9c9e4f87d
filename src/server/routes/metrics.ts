import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { AppDeps } from '../deps.js';
import { createPrometheus, type HttpTally } from '../prometheus.js';
import { binary, errors } from '../schemas.js';

/**
 * `GET /metrics`: Prometheus text format, from a registry of this server's own. Needs the API key,
 * or METRICS_TOKEN when that is set (access rule `metrics`, see access.ts).
 */
export function registerMetrics(fastify: FastifyInstance, deps: AppDeps): void {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const http: HttpTally = { internalErrors: 0 };
  const register = createPrometheus(deps, http);
  app.addHook('onResponse', async (_req, reply) => {
    if (reply.statusCode >= 500) http.internalErrors++;
  });

  app.get(
    '/metrics',
    {
      config: { access: 'metrics' },
      schema: {
        tags: ['health'],
        summary: 'Prometheus metrics',
        description: 'Prometheus text exposition format (names prefixed `domcast_`, base units). The API key, or METRICS_TOKEN when set.',
        response: { 200: binary('Prometheus text format', 'text/plain'), ...errors },
      },
    },
    async (_req, reply) => reply.type(register.contentType).send(await register.metrics()),
  );
}
