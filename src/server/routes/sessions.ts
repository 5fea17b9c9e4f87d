import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { BadRequestError, NotFoundError } from '../../common/index.js';
import { TERMINAL_STATUSES, type SessionStatus } from '../../protocol/index.js';
import type { Session } from '../../session/index.js';
import type { AppDeps } from '../deps.js';
import { binary, errors, sessionParams, sessionStatus, viewerTokenQuery } from '../schemas.js';
import { presentSession, sessionView } from '../session-view.js';
import { viewerLinks } from './execute.js';

export function findSession(deps: AppDeps, id: string): Session {
  const session = deps.registry.get(id);
  if (!session) throw new NotFoundError(`unknown session ${id.slice(0, 64)}`);
  return session;
}

/** A run, and for the API key's holder fresh viewer links (a viewer token's holder gets none). */
const sessionAnswer = sessionView.extend({
  visual_stream_url: z.string().nullable().optional().describe('With the API key: the live stream, with a fresh viewer token (null when not visual).'),
  viewer_url: z.string().nullable().optional().describe('With the API key: the viewer page, with a fresh viewer token (null when not visual).'),
  viewer_token_expires_at: z.string().nullable().optional(),
});

const stepParams = sessionParams.extend({ index: z.string().max(16).describe('The step index, from 0.') });

export function registerSessions(fastify: FastifyInstance, deps: AppDeps): void {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  app.get(
    '/workflows/:id',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['runs'],
        summary: 'A run: status, timings, steps, outputs, event counts, latency',
        description: 'The same shape whether the run is live, has ended, or was read from the store after a restart.',
        params: sessionParams,
        querystring: viewerTokenQuery,
        response: { 200: sessionAnswer, ...errors },
      },
    },
    async (req) => {
      const { id } = req.params;
      // Runs from before a restart, or evicted from memory, are still on record.
      const source = deps.registry.get(id) ?? (await deps.store.get(id));
      if (!source) throw new NotFoundError(`unknown session ${id.slice(0, 64)}`);
      // Fresh links for whoever may mint them; a viewer token's holder gets no longer-lived one.
      const links = req.caller === 'viewer' ? {} : await viewerLinks(req, deps, id, source.visual);
      return { ...presentSession(source, deps.hub.viewerCount(id)), ...links };
    },
  );

  app.post(
    '/workflows/:id/cancel',
    {
      schema: {
        tags: ['runs'],
        summary: 'Stop a queued or running run',
        description: '409 when it already ended.',
        params: sessionParams,
        response: { 202: z.object({ session_id: z.string(), status: sessionStatus }), ...errors },
      },
    },
    async (req, reply) => {
      const { id } = req.params;
      if (deps.cluster && !deps.registry.get(id)) {
        // Cluster mode: the run is queued, or runs on a worker; the store knows which it was.
        const row = await deps.store.get(id);
        if (!row) throw new NotFoundError(`unknown session ${id.slice(0, 64)}`);
        if (TERMINAL_STATUSES.includes(row.status as SessionStatus)) throw new BadRequestError(`session ${id} already ended (${row.status})`, 409, 'ALREADY_ENDED');
        const status = await deps.cluster.cancel(id);
        reply.code(202);
        return { session_id: id, status: status === 'cancelled' ? status : (row.status as SessionStatus) };
      }
      const session = findSession(deps, id);
      await deps.runs.cancel(session);
      reply.code(202);
      return { session_id: session.id, status: session.status };
    },
  );

  /** A step's PNG, from memory or (after a restart) from the store. */
  const screenshot = async (id: string, step: number | null): Promise<Buffer | undefined> => {
    if (step === null) return undefined;
    return deps.registry.get(id)?.screenshots.get(step) ?? (await deps.store.screenshot(id, step));
  };
  const failedStep = async (id: string): Promise<number | null> => {
    const live = deps.registry.get(id);
    if (live) return live.failedStep;
    const steps = ((await deps.store.get(id))?.steps ?? []) as { state?: string }[];
    const at = steps.findIndex((s) => s.state === 'failed');
    return at >= 0 ? at : null;
  };

  app.get(
    '/workflows/:id/screenshot',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['runs'],
        summary: 'The page when a step failed',
        params: sessionParams,
        querystring: viewerTokenQuery,
        response: { 200: binary('PNG', 'image/png'), ...errors },
      },
    },
    async (req, reply) => {
      const { id } = req.params;
      const shot = await screenshot(id, await failedStep(id));
      if (!shot) throw new NotFoundError(`session ${id.slice(0, 64)} has no failure screenshot`);
      return reply.type('image/png').send(shot);
    },
  );

  app.get(
    '/workflows/:id/steps/:index/screenshot',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['runs'],
        summary: "A step's screenshot (a screenshot step, or the page when it failed)",
        params: stepParams,
        querystring: viewerTokenQuery,
        response: { 200: binary('PNG', 'image/png'), ...errors },
      },
    },
    async (req, reply) => {
      const { id, index } = req.params;
      const shot = /^\d{1,6}$/.test(index) ? await screenshot(id, Number(index)) : undefined;
      if (!shot) throw new NotFoundError(`session ${id.slice(0, 64)} has no screenshot for step ${index.slice(0, 16)}`);
      return reply.type('image/png').send(shot);
    },
  );
}
