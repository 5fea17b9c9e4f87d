import { EventEmitter } from 'node:events';
import {
  CustomTag,
  RrwebEventType,
  stepScreenshotPath,
  TERMINAL_STATUSES,
  type SessionStatus,
  type RecordingCustomPayload,
  type TabsCustomPayload,
  type TabState,
  type StatusCustomPayload,
  type StepCustomPayload,
  type StepInfo,
  type ControlCustomPayload,
  type ControlView,
  type FrameRemap,
} from '../protocol/index.js';
import { AssetRewriter } from '../assets/rewrite.js';
import { ingestPool } from './ingest-pool.js';
import { PageIngest } from './ingest.js';
import { DEFAULT_LIMITS, type RecordingLimits } from './limits.js';
import { SessionControl } from './control.js';
import { SessionLog } from './log.js';
import type { PreparedBatch } from './prepare.js';
import { SampleWindow, type StreamMetrics } from './metrics.js';

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
  /** Bounds of the session's recording (VISUAL_EVENT_BUFFER_SIZE, VISUAL_SESSION_MAX_MB, VISUAL_MAX_EVENT_MB); defaults otherwise. */
  limits?: Partial<RecordingLimits>;
  metrics: StreamMetrics;
  /** The run's inputs, already stripped of secrets (see redactInputs in src/workflow/secrets.ts). */
  inputs?: Record<string, unknown>;
  /** The run's browser captures the assets its page loads: the page's events get their asset URLs rewritten to ours. */
  assets?: boolean;
}

export interface SessionEvents {
  status: [];
  /** A consumer of the log (a channel, the store) threw on a batch. */
  listenerError: [unknown];
  /** The page sent past its budgets: the run must end (the reason says which). */
  flood: [string];
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
  /** Events of this session's page refused one by one (over a size or shape bound); /health/visual sums them over sessions. */
  rejectedEvents = 0;
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
  /** Why the page's recording was stopped before the run ended (it went past a bound), or null. */
  recordingStopped: string | null = null;
  /** The page flooded the server; the run was told to end. */
  private flooded = false;
  /** Requests and WebSockets of the run's browser refused by the navigation policy. */
  refusedRequests = 0;
  /** What the run's browser captured of the assets its page loaded (null: no capture for this run). */
  assets: { captured: number; skipped: number; bytes: number; skipped_by_reason: Record<string, number> } | null = null;
  private readonly metrics: StreamMetrics;
  /** This session's own page → viewer latency (the server-wide figure mixes all sessions). */
  readonly latency = new SampleWindow(512);
  private readonly pageIngest: PageIngest;
  /** Take control: the lock between a person and the workflow, and the run's control tokens (src/session/control.ts). */
  readonly control = new SessionControl((payload) => this.custom(CustomTag.control, payload));
  /** Who drives the page as the node running the session said (a copy of another node's session, cluster mode), else null. */
  mirroredControl: ControlView | null = null;

  constructor(init: SessionInit) {
    super();
    this.id = init.id;
    this.workflowName = init.workflowName;
    this.visual = init.visual;
    this.quality = init.quality;
    this.inputs = init.inputs ?? {};
    this.metrics = init.metrics;
    this.steps = init.steps.map((s, index) => ({ index, type: s.type, description: s.description, state: 'pending' }));
    const limits = { ...DEFAULT_LIMITS, ...init.limits };
    this.log = new SessionLog(limits, {
      onOverflow: () => this.requestSnapshot(),
      onLimit: (reason) => this.stopRecording(reason),
      onListenerError: (err) => this.emit('listenerError', err),
    });
    this.pageIngest = new PageIngest(
      limits,
      {
        accept: (batch) => this.accept(batch),
        stop: (reason) => this.stopRecording(reason),
        flood: (reason) => this.flood(reason),
        isFinished: () => this.finished,
        isStopped: () => this.recordingStopped !== null,
      },
      ingestPool,
      init.assets ? new AssetRewriter(init.id) : undefined,
    );
    // Viewers see who drives the page in status frames; once the run ended its own status says the rest.
    this.control.on('change', () => {
      if (!this.finished) this.emit('status');
    });
  }

  /** Who drives the page, as viewers are told. */
  get controlView(): ControlView {
    return this.mirroredControl ?? this.control.view;
  }

