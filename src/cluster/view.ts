import { FREE_CONTROL, type ControlView, type SessionStatus, type TabState } from '../protocol/index.js';
import type { Session, StepResult } from '../session/index.js';

/**
 * What viewers are told of a session besides its events (hello and status frames): written by the
 * node that runs it beside its stream, taken by the nodes that copy it for their viewers.
 */
export interface SessionView {
  workflowName: string;
  quality: 'standard' | 'high';
  status: SessionStatus;
  error: string | null;
  currentStep: number | null;
  steps: StepResult[];
  tabs: TabState[] | null;
  recordingStopped: string | null;
  control: ControlView;
  startedAt: number | null;
  endedAt: number | null;
}

export function sessionView(session: Session): SessionView {
  return {
    workflowName: session.workflowName,
    quality: session.quality,
    status: session.status,
    error: session.error,
    currentStep: session.currentStep,
    steps: session.steps,
    tabs: session.tabs,
    recordingStopped: session.recordingStopped,
    control: session.controlView,
    startedAt: session.startedAt,
    endedAt: session.endedAt,
  };
}

/** Parses a view written by sessionView; null when it is not one (a worker of another version). */
export function parseView(json: string): SessionView | null {
  try {
    const v = JSON.parse(json) as Partial<SessionView>;
    if (typeof v.workflowName !== 'string' || typeof v.status !== 'string' || !Array.isArray(v.steps)) return null;
    return {
      workflowName: v.workflowName,
      quality: v.quality === 'high' ? 'high' : 'standard',
      status: v.status,
      error: v.error ?? null,
      currentStep: v.currentStep ?? null,
      steps: v.steps,
      tabs: v.tabs ?? null,
      recordingStopped: v.recordingStopped ?? null,
      control: v.control ?? FREE_CONTROL,
      startedAt: v.startedAt ?? null,
      endedAt: v.endedAt ?? null,
    };
  } catch {
    return null;
  }
}

/**
 * Gives a copy the view's state. Fields are set, not replayed through setStatus and the step
 * methods: those append events, and a copy's log holds only what the running node's log holds.
 * Returns whether anything viewers are shown changed.
 */
export function applyView(session: Session, view: SessionView): boolean {
  const before = JSON.stringify([session.status, session.error, session.currentStep, session.steps, session.tabs, session.recordingStopped, session.controlView]);
  session.status = view.status;
  session.error = view.error;
  session.currentStep = view.currentStep;
  session.steps.splice(0, session.steps.length, ...view.steps);
  session.tabs = view.tabs;
  session.recordingStopped = view.recordingStopped;
  session.mirroredControl = view.control;
  session.startedAt = view.startedAt;
  session.endedAt = view.endedAt;
  return before !== JSON.stringify([view.status, view.error, view.currentStep, view.steps, view.tabs, view.recordingStopped, view.control]);
}
