import { roundMs, type Session } from '../session/index.js';
import type { RecordingStore, StoredSession } from './recording-store.js';

export function toStored(s: Session): StoredSession {
  return {
    id: s.id,
    workflow: s.workflowName,
    inputs: s.inputs,
    status: s.status,
    error: s.error,
    visual: s.visual,
    createdAt: s.createdAt,
    startedAt: s.startedAt,
    endedAt: s.endedAt,
    steps: s.steps,
    outputs: s.outputs,
    eventCount: s.log.totalEvents,
    byteCount: s.log.totalBytes,
    detail: {
      currentStep: s.currentStep,
      lastSeq: s.log.lastSeq,
      latency: { average: roundMs(s.latency.average()), p95: roundMs(s.latency.percentile(95)) },
      refusedRequests: s.refusedRequests,
      recordingStopped: s.recordingStopped,
      assets: s.assets,
    },
  };
}

/** How long an ended session's events stay in memory after the store has written them. */
export const ENDED_LOG_GRACE_MS = 5000;

/** The store as one more consumer of a session: every batch of its log, every change of its status. */
export function track(store: RecordingStore, session: Session): void {
  store.saveSession(toStored(session));
  const unsubscribe = session.log.subscribe((batch) => store.append(session.id, batch.from, batch.events));
  const saved = new Set<number>();
  const onStatus = () => {
    store.saveSession(toStored(session));
    for (const [step, png] of session.screenshots) {
      if (saved.has(step)) continue;
      saved.add(step);
      store.saveScreenshot(session.id, step, png);
    }
    if (session.finished) {
      unsubscribe();
      session.off('status', onStatus);
      // Once written, the store serves the recording: an ended session's events leave memory, after a
      // short grace in which a viewer that lost its connection near the end resumes from memory.
      void store.flush().then(() => setTimeout(() => session.log.release(), ENDED_LOG_GRACE_MS).unref());
    }
  };
  session.on('status', onStatus);
}
