/**
 * The viewer wire protocol, shared by the server hub and the browser viewer.
 * JSON text frames; `v` in `hello` is bumped on any incompatible change.
 */
export const PROTOCOL_VERSION = 1;

export * from './control.js';
export * from './frames.js';
import type { ControlView } from './control.js';

/** `interrupted`: the server stopped while the run was in progress (found so in the store at the next start). */
export type SessionStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'interrupted';
export const TERMINAL_STATUSES: readonly SessionStatus[] = ['succeeded', 'failed', 'cancelled', 'interrupted'];

/** An rrweb event as it travels: plain JSON with at least a type and a page timestamp. */
export interface WireEvent {
  type: number;
  timestamp: number;
  data?: unknown;
}

export type StepState = 'pending' | 'running' | 'succeeded' | 'failed' | 'skipped' | 'cancelled';

export interface StepInfo {
  index: number;
  type: string;
  description: string | null;
  state: StepState;
  durationMs?: number;
  error?: string;
  /** A PNG of the page (a screenshot step, or the moment this step failed) is at GET /workflows/{session}/steps/{index}/screenshot. */
  screenshotAvailable?: boolean;
}

export interface HelloFrame {
  t: 'hello';
  v: number;
  session: string;
  /** Changes whenever seq numbering could restart; a `since` from another epoch always gets a reset. */
  epoch: string;
  workflow: string;
  status: SessionStatus;
  steps: StepInfo[];
  currentStep: number | null;
  error: string | null;
  lastSeq: number;
  serverTime: number;
  /** Why the page's recording stopped before the run ended (it went past a bound); `end` follows. */
  recordingStopped?: string | null;
  /** The run is kept in the recordings store, so a viewer can rewind it. */
  recorded: boolean;
  /** The run's tabs, once it has opened more than one (also sent as `domcast.tabs` custom events). */
  tabs?: TabState[];
  /** Who drives the page (take control), and a `human` step's request. */
  control?: ControlView;
}

/** `events[i]` has seq `from + i`. */
export interface EventsFrame {
  t: 'events';
  from: number;
  events: WireEvent[];
}

/** Rebuild from scratch: the events start at a checkpoint (Meta + FullSnapshot) unless the page has not sent one yet. */
export interface ResetFrame {
  t: 'reset';
  from: number;
  events: WireEvent[];
}

export interface StatusFrame {
  t: 'status';
  status: SessionStatus;
  steps: StepInfo[];
  currentStep: number | null;
  error: string | null;
  recordingStopped?: string | null;
  control?: ControlView;
}

/** Nothing more will come: the run ended, or its recording stopped (`reason` says why; the run may go on). */
export interface EndFrame {
  t: 'end';
  status: SessionStatus;
  lastSeq: number;
  reason?: string;
}

export interface PingFrame {
  t: 'ping';
  serverTime: number;
}

export type ServerFrame = HelloFrame | EventsFrame | ResetFrame | StatusFrame | EndFrame | PingFrame;

/** WebSocket close codes the hub uses; each close also carries a human-readable reason. */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  policy: 1008,
  messageTooBig: 1009,
  internalError: 1011,
  /** The session's stream started over on the node that runs it (cluster mode): reconnect, a reset with the new epoch follows. */
  restarted: 1012,
  tryAgainLater: 1013,
  badRequest: 4400,
  /** No viewer token, an invalid or expired one, or one for another session. */
  unauthorized: 4401,
  /** The page that opened the socket is not on an allowed origin (VIEWER_ORIGINS). */
  forbiddenOrigin: 4403,
  notFound: 4404,
  visualOff: 4409,
  /** Too many viewer connections from one address (VISUAL_MAX_CONNECTIONS_PER_IP). */
  tooManyFromAddress: 4429,
} as const;

/** The one message a viewer may send; the server answers with a `ping` frame carrying its clock. */
export interface ClientPing {
  t: 'ping';
}

/** rrweb's EventType values we look at (from @rrweb/types, copied so the protocol has no runtime dependency). */
export const RrwebEventType = {
  DomContentLoaded: 0,
  Load: 1,
  FullSnapshot: 2,
  IncrementalSnapshot: 3,
  Meta: 4,
  Custom: 5,
  Plugin: 6,
} as const;

/** Tags of the rrweb Custom events domcast adds to a session's stream. */
export const CustomTag = {
  step: 'domcast.step',
  status: 'domcast.status',
  recording: 'domcast.recording',
  tabs: 'domcast.tabs',
  /** Take control: each take, release and input, for audit (ControlCustomPayload). */
  control: 'domcast.control',
} as const;

export interface StepCustomPayload {
  phase: 'start' | 'end' | 'fail';
  index: number;
  type: string;
  description: string | null;
  durationMs?: number;
  error?: string;
  selector?: string | null;
}

export interface StatusCustomPayload {
  status: SessionStatus;
  error?: string | null;
}

export interface RecordingCustomPayload {
  state: 'stopped';
  reason: string;
}

/** A tab of the run (src/workflow/tabs.ts): the run's first page is 1, then in the order tabs opened. */
export interface TabState {
  index: number;
  url: string;
  active: boolean;
  closed: boolean;
}

/** The run's tabs, when it has more than one; the stream shows the `active` one (its snapshot comes first). */
export interface TabsCustomPayload {
  tabs: TabState[];
}

export function visualPath(sessionId: string): string {
  return `/workflows/visual/${encodeURIComponent(sessionId)}`;
}

export function stepScreenshotPath(sessionId: string, index: number): string {
  return `/workflows/${encodeURIComponent(sessionId)}/steps/${index}/screenshot`;
}
