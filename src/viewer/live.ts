/**
 * Live mode: one WebSocket, one rrweb Replayer in live mode, and a little chrome around it.
 * Events are cast the moment they arrive (baseline far in the future, no virtual DOM): rrweb's own
 * timer would hold them back by its buffer, which is what made the documented setup seconds late.
 */
import { EventType, IncrementalSource, Replayer, type eventWithTime } from 'rrweb';
import { CloseCode, PROTOCOL_VERSION, type ServerFrame, type SessionStatus, type StepInfo, type WireEvent } from '../protocol/index.js';
import { canvasPlugin } from './canvas.js';
import { showControl } from './control.js';
import { showTabs, tabsOf } from './tabs.js';
import { eventCleaner, makeInert } from './inert.js';
import { fetchRecording, mountReplay, startReplay, type ReplayHandle } from './replay.js';
import { highlightStep } from './steps.js';
import type { EarlySocket } from './early.js';
import { streamUrl } from './link.js';
import { $, explainNoPage, fitWrapper, renderStatus, setConnection, ui } from './ui.js';

/** Every event is "in the past" relative to this, so rrweb casts it synchronously. */
const FAR_FUTURE = Number.MAX_SAFE_INTEGER;
const FINAL_CLOSE_CODES: readonly number[] = [
  CloseCode.notFound,
  CloseCode.visualOff,
  CloseCode.badRequest,
  CloseCode.normal,
  CloseCode.unauthorized,
  CloseCode.forbiddenOrigin,
];

interface MouseApi {
  moveAndHover(x: number, y: number, id: number, isSync: boolean, debugData: unknown): void;
  mouse: HTMLDivElement;
}


const state = {
  epoch: null as string | null,
  lastSeq: 0,
  ended: false,
  /** The run is kept in the store (hello): what the stream cannot give any more, the replay can. */
  recorded: false,
  retries: 0,
  /** server clock minus ours, from hello/ping; latency is read on the server's clock. */
  clockOffset: 0,
  latencyMs: null as number | null,
  size: { width: 1280, height: 720 },
  /** The run as the last hello or status told it. */
  run: { status: 'queued' as SessionStatus, steps: [] as StepInfo[], currentStep: null as number | null, error: null as string | null },
};

let replayer: Replayer | null = null;
let clean = eventCleaner();

/** The live page's Replayer now (rebuilt on every reset), for the control layer. */
export const liveReplayer = (): Replayer | null => replayer;

function fit(): void {
  fitWrapper(replayer?.wrapper, state.size);
}

function newReplayer(): Replayer {
  replayer?.destroy();
  clean = eventCleaner();
  const r = new Replayer([], {
    root: ui.stage,
    liveMode: true,
    useVirtualDom: false,
    triggerFocus: false,
    showWarning: false,
    pauseAnimation: false,
    mouseTail: { strokeStyle: 'rgba(99,102,241,.55)', lineWidth: 3, duration: 400 },
    // Canvas pictures are drawn by the viewer, so the replay iframe never needs scripts (canvas.ts).
    plugins: [canvasPlugin()],
  });
  makeInert(r);
  r.on('resize', (d) => {
    const { width, height } = d as { width: number; height: number };
    state.size = { width, height };
    ui.placeholder.hidden = true;
    fit();
  });
  r.startLive(FAR_FUTURE);
  // A reset while the viewer is rewinding rebuilds the live page underneath, still hidden.
  if (rewind.handle || rewind.opening) r.wrapper.style.display = 'none';
  return r;
}

