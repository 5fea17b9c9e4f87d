import type { FastifyInstance } from 'fastify';
import { NotFoundError } from '../../common/index.js';
import type { Session } from '../../session/index.js';
import type { AppDeps } from '../deps.js';

export function findSession(deps: AppDeps, id: string): Session {
  const session = deps.registry.get(id);
  if (!session) throw new NotFoundError(`unknown session ${id.slice(0, 64)}`);
  return session;
}

export function registerSessions(app: FastifyInstance, deps: AppDeps): void {
  app.get<{ Params: { id: string } }>('/workflows/:id', async (req) => findSession(deps, req.params.id).toJSON());

  app.get<{ Params: { id: string } }>('/workflows/:id/screenshot', async (req, reply) => {
    const session = findSession(deps, req.params.id);
    if (!session.failureScreenshot) throw new NotFoundError(`session ${session.id} has no failure screenshot`);
    return reply.type('image/png').send(session.failureScreenshot);
  });
}
