import { EventEmitter } from 'node:events';
import {
  CustomTag,
  RrwebEventType,
  stepScreenshotPath,
  TERMINAL_STATUSES,
  type SessionStatus,
  type StatusCustomPayload,
  type StepCustomPayload,
  type StepInfo,
  type WireEvent,
} from '../protocol/index.js';
import { SessionLog } from './log.js';
import { SampleWindow, roundMs, type StreamMetrics } from './metrics.js';

export interface StepResult extends StepInfo {
  selector?: string | null;
  matched?: string | null;
}

export interface SessionInit {
  id: string;
  workflowName: string;
  steps: { type: string; description: string | null }[];
  visual: boolean;
  quality: 'standard' | 'high';
  bufferSize: number;
  metrics: StreamMetrics;
  /** The run's inputs, already stripped of secrets (see redactInputs in src/workflow/secrets.ts). */
  inputs?: Record<string, unknown>;
}

export interface SessionEvents {
  status: [];
}

/**
 * Largest batch text taken from a page, in UTF-16 units. Our recorder sends at most 500 events per
 * batch (a big page's first snapshot with inlined images is a few MiB); anything near this is a
 * page calling the binding itself to make the server parse and keep it.
 */
export const MAX_BATCH_CHARS = 64 * 1024 * 1024;

/** Tags of Custom events only the server may write: a page that forges them would fake steps or a status. */
const SERVER_TAG_PREFIX = 'domcast.';

function isServerCustom(e: WireEvent): boolean {
  if (e.type !== RrwebEventType.Custom) return false;
  const tag = (e.data as { tag?: unknown } | null | undefined)?.tag;
  return typeof tag === 'string' && tag.startsWith(SERVER_TAG_PREFIX);
}

export interface ParsedBatch {
  events: WireEvent[];
  rejected: number;
  /** Why the batch (or part of it) was refused, when that is worth a log line: oversized, or forged server events. */
  refused?: string;
}

/** Drops anything a page could send that is not shaped like an rrweb event, or that only the server may send. */
export function parseBatch(json: string): ParsedBatch {
  if (json.length > MAX_BATCH_CHARS) return { events: [], rejected: 1, refused: `batch of ${json.length} chars is over ${MAX_BATCH_CHARS}` };
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    return { events: [], rejected: 1 };
  }
  if (!Array.isArray(parsed)) return { events: [], rejected: 1 };
  const events: WireEvent[] = [];
  let forged = 0;
  for (const e of parsed as unknown[]) {
    if (e && typeof e === 'object' && typeof (e as WireEvent).type === 'number' && Number.isFinite((e as WireEvent).timestamp)) {
      if (isServerCustom(e as WireEvent)) forged++;
      else events.push(e as WireEvent);
    }
  }
  const result: ParsedBatch = { events, rejected: parsed.length - events.length };
  if (forged > 0) result.refused = `${forged} page-sent custom event(s) with a reserved ${SERVER_TAG_PREFIX}* tag`;
  return result;
}

/** One workflow run: its lifecycle, its steps and, when visual, its event log. */
export class Session extends EventEmitter<SessionEvents> {
  readonly id: string;
  readonly workflowName: string;
  readonly visual: boolean;
  readonly quality: 'standard' | 'high';
  readonly inputs: Record<string, unknown>;
  readonly log: SessionLog;
  readonly steps: StepResult[];
  readonly createdAt = Date.now();
  startedAt: number | null = null;
  endedAt: number | null = null;
  status: SessionStatus = 'queued';
  currentStep: number | null = null;
  error: string | null = null;
  outputs: Record<string, unknown> = {};
  /** PNGs by step index: screenshot steps, and the page when a step failed. */
  readonly screenshots = new Map<number, Buffer>();
  /** The step that failed, if one did. */
  failedStep: number | null = null;
  /** Set by whoever drives the page: asks it for a fresh checkpoint. */
  requestSnapshot: () => void = () => {};
  /** Requests and WebSockets of the run's browser refused by the navigation policy. */
  refusedRequests = 0;
  private readonly metrics: StreamMetrics;
  /** This session's own page → viewer latency (the server-wide figure mixes all sessions). */
  readonly latency = new SampleWindow(512);

  constructor(init: SessionInit) {
    super();
    this.id = init.id;
    this.workflowName = init.workflowName;
    this.visual = init.visual;
    this.quality = init.quality;
    this.inputs = init.inputs ?? {};
    this.metrics = init.metrics;
    this.steps = init.steps.map((s, index) => ({ index, type: s.type, description: s.description, state: 'pending' }));
    this.log = new SessionLog(init.bufferSize, () => this.requestSnapshot());
  }

  get finished(): boolean {
    return TERMINAL_STATUSES.includes(this.status);
  }