/** The cursor: positions are batched by the recorder, so play them back spread as they were recorded. */
function moveCursor(r: Replayer, event: WireEvent): void {
  const mouse = r as unknown as MouseApi;
  const data = event.data as { source?: number; positions?: { x: number; y: number; id: number; timeOffset: number }[]; x?: number; y?: number; id?: number; type?: number };
  if (data.source === IncrementalSource.MouseMove && data.positions?.length) {
    const first = data.positions[0]!.timeOffset;
    for (const p of data.positions) setTimeout(() => replayer === r && mouse.moveAndHover(p.x, p.y, p.id, false, data), p.timeOffset - first);
  } else if (data.source === IncrementalSource.MouseInteraction && typeof data.x === 'number' && typeof data.y === 'number' && data.id !== undefined) {
    mouse.moveAndHover(data.x, data.y, data.id, false, data);
    if (data.type === 2 /* Click */) {
      mouse.mouse.classList.remove('active');
      void mouse.mouse.offsetWidth;
      mouse.mouse.classList.add('active');
    }
  }
}

/**
 * rrweb keeps every event it was given. Live, nothing before the latest Meta is needed again (each
 * event was cast on arrival), so a long run does not grow the viewer's memory without bound.
 */
function forgetBefore(r: Replayer, meta: WireEvent): void {
  const events = r.service.state.context.events as WireEvent[];
  const at = events.indexOf(meta);
  if (at > 0) events.splice(0, at);
}

function apply(events: WireEvent[]): void {
  const r = replayer ?? (replayer = newReplayer());
  for (const e of events) {
    r.addEvent(clean(e) as eventWithTime);
    if (e.type === EventType.IncrementalSnapshot) queueMicrotask(() => moveCursor(r, e));
    else if (e.type === EventType.Meta) queueMicrotask(() => forgetBefore(r, e));
    else if (e.type === EventType.Custom) {
      const tabs = tabsOf(e);
      if (tabs) showTabs(tabs);
    }
  }
}

function showSeq(): void {
  ui.seq.textContent = `seq ${state.lastSeq}`;
  ui.root.dataset.lastSeq = String(state.lastSeq);
}

function noteLatency(events: WireEvent[]): void {
  const last = events[events.length - 1];
  if (!last || last.type === EventType.Custom) return;
  const sample = Math.max(0, Date.now() + state.clockOffset - last.timestamp);
  state.latencyMs = state.latencyMs === null ? sample : state.latencyMs * 0.8 + sample * 0.2;
  ui.latency.textContent = `${Math.round(state.latencyMs)} ms`;
}

/** The run as a hello or status frame tells it: the panel, and the step highlighted unless the viewer is rewinding. */
function showRun(frame: { status: SessionStatus; steps: StepInfo[]; currentStep: number | null; error: string | null }): void {
  state.run = { status: frame.status, steps: frame.steps, currentStep: frame.currentStep, error: frame.error };
  renderStatus(frame.status, frame.steps, frame.currentStep, frame.error);
  if (!rewind.handle && !rewind.opening) highlightStep(frame.currentStep);
}

/**
 * The run is over: the view becomes its replay (the page stays where it is, the controls become the
 * replay's). A viewer that was rewinding keeps its place, in the recording it already has.
 */
async function toReplay(): Promise<void> {
  liveControls(false);
  $('golive').hidden = true;
  await rewind.pending;
  if (!state.recorded) {
    $('controls').hidden = true;
    fit();
    if (!ui.placeholder.hidden) explainNoPage(state.run.status, state.run.steps, state.run.error);
    return;
  }
  if (rewind.handle) {
    replayer?.destroy();
    replayer = null;
    ui.root.dataset.mode = 'replay';
    ui.root.dataset.rewinding = 'false';
    ui.latency.hidden = true;
    setConnection('replay', 'replay');
    return;
  }
  try {
    // Mounted over the live page before that goes, so the final page never blinks.
    await startReplay();
    replayer?.destroy();
    replayer = null;
  } catch (err) {
    console.warn('domcast viewer: the recording could not be loaded for replay', err);
  }
}

