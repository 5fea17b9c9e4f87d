import type { Session, SessionLog, Slice } from '../session/index.js';
import type { EndFrame, HelloFrame, PingFrame, StatusFrame } from '../protocol/index.js';
import { PROTOCOL_VERSION } from '../protocol/index.js';

/**
 * A frame carrying events holds at most this many characters of them, unless one event alone is
 * larger (VISUAL_MAX_EVENT_MB bounds that): a big page's reset goes out as several frames, none
 * of which costs the event loop more than a few ms to build or a viewer more than that to parse.
 */
export const MAX_FRAME_CHARS = 4 * 1024 * 1024;

function frameOf(kind: 'events' | 'reset', from: number, events: readonly string[]): Buffer {
  return Buffer.from(`{"t":"${kind}","from":${from},"events":[${events.join(',')}]}`);
}

/**
 * Frames carrying events are assembled from the events' stored JSON text, so an event is
 * serialized once when it enters the log, never again per frame or per viewer. A `reset` too large
 * for one frame is a `reset` followed by `events` frames with the seqs that follow.
 */
export function eventsFrames(kind: 'events' | 'reset', slice: Slice): Buffer[] {
  const frames: Buffer[] = [];
  let start = 0;
  let chars = 0;
  for (const [i, json] of slice.events.entries()) {
    if (i > start && chars + json.length > MAX_FRAME_CHARS) {
      frames.push(frameOf(frames.length === 0 ? kind : 'events', slice.from + start, slice.events.slice(start, i)));
      start = i;
      chars = 0;
    }
    chars += json.length + 1;
  }
  if (start < slice.events.length || frames.length === 0) frames.push(frameOf(frames.length === 0 ? kind : 'events', slice.from + start, slice.events.slice(start)));
  return frames;
}

/**
 * The reset for a log as it stands, built once however many viewers need it before the log
 * changes (a crowd joining, every lagging viewer at the end of a run).
 */
export function resetFrames(log: SessionLog): Buffer[] {
  return log.derive('reset', () => eventsFrames('reset', log.fromCheckpoint()));
}

export function helloFrame(session: Session, epoch: string, recorded: boolean): string {
  const frame: HelloFrame = {
    t: 'hello',
    v: PROTOCOL_VERSION,
    session: session.id,
    epoch,
    workflow: session.workflowName,
    status: session.status,
    steps: session.steps,
    currentStep: session.currentStep,
    error: session.error,
    lastSeq: session.log.lastSeq,
    serverTime: Date.now(),
    recorded,
    recordingStopped: session.recordingStopped,
    ...(session.tabs ? { tabs: session.tabs } : {}),
    control: session.controlView,
  };
  return JSON.stringify(frame);
}

export function statusFrame(session: Session): Buffer {
  const frame: StatusFrame = {
    t: 'status',
    status: session.status,
    steps: session.steps,
    currentStep: session.currentStep,
    error: session.error,
    recordingStopped: session.recordingStopped,
    control: session.controlView,
  };
  return Buffer.from(JSON.stringify(frame));
}

export function endFrame(session: Session): string {
  const frame: EndFrame = { t: 'end', status: session.status, lastSeq: session.log.lastSeq };
  const reason = session.streamEndReason;
  if (reason !== null) frame.reason = reason;
  return JSON.stringify(frame);
}

export function pingFrame(): string {
  const frame: PingFrame = { t: 'ping', serverTime: Date.now() };
  return JSON.stringify(frame);
}
