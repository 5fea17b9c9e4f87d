import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { BadRequestError } from '../../common/index.js';
import { prepareWorkflow, workflowSchema, type Workflow } from '../../workflow/index.js';
import { parseOrThrow } from '../validation.js';
import type { AppDeps } from '../deps.js';
import { rateLimitRuns } from '../access.js';

const executeBody = z.strictObject({
  workflow: z.unknown().optional(),
  name: z.string().optional(),
  inputs: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}),
  visual_enabled: z.boolean().default(false),
  visual_quality: z.enum(['standard', 'high']).default('standard'),
  /** Default timeout of each step, ms (a step's own timeoutMs wins). */
  step_timeout_ms: z.number().int().min(100).max(600_000).optional(),
  /** Privacy controls for the recording (see docs/SECURITY.md). */
  mask_all_inputs: z.boolean().default(false),
  mask_text_selector: z.string().trim().min(1).max(2000).optional(),
  block_selector: z.string().trim().min(1).max(2000).optional(),
});

/** The viewer page and stream URLs of a session, each carrying a fresh viewer token (nulls when not visual). */
export async function viewerLinks(
  req: FastifyRequest,
  deps: AppDeps,
  sessionId: string,
  visual: boolean,
): Promise<{ visual_stream_url: string | null; viewer_url: string | null; viewer_token_expires_at: string | null }> {
  if (!visual) return { visual_stream_url: null, viewer_url: null, viewer_token_expires_at: null };
  const o = origins(req);
  const links = await deps.viewerTokens.links(sessionId, o.http, o.ws);
  return { visual_stream_url: links.streamUrl, viewer_url: links.viewerUrl, viewer_token_expires_at: links.expiresAt.toISOString() };
}

/** http(s)://host and ws(s)://host as the client reached us. */
export function origins(req: FastifyRequest): { http: string; ws: string } {
  const host = req.headers.host ?? `${req.hostname}`;
  const secure = req.protocol === 'https';
  return { http: `${secure ? 'https' : 'http'}://${host}`, ws: `${secure ? 'wss' : 'ws'}://${host}` };
}

export function registerExecute(app: FastifyInstance, deps: AppDeps): void {
  app.get('/workflows', async () => ({ dir: deps.library.dir, workflows: deps.library.list() }));

  app.post('/workflows/execute', { preHandler: rateLimitRuns(deps.config.executeRateLimit) }, async (req, reply) => {
    if (deps.lifecycle.draining) throw new BadRequestError('the server is shutting down and accepts no new runs; retry on another instance', 503, 'SHUTTING_DOWN');
    if (req.body === undefined || req.body === null || typeof req.body !== 'object') {
      throw new BadRequestError('the body must be a JSON object like {"workflow": {...}, "inputs": {...}, "visual_enabled": true}');
    }
    const body = parseOrThrow(executeBody, req.body);
    if (body.workflow === undefined && body.name === undefined) throw new BadRequestError('workflow: required (or give "name" of a stored workflow)');
    if (body.workflow !== undefined && body.name !== undefined) throw new BadRequestError('give either "workflow" or "name", not both');
    const raw = body.workflow ?? deps.library.load(body.name ?? '');
    const steps = (raw as { steps?: unknown } | null)?.steps;
    if (Array.isArray(steps) && steps.length > deps.config.maxWorkflowSteps) {
      throw new BadRequestError(`workflow.steps: ${steps.length} steps; this server runs at most ${deps.config.maxWorkflowSteps} (MAX_WORKFLOW_STEPS)`);
    }
    const workflow: Workflow = prepareWorkflow(parseOrThrow(workflowSchema, raw, 'workflow'), body.inputs);
    const visual = body.visual_enabled && deps.config.visualStreamingEnabled;
    const session = deps.runs.start({
      workflow,
      visual,
      quality: body.visual_quality,
      privacy: {
        maskAllInputs: body.mask_all_inputs,
        ...(body.mask_text_selector !== undefined ? { maskTextSelector: body.mask_text_selector } : {}),
        ...(body.block_selector !== undefined ? { blockSelector: body.block_selector } : {}),
      },
      inputs: body.inputs,
      ...(body.step_timeout_ms !== undefined ? { stepTimeoutMs: body.step_timeout_ms } : {}),
    });
    const links = await viewerLinks(req, deps, session.id, visual);
    reply.code(202);
    return {
      session_id: session.id,
      status: session.status,
      ...links,
      ...(body.visual_enabled && !visual ? { warnings: ['visual streaming is disabled on this server (VISUAL_STREAMING_ENABLED=false)'] } : {}),
    };
  });
}