  get finished(): boolean {
    return TERMINAL_STATUSES.includes(this.status);
  }

  /** Viewers follow it live: the run goes on and so does its recording. */
  get streaming(): boolean {
    return !this.finished && this.recordingStopped === null;
  }

  /** Why the live stream ended while the run goes on (its recording stopped), or null. */
  get streamEndReason(): string | null {
    return this.finished ? null : this.recordingStopped;
  }

  /**
   * A batch from the page, as JSON text: prepared (on the event loop if small, else in a worker)
   * and appended in the order the page sent it. Resolves once it is in the log, with why part of
   * it was refused, if it was, for the caller to log (null otherwise). `frame`: the batch is one of
   * the page's cross-origin frames' (src/protocol/frames.ts), under the same budgets.
   */
  ingest(json: string, frame?: FrameRemap): Promise<string | null> {
    // A cross-origin frame is snapshotted again only at the checkpoints it takes part in
    // (src/browser/frames.ts); checkpoints asked for only to shorten the tail left a late joiner
    // without the frame's content (fidelity-frames.test.ts), so a page with one keeps the bounds alone.
    if (frame) this.log.compactTail = false;
    return this.pageIngest.ingest(json, frame);
  }

  /** Batches the DevTools relay dropped unread for their size: they count as the page's, and are refused. */
  batchesDropped(count: number, chars: number): string | null {
    return this.pageIngest.dropped(count, chars);
  }

  private accept({ entries, rejected, refused }: PreparedBatch): string | null {
    this.rejectedEvents += rejected;
    this.metrics.rejectedEvents += rejected;
    const batch = this.log.appendPage(entries);
    if (!batch) return refused ?? null;
    // Subscribers (the viewers' channel) have had it: handed to every viewer socket, unless held back.
    if (!batch.heldBack) this.delivered(batch.timestamps);
    this.metrics.totalEventsProcessed += batch.events.length;
    this.metrics.totalBatches++;
    return refused ?? null;
  }

  /** Events with these page timestamps were handed to every viewer socket now: their page → viewer latency. */
  delivered(timestamps: readonly number[]): void {
    const now = Date.now();
    for (const ts of timestamps) {
      const ms = Math.max(0, now - ts);
      this.metrics.latency.add(ms);
      this.metrics.latencyObserver?.(ms);
      this.latency.add(ms);
    }
  }

  /** The page sends past its budgets: its recording stops and whoever drives the run is told to end it ('flood'). */
  private flood(reason: string): void {
    this.stopRecording(reason);
    if (this.finished || this.flooded) return;
    this.flooded = true;
    this.emit('flood', this.recordingStopped ?? reason);
  }

  /**
   * The page went past a bound: nothing more of it is recorded (its later batches are dropped
   * unread), viewers are told why and their stream ends; the run itself goes on.
   */
  stopRecording(reason: string): void {
    if (this.recordingStopped !== null || this.finished || !this.visual) return;
    this.recordingStopped = `recording stopped: ${reason}`;
    this.custom(CustomTag.recording, { state: 'stopped', reason: this.recordingStopped });
    this.emit('status');
  }

  /** The run's tabs, once it opened more than one (the stream shows the active one). */
  tabs: TabState[] | null = null;

  tabsChanged(tabs: TabState[]): void {
    this.tabs = tabs;
    this.custom(CustomTag.tabs, { tabs });
  }

  private custom(tag: string, payload: StepCustomPayload | StatusCustomPayload | RecordingCustomPayload | TabsCustomPayload | ControlCustomPayload): void {
    if (!this.visual) return;
    this.log.append([{ type: RrwebEventType.Custom, timestamp: Date.now(), data: { tag, payload } }]);
  }

  setStatus(status: SessionStatus, error: string | null = null): void {
    if (this.finished || this.status === status) return;
    this.status = status;
    if (status === 'running') this.startedAt = Date.now();
    if (TERMINAL_STATUSES.includes(status)) {
      this.metrics.runsEnded.set(status, (this.metrics.runsEnded.get(status) ?? 0) + 1);
      this.endedAt = Date.now();
      this.currentStep = null;
      for (const s of this.steps) {
        if (s.state === 'pending') s.state = 'skipped';
        else if (s.state === 'running') s.state = 'cancelled';
      }
      this.control.end();
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
}
