/**
 * Take control (issue 16). Every viewer shows who drives the page (a banner) and a human step's
 * request. A viewer opened from a control link (`#control=<token>`) also takes and releases control
 * and sends the person's pointer, wheel and keys to the run's real page over the control socket.
 *
 * The replayed page stays a picture: its iframe runs no script and stays inert. A layer over it takes
 * the pointer and the keyboard; the element under the pointer is found in the replay's document
 * (elementFromPoint, from this page) and named by its rrweb id through the Replayer's mirror, with the
 * pointer's offset from its corner: the server finds the same element in the real page by that id.
 */
import type { Replayer } from 'rrweb';
import { CONTROL_FRAGMENT, CloseCode, controlPath, Modifier, type ControlClientMessage, type ControlServerFrame, type ControlView } from '../protocol/index.js';
import { sessionId } from './link.js';
import { $, ui } from './ui.js';

const token = new URLSearchParams(location.hash.slice(1)).get(CONTROL_FRAGMENT);

const layer = $('controllayer');
const banner = $('controlled');
const take = $<HTMLButtonElement>('take');

let current: () => Replayer | null = () => null;
let socket: WebSocket | null = null;
/** This viewer's own state: free (not holding), waiting, held, or final (the socket said why). */
let mine: string = 'free';
let view: ControlView | undefined;

/** For every viewer: who drives the page, and a human step's request. */
export function showControl(next: ControlView | undefined): void {
  view = next;
  const state = next?.state ?? 'free';
  ui.root.dataset.control = state;
  const request = next?.request;
  // The short text is what a narrow screen shows (viewer.css), over the page's top edge.
  const [text, short] =
    state === 'held' ? (mine === 'held' ? ['You control this browser: the run waits until you release it.', 'You control the browser'] : ['Controlled by a person: the run waits until they release it.', 'Controlled by a person'])
    : state === 'waiting' ? ['A person takes control at the end of this step.', 'A person takes control next']
    : request ? [`This run asks for a person: ${request.description ?? 'take control, then release it when done'}.`, 'This run asks for a person']
    : ['', ''];
  banner.textContent = text;
  banner.dataset.short = short;
  banner.hidden = state === 'free' && !request;
  banner.dataset.kind = state === 'free' ? 'request' : state;
  renderTake();
}

function renderTake(): void {
  if (token === null) return;
  const ended = ['released', 'revoked', 'expired', 'ended'].includes(mine);
  take.hidden = ended;
  take.disabled = mine === 'busy' || (view?.holder != null && mine === 'free');
  take.textContent = mine === 'held' ? 'Release' : mine === 'waiting' ? 'Waiting for the step…' : 'Take control';
  take.setAttribute('aria-pressed', String(mine === 'held'));
  ui.root.dataset.controlMine = mine;
  layer.hidden = mine !== 'held';
}

