import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { randomUUID } from 'node:crypto';
import type { ClusterApi, RunJob } from '../../cluster/api-node.js';
import type { SessionView } from '../../cluster/view.js';
import { BadRequestError } from '../../common/index.js';
import { FREE_CONTROL } from '../../protocol/index.js';
import type { StoredSession } from '../../store/index.js';
import { prepareWorkflow, redactInputs, workflowSchema, type Workflow } from '../../workflow/index.js';
import { parseOrThrow } from '../validation.js';
import type { AppDeps } from '../deps.js';
import { rateLimitRuns } from '../access.js';
import { errors, sessionStatus } from '../schemas.js';

const NOT_AN_OBJECT = 'the body must be a JSON object like {"workflow": {...}, "inputs": {...}, "visual_enabled": true}';

const executeBody = z.strictObject({
  workflow: workflowSchema.optional().describe('The workflow to run (browser-use/workflow-use format); or give `name`.'),
  name: z.string().optional().describe('Runs the stored workflow <WORKFLOWS_DIR>/<name>.json instead.'),
  inputs: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}),
  visual_enabled: z.boolean().default(false),
  visual_quality: z.enum(['standard', 'high']).default('standard'),
  /** Default timeout of each step, ms (a step's own timeoutMs wins). */
  step_timeout_ms: z.number().int().min(100).max(600_000).optional(),
  /** Privacy controls for the recording (see docs/SECURITY.md). */
  mask_all_inputs: z.boolean().default(false),
  mask_text_selector: z.string().trim().min(1).max(2000).optional(),
  block_selector: z.string().trim().min(1).max(2000).optional(),
}, { error: (issue) => (issue.code === 'invalid_type' ? NOT_AN_OBJECT : undefined) });

const started = z.object({
  session_id: z.string(),
  status: sessionStatus.describe('queued until a slot is free (MAX_CONCURRENT_SESSIONS).'),
  ...viewerLinkFields(),
  warnings: z.array(z.string()).optional(),
});

const storedWorkflows = z.object({
  dir: z.string(),
  workflows: z.array(
    z.object({
      name: z.string().describe('What `name` in POST /workflows/execute takes.'),
      file: z.string(),
      title: z.string().nullable(),
      description: z.string().nullable(),
      version: z.string().nullable(),
      input_schema: z.array(z.unknown()).describe('The inputs it takes: {name, type: string|number|bool, required}.'),
      error: z.string().optional().describe('Set when the file is not valid JSON.'),
    }),
  ),
});

/** The links a visual run's answers carry (nulls when not visual). */
export function viewerLinkFields() {
  return {
    visual_stream_url: z.string().nullable().describe('ws(s)://…/workflows/visual/{id}?token=…: the live stream (docs/PROTOCOL.md).'),
    viewer_url: z.string().nullable().describe('The viewer page, with a fresh viewer token.'),
    viewer_token_expires_at: z.string().nullable().describe('When both links stop working (VIEWER_TOKEN_TTL).'),
  };
}

/** A run's steps, as the API takes them, before MAX_WORKFLOW_STEPS is checked (cheaply, before the schema). */
function checkStepCount(workflow: unknown, max: number): void {
  const steps = (workflow as { steps?: unknown } | null | undefined)?.steps;
  if (Array.isArray(steps) && steps.length > max) {
    throw new BadRequestError(`workflow.steps: ${steps.length} steps; this server runs at most ${max} (MAX_WORKFLOW_STEPS)`);
  }
}

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

