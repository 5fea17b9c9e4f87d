import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { BadRequestError, NotFoundError } from '../../common/index.js';
import type { AppDeps } from '../deps.js';
import { errors, isoTime, sessionParams } from '../schemas.js';
import { origins } from './execute.js';

/** A shared link lives at least a minute and at most a week. */
export const LINK_TTL_MIN_S = 60;
export const LINK_TTL_MAX_S = 7 * 24 * 3600;

const linkBody = z.strictObject({
  ttl_s: z.number().int().min(LINK_TTL_MIN_S).max(LINK_TTL_MAX_S).describe(`How long the link works, in seconds (${LINK_TTL_MIN_S} to ${LINK_TTL_MAX_S}).`),
});

const link = z.object({
  viewer_url: z.string().describe('The viewer page, with a viewer token that lives ttl_s.'),
  visual_stream_url: z.string(),
  expires_at: isoTime,
});

/** `POST /workflows/{id}/links`: a viewer link to share, with a lifetime of the caller's choosing. */
export function registerLinks(fastify: FastifyInstance, deps: AppDeps): void {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  app.post(
    '/workflows/:id/links',
    {
      schema: {
        tags: ['runs'],
        summary: 'A fresh viewer link with a chosen lifetime, to share',
        description: 'Whoever holds it may watch this run and read its recording and screenshots until it expires; 409 for a run without visual_enabled.',
        params: sessionParams,
        body: linkBody,
        response: { 201: link, ...errors },
      },
    },
    async (req, reply) => {
      const { id } = req.params;
      const session = deps.registry.get(id) ?? (await deps.store.get(id));
      if (!session) throw new NotFoundError(`unknown session ${id.slice(0, 64)}`);
      if (!session.visual) throw new BadRequestError(`session ${id} ran with visual_enabled=false; there is nothing to view`, 409, 'NOT_VISUAL');
      const o = origins(req);
      const links = await deps.viewerTokens.links(id, o.http, o.ws, req.body.ttl_s);
      reply.code(201);
      return { viewer_url: links.viewerUrl, visual_stream_url: links.streamUrl, expires_at: links.expiresAt.toISOString() };
    },
  );
}
