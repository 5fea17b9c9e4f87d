import { Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { BadRequestError, NotFoundError } from '../../common/index.js';
import type { StoredSession } from '../../store/index.js';
import { parseOrThrow } from '../validation.js';
import type { AppDeps } from '../deps.js';

const listQuery = z.strictObject({
  status: z.enum(['queued', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted', 'imported']).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().max(200).optional(),
});

export function storedJSON(s: StoredSession): Record<string, unknown> {
  const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
  return {
    session_id: s.id,
    workflow: s.workflow,
    inputs: s.inputs,
    status: s.status,
    error: s.error,
    visual_enabled: s.visual,
    created_at: iso(s.createdAt),
    started_at: iso(s.startedAt),
    ended_at: iso(s.endedAt),
    duration_ms: s.startedAt !== null && s.endedAt !== null ? s.endedAt - s.startedAt : null,
    steps: s.steps,
    outputs: s.outputs,
    events: { total: s.eventCount, bytes: s.byteCount },
  };
}

export function registerRecordings(app: FastifyInstance, deps: AppDeps): void {
  const { store, registry } = deps;

  app.get('/workflows/sessions', async (req) => {
    const q = parseOrThrow(listQuery, req.query);
    await store.flush();
    const { sessions, nextCursor } = store.list(q);
    return { sessions: sessions.map(storedJSON), next_cursor: nextCursor };
  });

  app.get<{ Params: { id: string } }>('/workflows/:id/events', { config: { access: 'viewer' } }, async (req, reply) => {
    const { id } = req.params;
    await store.flush();
    if (!registry.get(id) && !store.get(id)) throw new NotFoundError(`unknown session ${id.slice(0, 64)}`);
    const body = Readable.from(store.eventsJson(id));
    reply.type('application/json; charset=utf-8').header('content-disposition', `attachment; filename="domcast-${id}.json"`);
    if (/\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))) {
      return reply.header('content-encoding', 'gzip').header('vary', 'accept-encoding').send(body.pipe(createGzip()));
    }
    return reply.send(body);
  });

  app.delete<{ Params: { id: string } }>('/workflows/:id', async (req, reply) => {
    const { id } = req.params;
    const live = registry.get(id);
    if (live && !live.finished) throw new BadRequestError(`session ${id} is ${live.status}; cancel it before deleting`, 409, 'SESSION_RUNNING');
    await store.flush();
    const known = registry.delete(id) || live !== undefined;
    if (!store.delete(id) && !known) throw new NotFoundError(`unknown session ${id.slice(0, 64)}`);
    return reply.code(204).send();
  });
}
