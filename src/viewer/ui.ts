/** The viewer page's chrome: header, step list, footer; shared by the live and the replay modes. */
import type { SessionStatus, StepInfo } from '../protocol/index.js';
import { sessionId, withToken } from './link.js';
import { renderSteps } from './steps.js';

export const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`viewer: #${id} missing`);
  return el as T;
};

export const ui = {
  root: document.documentElement,
  stage: $('stage'),
  placeholder: $('placeholder'),
  workflow: $('workflow'),
  status: $('status'),
  conn: $('conn'),
  latency: $('latency'),
  steps: $('steps'),
  error: $('error'),
  current: $('current'),
  seq: $('seq'),
};


export type ConnectionKind = 'connecting' | 'live' | 'reconnecting' | 'ended' | 'error' | 'replay';

/** What the view shows, as it changes (`status`, `connection` CustomEvents): embed mode tells an embedding page (embed.ts). */
export const viewerEvents = new EventTarget();

export function setConnection(kind: ConnectionKind, text: string): void {
  ui.conn.className = `conn ${kind}`;
  ui.conn.querySelector('b')!.textContent = text;
  ui.root.dataset.connection = kind;
  viewerEvents.dispatchEvent(new CustomEvent('connection', { detail: { kind, text } }));
}

/** Below this width the panel goes under the stage and the page scrolls down (viewer.css says the same). */
const NARROW = '(max-width: 760px)';

/**
 * Scales and centres the replay (recorded at `size`) in the stage. On a narrow screen the page is
 * scaled to the stage's width instead, and the stage takes the height that leaves (with the controls
 * under the page), so nothing is cut off and the steps follow below.
 */
export function fitWrapper(wrapper: HTMLElement | undefined, size: { width: number; height: number }): void {
  if (!wrapper) return;
  const embed = ui.root.dataset.embed !== undefined;
  const controls = document.getElementById('controls');
  const shown = controls !== null && !controls.hidden && getComputedStyle(controls).display !== 'none';
  if (!embed && matchMedia(NARROW).matches) {
    const pad = 8;
    const s = Math.max(0.05, (ui.stage.clientWidth - pad * 2) / size.width);
    const below = shown ? controls.offsetHeight + pad : 0;
    ui.stage.style.height = `${Math.ceil(size.height * s + pad * 2 + below)}px`;
    wrapper.style.transform = `translate(${pad}px, ${pad}px) scale(${s})`;
    return;
  }
  ui.stage.style.height = '';
  const pad = embed ? 0 : 24;
  const { clientWidth: cw } = ui.stage;
  // The page sits above the controls bar (which floats at the stage's foot), not under it.
  const ch = ui.stage.clientHeight - (shown && !embed ? controls.offsetHeight + 12 : 0);
  const s = Math.max(0.05, Math.min((cw - pad * 2) / size.width, (ch - pad * 2) / size.height));
  const left = (cw - size.width * s) / 2;
  const top = (ch - size.height * s) / 2;
  wrapper.style.transform = `translate(${left}px, ${top}px) scale(${s})`;
}

const screenshotLink = (path: string, text: string): HTMLAnchorElement => {
  const link = document.createElement('a');
  link.href = withToken(`/workflows/${encodeURIComponent(sessionId)}${path}`);
  link.target = '_blank';
  link.rel = 'noopener';
  link.textContent = text;
  return link;
};

export function renderStatus(status: SessionStatus, steps: StepInfo[], currentStep: number | null, error: string | null): void {
  viewerEvents.dispatchEvent(new CustomEvent('status', { detail: { status, steps, currentStep, error } }));
  ui.status.textContent = status;
  ui.status.className = `pill ${status}`;
  ui.root.dataset.status = status;
  renderSteps(steps);
  const cur = currentStep !== null ? steps[currentStep] : undefined;
  ui.current.textContent = cur
    ? `Step ${cur.index + 1} of ${steps.length}: ${cur.description ?? cur.type}`
    : status === 'running' || status === 'queued' ? `${steps.length} steps` : `Run ${status}`;
  ui.root.dataset.currentStep = cur ? String(cur.index) : '';
  ui.error.hidden = !error;
  ui.error.textContent = error ?? '';
  if (error && steps.some((s) => s.screenshotAvailable)) {
    ui.error.append(document.createElement('br'), screenshotLink('/screenshot', 'Screenshot of the page when it failed'));
  }
}

/**
 * In place of "Waiting for the browser…", once the run has ended with no page to show: what
 * happened (the failed step and its error, with the page's screenshot when there is one).
 */
export function explainNoPage(status: SessionStatus | 'imported', steps: StepInfo[], error: string | null): void {
  const box = ui.placeholder;
  box.hidden = false;
  box.dataset.kind = status === 'failed' ? 'failed' : 'ended';
  const failed = steps.find((s) => s.state === 'failed');
  const title = document.createElement('p');
  title.className = 'why';
  title.textContent =
    status === 'failed' ? 'The run failed before any page was recorded.'
    : status === 'cancelled' || status === 'interrupted' ? `The run was ${status} before any page was recorded.`
    : 'Nothing was recorded for this run.';
  const parts: HTMLElement[] = [title];
  if (failed) {
    const step = document.createElement('p');
    step.className = 'step';
    step.textContent = `Step ${failed.index + 1} of ${steps.length}: ${failed.description ?? failed.type}`;
    parts.push(step);
  }
  const message = failed?.error ?? error;
  if (message) {
    const text = document.createElement('p');
    text.className = 'message';
    text.textContent = message;
    parts.push(text);
  }
  if (failed?.screenshotAvailable) parts.push(screenshotLink(`/steps/${failed.index}/screenshot`, 'Screenshot of the browser when it failed'));
  box.replaceChildren(...parts);
  // Said here, where the page would be: the panel's copy of the error would only repeat it.
  if (message) ui.error.hidden = true;
}
