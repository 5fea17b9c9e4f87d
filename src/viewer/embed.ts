/**
 * Embed mode (`?embed=1`): the replayed page alone, scaled to fit, with a small status overlay, for a
 * frame in another page (the `<domcast-viewer>` element, src/embed/). What the view shows is told
 * to the parent page by postMessage, only once the parent is known to be on an allowed origin: this
 * page's own, or one the server names (VIEWER_ORIGINS, in `<meta name="domcast-embed-origins">`).
 * The parent is known from its hello (whose origin the browser vouches for), checked against
 * `location.ancestorOrigins` where the browser has it; nothing is sent with a `*` target.
 */
import {
  EMBED_CHANNEL,
  EMBED_VERSION,
  isHello,
  parentAllowed,
  type EmbedConnection,
  type EmbedEventMap,
  type EmbedStatusDetail,
  type ViewerMessage,
} from '../embed/index.js';
import type { SessionStatus, StepInfo } from '../protocol/index.js';
import { sessionId } from './link.js';
import { ui, viewerEvents } from './ui.js';

/** Messages kept while no parent has said hello yet; past this the oldest go (the latest status is always among the newest). */
const MAX_PENDING = 500;

interface ViewState {
  status: SessionStatus | 'unknown';
  steps: StepInfo[];
  currentStep: number | null;
  error: string | null;
  connection: EmbedConnection;
  connectionText: string;
}

/** The origins the server lets embed this viewer, besides its own. */
function allowedOrigins(): string[] {
  const meta = document.querySelector<HTMLMetaElement>('meta[name="domcast-embed-origins"]');
  return (meta?.content ?? '').split(' ').filter((o) => o !== '');
}

function overlayText(v: ViewState): string {
  if (v.connection === 'error') return v.connectionText;
  const step = v.currentStep !== null ? v.steps[v.currentStep] : undefined;
  if (step) return `Step ${step.index + 1}/${v.steps.length} · ${step.description ?? step.type}`;
  if (v.status === 'unknown') return v.connectionText;
  if (v.error) return `${v.status}: ${v.error}`;
  return v.status === 'running' || v.status === 'queued' ? `${v.status} · ${v.connectionText}` : v.status;
}

/** Turns this page into its embed mode when its URL asks for it (`?embed=1`); otherwise does nothing. */
export function startEmbed(): void {
  const params = new URLSearchParams(location.search);
  if (params.get('embed') !== '1') return;
  const root = document.documentElement;
  root.dataset.embed = '';
  if (params.get('controls') === '1') root.dataset.embedControls = '';

  const overlay = params.get('status') === '0' ? null : document.createElement('div');
  const overlayLabel = document.createElement('span');
  if (overlay) {
    overlay.className = 'embed-status';
    overlay.setAttribute('role', 'status');
    overlay.append(document.createElement('i'), overlayLabel);
    ui.stage.append(overlay);
  }

  const allowed = allowedOrigins();
  const framed = window.parent !== window;
  let parentOrigin: string | null = null;
  const pending: ViewerMessage[] = [];
  const send = <K extends keyof EmbedEventMap>(type: K, detail: EmbedEventMap[K]): void => {
    const message = { channel: EMBED_CHANNEL, v: EMBED_VERSION, type, detail } as ViewerMessage;
    if (parentOrigin !== null) window.parent.postMessage(message, parentOrigin);
    else if (framed && pending.push(message) > MAX_PENDING) pending.shift();
  };
  const adopt = (origin: string): void => {
    parentOrigin = origin;
    for (const m of pending.splice(0)) window.parent.postMessage(m, origin);
  };

  const ancestor = location.ancestorOrigins?.[0];
  // Chromium and Safari name the parent's origin themselves: no need to wait for a hello.
  if (framed && ancestor !== undefined && parentAllowed(ancestor, location.origin, allowed)) adopt(ancestor);
  window.addEventListener('message', (e) => {
    if (!framed || e.source !== window.parent || !isHello(e.data)) return;
    if (!parentAllowed(e.origin, location.origin, allowed, ancestor)) {
      console.warn(`domcast: a page on ${e.origin} may not embed this viewer (VIEWER_ORIGINS); it is told nothing`);
      return;
    }
    if (parentOrigin !== e.origin) adopt(e.origin);
  });

  const view: ViewState = { status: 'unknown', steps: [], currentStep: null, error: null, connection: 'connecting', connectionText: 'connecting' };
  let lastStatus = '';
  const told = new Map<number, string>();

  const statusDetail = (): EmbedStatusDetail => ({
    session: sessionId,
    workflow: view.status === 'unknown' ? null : ui.workflow.textContent,
    status: view.status,
    connection: view.connection,
    currentStep: view.currentStep,
    stepCount: view.steps.length,
    steps: view.steps.map(({ index, type, description, state }) => ({ index, type, description, state })),
    error: view.error,
  });
  const update = (): void => {
    const detail = statusDetail();
    const key = JSON.stringify(detail);
    if (key !== lastStatus) {
      lastStatus = key;
      send('status', detail);
    }
    if (overlay) {
      overlay.dataset.connection = view.connection;
      overlay.dataset.status = view.status;
      overlayLabel.textContent = overlayText(view);
    }
  };

  viewerEvents.addEventListener('status', (e) => {
    const { status, steps, currentStep, error } = (e as CustomEvent<Pick<ViewState, 'status' | 'steps' | 'currentStep' | 'error'>>).detail;
    Object.assign(view, { status, steps, currentStep, error });
    for (const s of steps) {
      if (s.state === 'pending' || told.get(s.index) === s.state) continue;
      told.set(s.index, s.state);
      send('step', {
        session: sessionId,
        index: s.index,
        count: steps.length,
        type: s.type,
        description: s.description,
        state: s.state,
        durationMs: s.durationMs ?? null,
        error: s.error ?? null,
      });
    }
    update();
  });
  viewerEvents.addEventListener('connection', (e) => {
    const { kind, text } = (e as CustomEvent<{ kind: EmbedConnection; text: string }>).detail;
    view.connection = kind;
    view.connectionText = text;
    if (kind === 'error') send('error', { code: 'viewer', message: text });
    update();
  });
  update();
}