function onFrame(frame: ServerFrame): void {
  switch (frame.t) {
    case 'hello':
      if (frame.v !== PROTOCOL_VERSION) console.warn(`domcast viewer speaks protocol ${PROTOCOL_VERSION}, server ${frame.v}`);
      if (state.epoch !== null && state.epoch !== frame.epoch) state.lastSeq = 0;
      state.epoch = frame.epoch;
      state.clockOffset = frame.serverTime - Date.now();
      // Without a recording there is nothing to rewind through.
      $('controls').hidden = !frame.recorded;
      fit();
      state.recorded = frame.recorded;
      ui.workflow.textContent = frame.workflow;
      document.title = `${frame.workflow} · domcast`;
      showRun(frame);
      showControl(frame.control);
      showTabs(frame.tabs);
      setConnection('live', frame.status === 'running' || frame.status === 'queued' ? 'live' : 'connected');
      state.retries = 0;
      break;
    case 'reset':
      replayer?.destroy();
      replayer = null;
      apply(frame.events);
      state.lastSeq = frame.from + frame.events.length - 1;
      showSeq();
      break;
    case 'events': {
      // Never apply an event twice; a gap means we lost our place: rebuild from a checkpoint.
      const skip = state.lastSeq + 1 - frame.from;
      if (skip < 0) {
        state.lastSeq = 0;
        socket?.close();
        return;
      }
      const fresh = frame.events.slice(skip);
      apply(fresh);
      rewind.onLive(state.lastSeq + 1, fresh);
      state.lastSeq += fresh.length;
      showSeq();
      noteLatency(fresh);
      break;
    }
    case 'status':
      showRun(frame);
      showControl(frame.control);
      break;
    case 'end':
      state.ended = true;
      setConnection('ended', frame.reason ?? `run ${frame.status}`);
      // A recording that stopped early (`reason`) has nothing more to show; a run that ended has its
      // replay, which also holds any events we never got (we were away when it ended).
      if (!frame.reason) void toReplay();
      break;
    case 'ping':
      state.clockOffset = frame.serverTime - Date.now();
      break;
  }
}

let socket: WebSocket | null = null;

/** The socket early.ts opened in the page's head, once: later connects open their own. */
function takeEarlySocket(): EarlySocket | undefined {
  const early = window.__domcastEarlySocket;
  delete window.__domcastEarlySocket;
  return early;
}

function connect(): void {
  const early = takeEarlySocket();
  const ws = early?.ws ?? new WebSocket(streamUrl(state.lastSeq > 0 && state.epoch ? { since: state.lastSeq, epoch: state.epoch } : undefined));
  socket = ws;
  const onMessage = (m: MessageEvent | ServerFrame): void => onFrame(m instanceof MessageEvent ? (JSON.parse(String(m.data)) as ServerFrame) : m);
  const onClose = (e: CloseEvent): void => {
    socket = null;
    if (state.ended) return;
    if (FINAL_CLOSE_CODES.includes(e.code)) {
      setConnection('error', e.reason || `closed (${e.code})`);
      if (!replayer) ui.placeholder.querySelector('p')!.textContent = e.reason || 'This live view is not available.';
      ui.placeholder.querySelector('.spinner')?.remove();
      return;
    }
    // Exponential backoff with jitter, capped at 10 s; resumes from lastSeq.
    const delay = Math.min(10_000, 250 * 2 ** state.retries) * (0.75 + Math.random() * 0.5);
    state.retries++;
    setConnection('reconnecting', `reconnecting in ${Math.ceil(delay / 1000)} s`);
    setTimeout(connect, delay);
  };
  if (!early) {
    ws.onmessage = onMessage;
    ws.onclose = onClose;
    return;
  }
  // What came before we took the socket, in order, then (if it came to that) its close; until then
  // early.ts's handlers keep buffering. Not before the page's load event: rrweb's iframe, written
  // into before it, kept that event from ever firing (the tab spun for good).
  const drain = (): void => {
    for (const m of early.frames.splice(0)) onMessage(m);
    ws.onmessage = onMessage;
    if (early.closed) onClose(early.closed);
    else ws.onclose = onClose;
  };
  if (document.readyState === 'complete') drain();
  else window.addEventListener('load', drain, { once: true });
}

/**
 * Rewind while live: pausing or scrubbing opens the recording so far (from the store) in a second
 * Replayer with the replay controls; the live one stays connected and current underneath, hidden,
 * and new events extend the recording being rewound. "Go live" drops the rewind and shows the live one.
 */
