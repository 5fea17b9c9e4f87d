/** The viewer page's chrome: header, step list, footer; shared by the live and the replay modes. */
import type { SessionStatus, StepInfo } from '../protocol/index.js';

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

export const sessionId = decodeURIComponent(location.pathname.split('/')[3] ?? '');

/** The viewer token of this page's link: every request the viewer makes carries it. */
const token = new URLSearchParams(location.search).get('token');

/** `path` (which may have a query) with this viewer's token added. */
export function withToken(path: string): string {
  return token === null ? path : `${path}${path.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`;
}

export type ConnectionKind = 'connecting' | 'live' | 'reconnecting' | 'ended' | 'error' | 'replay';

export function setConnection(kind: ConnectionKind, text: string): void {
  ui.conn.className = `conn ${kind}`;
  ui.conn.querySelector('b')!.textContent = text;
  ui.root.dataset.connection = kind;
}

/** Scales and centres the replay (recorded at `size`) in the stage. */
export function fitWrapper(wrapper: HTMLElement | undefined, size: { width: number; height: number }): void {
  if (!wrapper) return;
  const pad = 24;
  const { clientWidth: cw, clientHeight: ch } = ui.stage;
  const s = Math.max(0.05, Math.min((cw - pad * 2) / size.width, (ch - pad * 2) / size.height));
  const left = (cw - size.width * s) / 2;
  const top = (ch - size.height * s) / 2;
  wrapper.style.transform = `translate(${left}px, ${top}px) scale(${s})`;
}

export function renderStatus(status: SessionStatus, steps: StepInfo[], currentStep: number | null, error: string | null): void {
  ui.status.textContent = status;
  ui.status.className = `pill ${status}`;
  ui.root.dataset.status = status;
  ui.steps.replaceChildren(
    ...steps.map((s) => {
      const li = document.createElement('li');
      li.className = s.state;
      const ic = document.createElement('span');
      ic.className = 'ic';
      const d = document.createElement('span');
      d.className = 'd';
      d.textContent = s.description ?? s.type;
      const small = document.createElement('small');
      small.textContent = s.error ?? s.type;
      d.append(small);
      const t = document.createElement('span');
      t.className = 't';
      t.textContent = s.durationMs !== undefined ? `${(s.durationMs / 1000).toFixed(1)} s` : '';
      li.append(ic, d, t);
      return li;
    }),
  );
  const cur = currentStep !== null ? steps[currentStep] : undefined;
  ui.current.textContent = cur
    ? `Step ${cur.index + 1} of ${steps.length}: ${cur.description ?? cur.type}`
    : status === 'running' || status === 'queued' ? `${steps.length} steps` : `Run ${status}`;
  ui.root.dataset.currentStep = cur ? String(cur.index) : '';
  ui.error.hidden = !error;
  ui.error.textContent = error ?? '';
  if (error && steps.some((s) => s.screenshotAvailable)) {
    const link = document.createElement('a');
    link.href = withToken(`/workflows/${encodeURIComponent(sessionId)}/screenshot`);
    link.target = '_blank';
    link.rel = 'noopener';
    link.textContent = 'Screenshot of the page when it failed';
    ui.error.append(document.createElement('br'), link);
  }
}