  /**
   * A batch from the page, as JSON text. Appended (and so fanned out) before this returns.
   * Returns why part of it was refused, if it was, for the caller to log (null otherwise).
   */
  ingest(json: string): string | null {
    if (this.finished) return null;
    const { events, rejected, refused } = parseBatch(json);
    this.metrics.rejectedEvents += rejected;
    const batch = this.log.append(events);
    if (!batch) return refused ?? null;
    const now = Date.now();
    for (const ts of batch.timestamps) {
      const ms = Math.max(0, now - ts);
      this.metrics.latency.add(ms);
      this.latency.add(ms);
    }
    this.metrics.totalEventsProcessed += batch.events.length;
    this.metrics.totalBatches++;
    return refused ?? null;
  }

  private custom(tag: string, payload: StepCustomPayload | StatusCustomPayload): void {
    if (!this.visual) return;
    this.log.append([{ type: RrwebEventType.Custom, timestamp: Date.now(), data: { tag, payload } }]);
  }

  setStatus(status: SessionStatus, error: string | null = null): void {
    if (this.finished || this.status === status) return;
    this.status = status;
    if (status === 'running') this.startedAt = Date.now();
    if (TERMINAL_STATUSES.includes(status)) {
      this.endedAt = Date.now();
      this.currentStep = null;
      for (const s of this.steps) {
        if (s.state === 'pending') s.state = 'skipped';
        else if (s.state === 'running') s.state = 'cancelled';
      }
    }
    if (error) this.error = error;
    this.custom(CustomTag.status, { status, error });
    this.emit('status');
  }

  stepStarted(index: number): void {
    const step = this.steps[index];
    if (!step || this.finished) return;
    step.state = 'running';
    this.currentStep = index;
    this.custom(CustomTag.step, { phase: 'start', index, type: step.type, description: step.description });
    this.emit('status');
  }

  stepEnded(index: number, result: { durationMs: number; matched?: string | null; outputKey?: string; value?: unknown; screenshot?: Buffer }): void {
    const step = this.steps[index];
    if (!step || this.finished) return;
    Object.assign(step, { state: 'succeeded', durationMs: result.durationMs, matched: result.matched ?? null });
    if (result.screenshot) {
      this.screenshots.set(index, result.screenshot);
      step.screenshotAvailable = true;
    }
    if (result.outputKey) this.outputs[result.outputKey] = result.screenshot ? stepScreenshotPath(this.id, index) : result.value;
    this.custom(CustomTag.step, { phase: 'end', index, type: step.type, description: step.description, durationMs: result.durationMs });
    this.emit('status');
  }

  stepFailed(index: number, failure: { durationMs: number; error: string; selector: string | null; screenshot: Buffer | null }): void {
    const step = this.steps[index];
    if (!step || this.finished) return;
    Object.assign(step, {
      state: 'failed',
      durationMs: failure.durationMs,
      error: failure.error,
      selector: failure.selector,
      screenshotAvailable: failure.screenshot !== null,
    });
    this.failedStep = index;
    if (failure.screenshot) this.screenshots.set(index, failure.screenshot);
    this.custom(CustomTag.step, {
      phase: 'fail',
      index,
      type: step.type,
      description: step.description,
      durationMs: failure.durationMs,
      error: failure.error,
      selector: failure.selector,
    });
    this.emit('status');
  }

  /** The failed step, for a caller that wants the facts rather than the message. */
  private failure(): Record<string, unknown> | null {
    const step = this.failedStep === null ? undefined : this.steps[this.failedStep];
    if (!step) return null;
    return {
      step: step.index,
      type: step.type,
      description: step.description,
      selector: step.selector ?? null,
      reason: step.error ?? null,
      screenshot_url: this.screenshots.has(step.index) ? stepScreenshotPath(this.id, step.index) : null,
    };
  }

  /** What GET /workflows/{id} answers. */
  toJSON(): Record<string, unknown> {
    return {
      session_id: this.id,
      workflow: this.workflowName,
      inputs: this.inputs,
      status: this.status,
      error: this.error,
      visual_enabled: this.visual,
      created_at: new Date(this.createdAt).toISOString(),
      started_at: this.startedAt ? new Date(this.startedAt).toISOString() : null,
      ended_at: this.endedAt ? new Date(this.endedAt).toISOString() : null,
      duration_ms: this.startedAt ? (this.endedAt ?? Date.now()) - this.startedAt : null,
      current_step: this.currentStep,
      failure: this.failure(),
      steps: this.steps,
      outputs: this.outputs,
      events: { total: this.log.totalEvents, retained: this.log.retained, last_seq: this.log.lastSeq, bytes: this.log.totalBytes },
      latency_ms: { average: roundMs(this.latency.average()), p95: roundMs(this.latency.percentile(95)) },
      refused_requests: this.refusedRequests,
    };
  }
}