function send(message: ControlClientMessage): void {
  if (socket?.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
}

/** The element under a point of this page, in the replay: its rrweb id and the point's offset from its corner. */
function target(clientX: number, clientY: number): { id: number; x: number; y: number } | null {
  const r = current();
  if (!r) return null;
  const frame = r.iframe;
  const box = frame.getBoundingClientRect();
  const scale = box.width / (frame.offsetWidth || 1);
  let x = (clientX - box.left) / scale;
  let y = (clientY - box.top) / scale;
  if (x < 0 || y < 0 || x > frame.offsetWidth || y > frame.offsetHeight) return null;
  // elementFromPoint hit-tests the inert replay too (inert only keeps events and focus out of it).
  let el = frame.contentDocument?.elementFromPoint(x, y) ?? null;
  // Into the replay's own frames (same-origin documents rrweb rebuilt).
  for (let inner = el; inner?.tagName === 'IFRAME' && (inner as HTMLIFrameElement).contentDocument; inner = el) {
    const f = inner.getBoundingClientRect();
    x -= f.left + inner.clientLeft;
    y -= f.top + inner.clientTop;
    el = (inner as HTMLIFrameElement).contentDocument!.elementFromPoint(x, y);
  }
  if (!el) return null;
  const id = r.getMirror().getId(el);
  if (id < 0) return null;
  const e = el.getBoundingClientRect();
  return { id, x: x - e.left, y: y - e.top };
}

const mods = (e: MouseEvent | KeyboardEvent): number =>
  (e.altKey ? Modifier.alt : 0) | (e.ctrlKey ? Modifier.ctrl : 0) | (e.metaKey ? Modifier.meta : 0) | (e.shiftKey ? Modifier.shift : 0);

/** Pointer moves and wheel turns are sent at most once a frame: the latest position, the wheel's sum. */
let pendingMove: PointerEvent | null = null;
let pendingWheel: { e: WheelEvent; dx: number; dy: number } | null = null;
let scheduled = false;
function schedule(): void {
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(() => {
    scheduled = false;
    if (pendingMove) {
      const at = target(pendingMove.clientX, pendingMove.clientY);
      if (at) send({ t: 'input', kind: 'move', ...at, mods: mods(pendingMove) });
      pendingMove = null;
    }
    if (pendingWheel) {
      const at = target(pendingWheel.e.clientX, pendingWheel.e.clientY);
      if (at) send({ t: 'input', kind: 'wheel', ...at, dx: pendingWheel.dx, dy: pendingWheel.dy, mods: mods(pendingWheel.e) });
      pendingWheel = null;
    }
  });
}

const BUTTON = ['left', 'middle', 'right'] as const;

function wireLayer(): void {
  layer.addEventListener('pointermove', (e) => {
    pendingMove = e;
    schedule();
  });
  layer.addEventListener('click', (e) => {
    layer.focus({ preventScroll: true });
    const at = target(e.clientX, e.clientY);
    if (at) send({ t: 'input', kind: 'click', ...at, clicks: Math.min(3, Math.max(1, e.detail)), mods: mods(e) });
  });
  layer.addEventListener('auxclick', (e) => {
    const at = target(e.clientX, e.clientY);
    if (at && e.button === 1) send({ t: 'input', kind: 'click', ...at, button: 'middle', mods: mods(e) });
  });
  layer.addEventListener('contextmenu', (e) => {
    e.preventDefault();
    const at = target(e.clientX, e.clientY);
    if (at) send({ t: 'input', kind: 'click', ...at, button: BUTTON[2], mods: mods(e) });
  });
  layer.addEventListener(
    'wheel',
    (e) => {
      e.preventDefault();
      const scale = e.deltaMode === 1 ? 40 : e.deltaMode === 2 ? 800 : 1;
      pendingWheel = { e, dx: (pendingWheel?.dx ?? 0) + e.deltaX * scale, dy: (pendingWheel?.dy ?? 0) + e.deltaY * scale };
      schedule();
    },
    { passive: false },
  );
  const onKey = (e: KeyboardEvent): void => {
    // ⌘V / Ctrl+V: the browser's paste event brings the text (this machine's clipboard, not the run's).
    if ((e.ctrlKey || e.metaKey) && e.code === 'KeyV') return;
    // Every other key, Tab included, goes to the page: Shift+Escape is the way out, to the Release button.
    if (e.key === 'Escape' && e.shiftKey && !e.ctrlKey && !e.altKey && !e.metaKey) {
      e.preventDefault();
      if (e.type === 'keydown') take.focus();
      return;
    }
    e.preventDefault();
    if (e.isComposing) return;
    send({ t: 'input', kind: 'key', phase: e.type === 'keydown' ? 'down' : 'up', key: e.key, code: e.code, mods: mods(e), ...(e.repeat ? { repeat: true } : {}) });
  };
  layer.addEventListener('keydown', onKey);
  layer.addEventListener('keyup', onKey);
  layer.addEventListener('paste', (e) => {
    e.preventDefault();
    const text = e.clipboardData?.getData('text/plain') ?? '';
    if (text) send({ t: 'input', kind: 'text', text: text.slice(0, 2000) });
  });
}

function onFrame(frame: ControlServerFrame): void {
  if (frame.t === 'control') {
    mine = frame.state;
    showControl(frame.view);
    if (mine === 'held') layer.focus({ preventScroll: true });
    const words: Record<string, string> = {
      busy: 'another person controls this run',
      released: 'you released control',
      revoked: 'control was taken away',
      expired: 'this control link has expired',
      ended: 'the run ended',
    };
    take.title = frame.reason ?? words[mine] ?? '';
    ui.root.dataset.controlNote = words[mine] ?? '';
  } else if (frame.t === 'refused') {
    ui.root.dataset.controlNote = frame.reason;
  }
}

function connect(): void {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(`${proto}//${location.host}${controlPath(sessionId)}?token=${encodeURIComponent(token ?? '')}`);
  socket = ws;
  ws.onmessage = (m) => onFrame(JSON.parse(String(m.data)) as ControlServerFrame);
  ws.onclose = (e) => {
    socket = null;
    if (['released', 'revoked', 'expired', 'ended'].includes(mine)) return renderTake();
    if (e.code === CloseCode.unauthorized || e.code === CloseCode.forbiddenOrigin || e.code === CloseCode.visualOff || e.code === CloseCode.normal) {
      mine = e.code === CloseCode.unauthorized ? 'expired' : 'ended';
      take.title = e.reason;
      ui.root.dataset.controlNote = e.reason;
      return renderTake();
    }
    mine = 'free';
    renderTake();
    setTimeout(connect, 1000);
  };
}

/** Called once: `replayer` gives the live Replayer of the moment (it is rebuilt on a reset). */
export function startControl(replayer: () => Replayer | null): void {
  current = replayer;
  if (token === null) return;
  ui.root.dataset.controller = '';
  wireLayer();
  take.addEventListener('click', () => {
    // The person acts on the page as it is now: a viewer that was rewinding goes live first.
    if (mine !== 'held' && ui.root.dataset.rewinding === 'true') $('golive').click();
    send({ t: mine === 'held' ? 'release' : 'take' });
  });
  renderTake();
  connect();
}
