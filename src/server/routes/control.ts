import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { BadRequestError, NotFoundError } from '../../common/index.js';
import { CONTROL_FRAGMENT, controlPath, TERMINAL_STATUSES, type SessionStatus } from '../../protocol/index.js';
import { MAX_CONTROL_GRANTS } from '../../session/index.js';
import type { AppDeps } from '../deps.js';
import { errors, isoTime, sessionParams } from '../schemas.js';
import { origins } from './execute.js';

/** A control link lives 10 minutes unless asked otherwise: 30 s to 1 h. */
export const CONTROL_TTL_DEFAULT_S = 600;
export const CONTROL_TTL_MIN_S = 30;
export const CONTROL_TTL_MAX_S = 3600;

const controlBody = z
  .strictObject({
    ttl_s: z
      .number()
      .int()
      .min(CONTROL_TTL_MIN_S)
      .max(CONTROL_TTL_MAX_S)
      .optional()
      .describe(`How long the control link works, in seconds (${CONTROL_TTL_MIN_S} to ${CONTROL_TTL_MAX_S}; default ${CONTROL_TTL_DEFAULT_S}).`),
  })
  .optional();

const controlLink = z.object({
  control_url: z.string().describe('The viewer page with control: its read-only viewer token in the query, the control token in the fragment (#control=…).'),
  control_stream_url: z.string().describe('The control socket (WS), to open with ?token=<control_token>; docs/PROTOCOL.md.'),
  control_token: z.string().describe('A signed token with the `control` scope, for this run only.'),
  token_id: z.string().describe('Its id, as the audit events (domcast.control) name it.'),
  expires_at: isoTime,
});

const revoked = z.object({ revoked: z.number().describe('How many control links stopped working (a person holding control lost it).') });

const revokeQuery = z.object({ token_id: z.string().max(100).optional().describe('Revoke this control link only; without it, every one of the run.') });

/** `POST /workflows/{id}/control` (a control link) and `DELETE` (take control away). The API key only. */
export function registerControl(fastify: FastifyInstance, deps: AppDeps): void {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  app.post(
    '/workflows/:id/control',
    {
      schema: {
        tags: ['runs'],
        summary: 'A control link: a person may take over the running page from the viewer',
        description:
          'Whoever holds it may take control of this run\'s page (pointer, keyboard, wheel) from the viewer while the workflow waits between steps, and release it. One person at a time; every action is in the recording. 409 for a run that ended, is not visual, or already has ' +
          `${MAX_CONTROL_GRANTS} live control links.`,
        params: sessionParams,
        body: controlBody,
        response: { 201: controlLink, ...errors },
      },
    },
    async (req, reply) => {
      const { id } = req.params;
      const session = deps.registry.get(id);
      if (!session) {
        const row = await deps.store.get(id);
        if (row && deps.cluster && !TERMINAL_STATUSES.includes(row.status as SessionStatus)) {
          throw new BadRequestError(`take control is not available in cluster mode yet: session ${id} runs on a worker (docs/CLUSTER.md)`, 501, 'NOT_IN_CLUSTER_MODE');
        }
        if (row) throw new BadRequestError(`session ${id} already ended; there is nothing to control`, 409, 'ALREADY_ENDED');
        throw new NotFoundError(`unknown session ${id.slice(0, 64)}`);
      }
      if (session.finished) throw new BadRequestError(`session ${id} already ended (${session.status}); there is nothing to control`, 409, 'ALREADY_ENDED');
      if (!session.visual) throw new BadRequestError(`session ${id} runs with visual_enabled=false; control happens in the viewer`, 409, 'NOT_VISUAL');
      const ttl = req.body?.ttl_s ?? CONTROL_TTL_DEFAULT_S;
      const control = await deps.viewerTokens.issueControl(id, ttl);
      if (!session.control.grant(control.jti, control.expiresAt)) {
        throw new BadRequestError(`session ${id} has ${MAX_CONTROL_GRANTS} live control links; revoke them (DELETE /workflows/${id}/control) or let them expire`, 409, 'TOO_MANY_CONTROL_LINKS');
      }
      const o = origins(req);
      const view = await deps.viewerTokens.links(id, o.http, o.ws);
      reply.code(201);
      return {
        control_url: `${view.viewerUrl}#${CONTROL_FRAGMENT}=${encodeURIComponent(control.token)}`,
        control_stream_url: `${o.ws}${controlPath(id)}`,
        control_token: control.token,
        token_id: control.jti,
        expires_at: new Date(control.expiresAt).toISOString(),
      };
    },
  );

  app.delete(
    '/workflows/:id/control',
    {
      schema: {
        tags: ['runs'],
        summary: 'Take control away: revoke the run\'s control links',
        description: 'Every control link of the run (or the one named by token_id) stops working; a person holding control loses it, and the workflow goes on.',
        params: sessionParams,
        querystring: revokeQuery,
        response: { 200: revoked, ...errors },
      },
    },
    async (req) => {
      const { id } = req.params;
      const session = deps.registry.get(id);
      if (!session) {
        if (await deps.store.get(id)) return { revoked: 0 };
        throw new NotFoundError(`unknown session ${id.slice(0, 64)}`);
      }
      const one = req.query.token_id;
      if (one === undefined) return { revoked: session.control.revokeAll('revoked') };
      const had = session.control.granted(one);
      session.control.revoke(one, 'revoked');
      return { revoked: had ? 1 : 0 };
    },
  );
}
