import type { FastifyInstance } from 'fastify';
import { NotFoundError } from '../../common/index.js';
import type { Session } from '../../session/index.js';
import type { AppDeps } from '../deps.js';
import { viewerLinks } from './execute.js';
import { storedJSON } from './recordings.js';

export function findSession(deps: AppDeps, id: string): Session {
  const session = deps.registry.get(id);
  if (!session) throw new NotFoundError(`unknown session ${id.slice(0, 64)}`);
  return session;
}

export function registerSessions(app: FastifyInstance, deps: AppDeps): void {
  app.get<{ Params: { id: string } }>('/workflows/:id', { config: { access: 'viewer' } }, async (req) => {
    const live = deps.registry.get(req.params.id);
    // Fresh links for whoever may mint them; a viewer token's holder gets no longer-lived one.
    const links = async (visual: boolean) => (req.caller === 'viewer' ? {} : await viewerLinks(req, deps, req.params.id, visual));
    if (live) return { ...live.toJSON(), ...(await links(live.visual)) };
    // Runs from before a restart, or evicted from memory, are still on record.
    const stored = deps.store.get(req.params.id);
    if (!stored) throw new NotFoundError(`unknown session ${req.params.id.slice(0, 64)}`);
    return { ...storedJSON(stored), ...(await links(stored.visual)) };
  });

  app.post<{ Params: { id: string } }>('/workflows/:id/cancel', async (req, reply) => {
    const session = findSession(deps, req.params.id);
    await deps.runs.cancel(session);
    reply.code(202);
    return { session_id: session.id, status: session.status };
  });

  /** A step's PNG, from memory or (after a restart) from the store. */
  const screenshot = (id: string, step: number | null): Buffer | undefined => {
    if (step === null) return undefined;
    return deps.registry.get(id)?.screenshots.get(step) ?? deps.store.screenshot(id, step);
  };
  const failedStep = (id: string): number | null => {
    const live = deps.registry.get(id);
    if (live) return live.failedStep;
    const steps = (deps.store.get(id)?.steps ?? []) as { state?: string }[];
    const at = steps.findIndex((s) => s.state === 'failed');
    return at >= 0 ? at : null;
  };

  app.get<{ Params: { id: string } }>('/workflows/:id/screenshot', { config: { access: 'viewer' } }, async (req, reply) => {
    const { id } = req.params;
    const shot = screenshot(id, failedStep(id));
    if (!shot) throw new NotFoundError(`session ${id.slice(0, 64)} has no failure screenshot`);
    return reply.type('image/png').send(shot);
  });

  app.get<{ Params: { id: string; index: string } }>('/workflows/:id/steps/:index/screenshot', { config: { access: 'viewer' } }, async (req, reply) => {
    const { id, index } = req.params;
    const shot = /^\d{1,6}$/.test(index) ? screenshot(id, Number(index)) : undefined;
    if (!shot) throw new NotFoundError(`session ${id.slice(0, 64)} has no screenshot for step ${index.slice(0, 16)}`);
    return reply.type('image/png').send(shot);
  });
}
