import type { Session, SessionLog, Slice } from '../session/index.js';
import type { EndFrame, HelloFrame, PingFrame, StatusFrame } from '../protocol/index.js';
import { PROTOCOL_VERSION } from '../protocol/index.js';

/**
 * Frames carrying events are assembled from the events' stored JSON text, so an event is
 * serialized once when it enters the log, never again per frame or per viewer.
 */
export function eventsFrame(kind: 'events' | 'reset', slice: Slice): Buffer {
  return Buffer.from(`{"t":"${kind}","from":${slice.from},"events":[${slice.events.join(',')}]}`);
}

const resets = new WeakMap<SessionLog, { lastSeq: number; checkpointSeq: number; frame: Buffer }>();

/**
 * The reset frame for a log as it stands, built once however many viewers need it at the same
 * moment (a crowd joining, every lagging viewer at the end of a run).
 */
export function resetFrame(log: SessionLog): Buffer {
  const cached = resets.get(log);
  if (cached && cached.lastSeq === log.lastSeq && cached.checkpointSeq === log.checkpointSeq) return cached.frame;
  const frame = eventsFrame('reset', log.fromCheckpoint());
  resets.set(log, { lastSeq: log.lastSeq, checkpointSeq: log.checkpointSeq, frame });
  return frame;
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
  };
  return Buffer.from(JSON.stringify(frame));
}

export function endFrame(session: Session): string {
  const frame: EndFrame = { t: 'end', status: session.status, lastSeq: session.log.lastSeq };
  return JSON.stringify(frame);
}

export function pingFrame(): string {
  const frame: PingFrame = { t: 'ping', serverTime: Date.now() };
  return JSON.stringify(frame);
}
