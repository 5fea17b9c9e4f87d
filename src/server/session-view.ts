import { z } from 'zod';
import { FREE_CONTROL, stepScreenshotPath, TERMINAL_STATUSES, type SessionStatus } from '../protocol/index.js';
import type { Session } from '../session/index.js';
import { toStored, type StoredSession } from '../store/index.js';
import { isoTime, sessionStatus } from './schemas.js';

const step = z
  .looseObject({
    index: z.number().describe('From 0 here; messages number steps from 1.'),
    type: z.string(),
    description: z.string().nullable(),
    state: z.enum(['pending', 'running', 'succeeded', 'failed', 'skipped', 'cancelled']),
    durationMs: z.number().optional(),
    error: z.string().optional(),
    selector: z.string().nullable().optional().describe('The selector of a failed step.'),
    matched: z.string().nullable().optional().describe('Which locator found the element: css, xpath or text.'),
    screenshotAvailable: z.boolean().optional().describe('A PNG is at GET /workflows/{id}/steps/{index}/screenshot.'),
  })
  .meta({ id: 'StepResult' });

/**
 * A run as the API shows it, in one shape whether it is live, has ended, or was read from the
 * store after a restart: the live session is written out as the store keeps it, then shown.
 */
export const sessionView = z
  .object({
    session_id: z.string(),
    workflow: z.string().describe("The workflow's name."),
    inputs: z.record(z.string(), z.unknown()).describe("The run's inputs, secrets redacted."),
    status: sessionStatus,
    error: z.string().nullable(),
    visual_enabled: z.boolean(),
    created_at: isoTime,
    started_at: isoTime.nullable(),
    ended_at: isoTime.nullable(),
    duration_ms: z.number().nullable().describe('From start to end, or to now while it runs.'),
    current_step: z.number().nullable().describe('Index of the step running now; null once the run ended.'),
    failure: z
      .object({
        step: z.number(),
        type: z.string(),
        description: z.string().nullable(),
        selector: z.string().nullable(),
        reason: z.string().nullable(),
        screenshot_url: z.string().nullable(),
      })
      .nullable()
      .describe('The step that failed, if one did.'),
    steps: z.array(step),
    outputs: z.record(z.string(), z.unknown()).describe('What extract_page_content and screenshot steps produced, by their `output` name.'),
    events: z.object({
      total: z.number(),
      retained: z.number().describe('Events held in memory now (0 once the store serves the recording).'),
      last_seq: z.number(),
      bytes: z.number(),
    }),
    latency_ms: z
      .object({ average: z.number().nullable(), p95: z.number().nullable() })
      .describe("This run's page → viewer latency, ms (as of its end, once ended)."),
    refused_requests: z.number().describe('Requests of the run\'s browser refused by the navigation policy.'),
    recording_stopped: z.string().nullable().describe('Why the recording stopped before the run ended (it went past a bound).'),
    assets: z
      .object({ captured: z.number(), skipped: z.number(), bytes: z.number(), skipped_by_reason: z.record(z.string(), z.number()) })
      .nullable()
      .describe('What the run\'s browser captured of the assets its page loaded; null without capture.'),
    viewers: z.number().describe('Viewers watching it now.'),
    control: z
      .object({
        state: z.enum(['free', 'waiting', 'held']).describe('free: the workflow drives the page; waiting: a person asked while a step ran; held: a person drives it and the workflow waits between steps.'),
        holder: z.string().nullable().describe('The id of the control link that holds or waits (token_id).'),
        since: isoTime.nullable(),
        human_request: z
          .object({ step: z.number(), description: z.string().nullable(), until: isoTime })
          .nullable()
          .describe('A human step waiting for a person to take control and release it, until then.'),
      })
      .describe('Take control: who drives the page now.'),
  })
  .meta({ id: 'Session' });

export type SessionView = z.output<typeof sessionView>;

const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());

function failure(id: string, steps: SessionView['steps']): SessionView['failure'] {
  const s = steps.find((x) => x.state === 'failed');
  if (!s) return null;
  return {
    step: s.index,
    type: s.type,
    description: s.description,
    selector: s.selector ?? null,
    reason: s.error ?? null,
    screenshot_url: s.screenshotAvailable ? stepScreenshotPath(id, s.index) : null,
  };
}

function controlOf(c: typeof FREE_CONTROL): SessionView['control'] {
  return {
    state: c.state,
    holder: c.holder,
    since: iso(c.since),
    human_request: c.request && { step: c.request.step, description: c.request.description, until: new Date(c.request.until).toISOString() },
  };
}

/** A live session or a stored one, as GET /workflows/{id} and GET /workflows/sessions answer. */
export function presentSession(source: Session | StoredSession, viewers: number, now = Date.now()): SessionView {
  const live = 'log' in source ? source : null;
  const s = live ? toStored(live) : (source as StoredSession);
  const steps = s.steps as SessionView['steps'];
  const status = s.status as SessionStatus | 'imported';
  const ended = status === 'imported' || TERMINAL_STATUSES.includes(status);
  const d = s.detail;
  return {
    session_id: s.id,
    workflow: s.workflow,
    inputs: s.inputs,
    status,
    error: s.error,
    visual_enabled: s.visual,
    created_at: new Date(s.createdAt).toISOString(),
    started_at: iso(s.startedAt),
    ended_at: iso(s.endedAt),
    duration_ms: s.startedAt === null ? null : (s.endedAt ?? (ended ? s.startedAt : now)) - s.startedAt,
    current_step: ended ? null : (d?.currentStep ?? null),
    failure: failure(s.id, steps),
    steps,
    outputs: s.outputs,
    events: { total: s.eventCount, retained: live?.log.retained ?? 0, last_seq: d?.lastSeq ?? s.eventCount, bytes: s.byteCount },
    latency_ms: d?.latency ?? { average: null, p95: null },
    refused_requests: d?.refusedRequests ?? 0,
    recording_stopped: d?.recordingStopped ?? null,
    assets: d?.assets ?? null,
    viewers,
    control: controlOf(live && !ended ? live.control.view : FREE_CONTROL),
  };
}
