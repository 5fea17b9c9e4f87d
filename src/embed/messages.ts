/**
 * What the viewer page in embed mode (src/viewer/embed.ts) and the `<domcast-viewer>` element on the
 * embedding page (element.ts) say to each other over postMessage: plain typed JSON, versioned, one
 * file for both sides. The element re-dispatches each viewer message as a `domcast-<type>` DOM event.
 */
import type { SessionStatus, StepState } from '../protocol/index.js';

export const EMBED_CHANNEL = 'domcast-embed';
export const EMBED_VERSION = 1;

/** The viewer's connection, as its own header shows it. */
export type EmbedConnection = 'connecting' | 'live' | 'reconnecting' | 'ended' | 'error' | 'replay';

/** `domcast-status`: the run and the view changed (status, current step, connection, error). */
export interface EmbedStatusDetail {
  session: string;
  workflow: string | null;
  status: SessionStatus | 'unknown';
  connection: EmbedConnection;
  /** Index (from 0) of the step running now, or null. */
  currentStep: number | null;
  stepCount: number;
  /** Every step of the workflow and where it is. */
  steps: EmbedStepSummary[];
  /** Why the run failed, when it did. */
  error: string | null;
}

export interface EmbedStepSummary {
  index: number;
  type: string;
  description: string | null;
  state: StepState;
}

/** `domcast-step`: one step reached a new state (each state of each step once per view). */
export interface EmbedStepDetail {
  session: string;
  /** From 0, as in the protocol; people read `index + 1`. */
  index: number;
  count: number;
  type: string;
  description: string | null;
  state: StepState;
  durationMs: number | null;
  error: string | null;
}

/**
 * `domcast-error`: the view cannot show the run. `viewer`: the viewer said why (a link that expired,
 * a refused origin…); `no-answer`: the element heard nothing from its frame in time (a wrong or
 * expired link, or a page whose origin may not embed the viewer: the browser blocked the frame).
 */
export interface EmbedErrorDetail {
  code: 'viewer' | 'no-answer' | 'bad-src';
  message: string;
}

export interface EmbedEventMap {
  status: EmbedStatusDetail;
  step: EmbedStepDetail;
  error: EmbedErrorDetail;
}

/** Viewer → element. */
export type ViewerMessage = { [K in keyof EmbedEventMap]: { channel: typeof EMBED_CHANNEL; v: typeof EMBED_VERSION; type: K; detail: EmbedEventMap[K] } }[keyof EmbedEventMap];

/** Element → viewer: "I am your parent, on my origin; tell me what happens." Sent on each load of the frame. */
export interface HelloMessage {
  channel: typeof EMBED_CHANNEL;
  v: typeof EMBED_VERSION;
  type: 'hello';
}

const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null;

export function isHello(data: unknown): data is HelloMessage {
  return isRecord(data) && data.channel === EMBED_CHANNEL && data.v === EMBED_VERSION && data.type === 'hello';
}

export function isViewerMessage(data: unknown): data is ViewerMessage {
  return (
    isRecord(data) &&
    data.channel === EMBED_CHANNEL &&
    data.v === EMBED_VERSION &&
    (data.type === 'status' || data.type === 'step' || data.type === 'error') &&
    isRecord(data.detail)
  );
}

/**
 * Whether the viewer may talk to a parent page on `origin`: its own origin, or one the server named
 * (VIEWER_ORIGINS). `ancestor` is the browser's own word for the parent's origin where it has one
 * (`location.ancestorOrigins[0]`, Chromium and Safari): the hello must agree with it.
 */
export function parentAllowed(origin: string, self: string, allowed: readonly string[], ancestor?: string): boolean {
  if (origin === 'null' || origin === '') return false;
  if (ancestor !== undefined && ancestor !== origin) return false;
  return origin === self || allowed.includes(origin);
}