/** host[:port]: a name, an IPv4 address or a bracketed IPv6 one; nothing that could change a link's meaning. */
const HOST = /^(?:[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?|\[[0-9a-f:.]+\])(?::\d{1,5})?$/i;

/**
 * http(s)://host and ws(s)://host as the client reached us: behind proxies trusted by TRUST_PROXY,
 * the scheme and host the client used (X-Forwarded-Proto, X-Forwarded-Host); otherwise the
 * connection's own scheme and Host header (forwarded headers are ignored).
 */
export function origins(req: FastifyRequest): { http: string; ws: string } {
  const host = req.host;
  if (!HOST.test(host)) throw new BadRequestError(`cannot make links for host ${JSON.stringify(host.slice(0, 100))}: the Host (or X-Forwarded-Host) header must be host[:port]`);
  const secure = req.protocol === 'https';
  return { http: `${secure ? 'https' : 'http'}://${host}`, ws: `${secure ? 'wss' : 'ws'}://${host}` };
}

/** Queues a run for the cluster's workers: its `queued` record and view are written first, so any node can show it at once. */
async function enqueue(cluster: ClusterApi, run: RunJob): Promise<{ id: string; status: 'queued' }> {
  const id = randomUUID();
  const steps = run.workflow.steps.map((s, index) => ({ index, type: s.type, description: s.description ?? null, state: 'pending' as const }));
  const row: StoredSession = {
    id,
    workflow: run.workflow.name,
    inputs: redactInputs(run.inputs ?? {}),
    status: 'queued',
    error: null,
    visual: run.visual,
    createdAt: Date.now(),
    startedAt: null,
    endedAt: null,
    steps,
    outputs: {},
    eventCount: 0,
    byteCount: 0,
  };
  const view: SessionView = {
    workflowName: run.workflow.name,
    quality: run.quality,
    status: 'queued',
    error: null,
    currentStep: null,
    steps,
    tabs: null,
    recordingStopped: null,
    control: FREE_CONTROL,
    startedAt: null,
    endedAt: null,
  };
  await cluster.enqueue(id, run, row, view);
  return { id, status: 'queued' };
}

export function registerExecute(fastify: FastifyInstance, deps: AppDeps): void {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  app.get(
    '/workflows',
    { schema: { tags: ['workflows'], summary: 'The stored workflows, with the inputs each takes', response: { 200: storedWorkflows, ...errors } } },
    async () => ({ dir: deps.library.dir, workflows: deps.library.list() }),
  );

  const rateLimit = rateLimitRuns(deps.config.executeRateLimit);
  app.post(
    '/workflows/execute',
    {
      // Before the body is validated: a refused caller costs no parse, and a huge workflow is refused by its count alone.
      preValidation: async (req, reply) => {
        await rateLimit(req, reply);
        if (deps.lifecycle.draining) throw new BadRequestError('the server is shutting down and accepts no new runs; retry on another instance', 503, 'SHUTTING_DOWN');
        checkStepCount((req.body as { workflow?: unknown } | null)?.workflow, deps.config.maxWorkflowSteps);
      },
      schema: {
        tags: ['workflows'],
        summary: 'Start a run',
        description:
          'Give `workflow` or `name`. Every problem with `inputs` is reported at once. 413 over MAX_BODY_BYTES, 429 with Retry-After past EXECUTE_RATE_LIMIT, 503 while shutting down.',
        body: executeBody,
        response: { 202: started, ...errors },
      },
    },
    async (req, reply) => {
      const body = req.body;
      if (body.workflow === undefined && body.name === undefined) throw new BadRequestError('workflow: required (or give "name" of a stored workflow)');
      if (body.workflow !== undefined && body.name !== undefined) throw new BadRequestError('give either "workflow" or "name", not both');
      let parsed = body.workflow;
      if (parsed === undefined) {
        // A stored file is checked as an inline workflow would be, its problems named the same way.
        const stored = deps.library.load(body.name ?? '');
        checkStepCount(stored, deps.config.maxWorkflowSteps);
        parsed = parseOrThrow(workflowSchema, stored, 'workflow');
      }
      const workflow: Workflow = prepareWorkflow(parsed, body.inputs);
      const visual = body.visual_enabled && deps.config.visualStreamingEnabled;
      const run: RunJob = {
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
      };
      // Cluster mode: the run is queued for a worker; here it runs in this process.
      const session = deps.cluster ? await enqueue(deps.cluster, run) : deps.runs.start(run);
      // Queued already: a failure to count the workers only leaves the warning out.
      const workers = deps.cluster ? await deps.cluster.queue.liveWorkers().then((w) => w.length, () => null) : null;
      const waiting = workers === 0 ? ['no worker is running (cluster mode): the run waits in the queue until one starts'] : [];
      const links = await viewerLinks(req, deps, session.id, visual);
      reply.code(202);
      return {
        session_id: session.id,
        status: session.status,
        ...links,
        ...(body.visual_enabled && !visual ? { warnings: ['visual streaming is disabled on this server (VISUAL_STREAMING_ENABLED=false)', ...waiting] } : waiting.length > 0 ? { warnings: waiting } : {}),
      };
    },
  );
}
