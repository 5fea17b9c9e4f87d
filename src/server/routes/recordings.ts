import { Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { BadRequestError, NotFoundError } from '../../common/index.js';
import { TERMINAL_STATUSES, type SessionStatus } from '../../protocol/index.js';
import type { Session } from '../../session/index.js';
import type { StoredSession } from '../../store/index.js';
import type { AppDeps } from '../deps.js';
import { binary, errors, sessionParams, sessionStatus, viewerTokenQuery } from '../schemas.js';
import { presentSession, sessionView } from '../session-view.js';
import { listInMemory } from '../memory-list.js';

const listQuery = z.strictObject({
  status: sessionStatus.optional(),
  workflow: z.string().min(1).max(200).optional().describe("Runs of the workflow with this name only."),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().max(200).optional().describe('next_cursor of the previous page.'),
});

const sessionList = z.object({
  sessions: z.array(sessionView).describe('Newest first.'),
  next_cursor: z.string().nullable().describe('Pass as `cursor` for the next page; null on the last one.'),
});

export function registerRecordings(fastify: FastifyInstance, deps: AppDeps): void {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const { store, registry } = deps;

  app.get(
    '/workflows/sessions',
    { schema: { tags: ['runs'], summary: 'Recorded runs, newest first, paged', querystring: listQuery, response: { 200: sessionList, ...errors } } },
    async (req) => {
      await store.flush();
      // Without recordings nothing is stored: the runs still in memory are the list.
      const { sessions, nextCursor } = deps.config.recordings ? await store.list(req.query) : listInMemory(registry, req.query);
      // A run still in memory is shown as it is now, not as last written.
      return {
        sessions: (sessions as (Session | StoredSession)[]).map((s) => presentSession(registry.get(s.id) ?? s, deps.hub.viewerCount(s.id))),
        next_cursor: nextCursor,
      };
    },
  );

  app.get(
    '/workflows/:id/events',
    {
      config: { access: 'viewer' },
      schema: {
        tags: ['runs'],
        summary: 'The recording: a JSON array of rrweb events, streamed (gzip when accepted)',
        params: sessionParams,
        querystring: viewerTokenQuery,
        response: { 200: binary('A JSON array of rrweb events', 'application/json'), ...errors },
      },
    },
    async (req, reply) => {
      const { id } = req.params;
      await store.flush();
      if (!registry.get(id) && !(await store.get(id))) throw new NotFoundError(`unknown session ${id.slice(0, 64)}`);
      const body = Readable.from(store.eventsJson(id));
      reply.type('application/json; charset=utf-8').header('content-disposition', `attachment; filename="domcast-${id}.json"`);
      if (/\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))) {
        return reply.header('content-encoding', 'gzip').header('vary', 'accept-encoding').send(body.pipe(createGzip()));
      }
      return reply.send(body);
    },
  );

  app.delete(
    '/workflows/:id',
    {
      schema: {
        tags: ['runs'],
        summary: 'Remove a run and its recording',
        description: '409 while it runs.',
        params: sessionParams,
        response: { 204: z.undefined().describe('Removed.'), ...errors },
      },
    },
    async (req, reply) => {
      const { id } = req.params;
      const live = registry.get(id);
      if (live && !live.finished) throw new BadRequestError(`session ${id} is ${live.status}; cancel it before deleting`, 409, 'SESSION_RUNNING');
      if (deps.cluster && !live) {
        // Cluster mode: it may be queued or running on a worker; the store says which.
        const row = await store.get(id);
        if (row && !TERMINAL_STATUSES.includes(row.status as SessionStatus)) throw new BadRequestError(`session ${id} is ${row.status}; cancel it before deleting`, 409, 'SESSION_RUNNING');
      }
      await store.flush();
      const known = registry.delete(id) || live !== undefined;
      if (!(await store.delete(id)) && !known) throw new NotFoundError(`unknown session ${id.slice(0, 64)}`);
      return reply.code(204).send();
    },
  );
}