const rewind = {
  handle: null as ReplayHandle | null,
  opening: false,
  /** Settles when an opening rewind is ready (or at once). */
  pending: Promise.resolve() as Promise<void>,
  /** Seq of the last event the rewind replayer has. */
  seq: 0,
  /** Live events that arrive while the recording is being fetched. */
  waiting: [] as { seq: number; event: WireEvent }[],

  onLive(from: number, events: WireEvent[]): void {
    if (this.opening) events.forEach((event, i) => this.waiting.push({ seq: from + i, event }));
    else if (this.handle) this.extend(events.map((event, i) => ({ seq: from + i, event })));
  },

  extend(items: { seq: number; event: WireEvent }[]): void {
    const fresh = items.filter((x) => x.seq > this.seq);
    if (fresh.length === 0 || !this.handle) return;
    this.seq = fresh.at(-1)!.seq;
    this.handle.addEvents(fresh.map((x) => x.event));
  },

  open(fraction: number | 'end'): Promise<void> {
    if (this.opening || this.handle || state.ended) return this.pending;
    this.pending = this.load(fraction);
    return this.pending;
  },

  async load(fraction: number | 'end'): Promise<void> {
    this.opening = true;
    liveControls(false);
    const events = await fetchRecording();
    this.seq = events.length; // the store holds seqs 1…n, in order
    this.handle = mountReplay(events, 'end');
    if (fraction !== 'end') {
      const seek = $<HTMLInputElement>('seek');
      seek.value = String(Number(seek.max) * fraction);
      seek.dispatchEvent(new Event('input'));
    }
    this.opening = false;
    this.extend(this.waiting.splice(0));
    if (replayer) replayer.wrapper.style.display = 'none';
    ui.root.dataset.rewinding = 'true';
    const golive = $('golive');
    golive.classList.remove('on');
    golive.textContent = 'Go live';
  },

  close(): void {
    if (!this.handle) return;
    this.handle.destroy();
    this.handle = null;
    if (replayer) replayer.wrapper.style.display = '';
    ui.root.dataset.rewinding = 'false';
    liveControls(true);
    highlightStep(state.run.currentStep);
    fit();
  },
};

const onLivePlay = () => void rewind.open('end');
/** Space on the bar pauses, as in the replay; arrows move it (an `input`, so a rewind opens there). */
const onLiveSeekKey = (e: KeyboardEvent) => {
  if (e.key !== ' ') return;
  e.preventDefault();
  onLivePlay();
};
const onLiveSeek = (e: Event) => {
  const seek = e.target as HTMLInputElement;
  void rewind.open(Number(seek.max) > 0 ? Number(seek.value) / Number(seek.max) : 1);
};

/** In live mode the controls show "now": pausing or scrubbing starts a rewind. */
function liveControls(on: boolean): void {
  const play = $<HTMLButtonElement>('play');
  const seek = $<HTMLInputElement>('seek');
  const golive = $('golive');
  if (on) {
    play.textContent = '❚❚';
    play.setAttribute('aria-label', 'Pause (rewind)');
    seek.max = '1000';
    seek.value = '1000';
    $('time').textContent = 'live';
    $('markers').replaceChildren();
    golive.classList.add('on');
    golive.textContent = '● Live';
    play.addEventListener('click', onLivePlay);
    seek.addEventListener('input', onLiveSeek);
    seek.addEventListener('keydown', onLiveSeekKey);
  } else {
    play.removeEventListener('click', onLivePlay);
    seek.removeEventListener('input', onLiveSeek);
    seek.removeEventListener('keydown', onLiveSeekKey);
  }
}

/** Live mode: follow the session over its WebSocket until it ends. */
export function startLive(): void {
  window.addEventListener('resize', fit);
  $('golive').addEventListener('click', () => rewind.close());
  ui.root.dataset.rewinding = 'false';
  liveControls(true);
  connect();
}
