/**
 * Replaying a recording with controls: play/pause, a seek bar marked with the workflow's steps,
 * speed and skip-inactivity. Used for ended runs (the whole page) and, while live, to rewind.
 */
import { EventType, Replayer, type eventWithTime } from 'rrweb';
import { CustomTag, type SessionStatus, type StepCustomPayload, type StepInfo, type WireEvent } from '../protocol/index.js';
import { canvasPlugin } from './canvas.js';
import { showTabs, tabsOf } from './tabs.js';
import { eventCleaner, makeInert } from './inert.js';
import { highlightStep, setStepPicker, stepAt, stepMarks, stepsFromRecording, type StepMark } from './steps.js';
import { sessionId, withToken } from './link.js';
import { $, explainNoPage, fitWrapper, renderStatus, setConnection, ui } from './ui.js';

interface RunInfo {
  workflow: string;
  status: SessionStatus;
  steps: StepInfo[];
  error: string | null;
}

const clock = (ms: number): string => {
  const s = Math.max(0, Math.floor(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
};

function markers(events: WireEvent[], start: number, total: number): HTMLElement[] {
  return events
    .filter((e) => e.type === EventType.Custom && (e.data as { tag?: string }).tag === CustomTag.step)
    .map((e) => ({ e, p: (e.data as { payload: StepCustomPayload }).payload }))
    .filter(({ p }) => p.phase === 'start' || p.phase === 'fail')
    .map(({ e, p }) => {
      const i = document.createElement('i');
      i.className = p.phase === 'fail' ? 'fail' : '';
      i.style.left = `${total > 0 ? ((e.timestamp - start) / total) * 100 : 0}%`;
      i.title = `${p.index + 1}. ${p.description ?? p.type}${p.error ? ` — ${p.error}` : ''}`;
      return i;
    });
}

export interface ReplayHandle {
  replayer: Replayer;
  /** Live events that arrived while rewinding: the recording (and the seek bar) grows. */
  addEvents(events: WireEvent[]): void;
  destroy(): void;
}

/** A Replayer over `events` in the stage, with the controls bar driving it. Opens at `startAt` (ms), paused. */
export function mountReplay(events: WireEvent[], startAt: number | 'end'): ReplayHandle {
  const clean = eventCleaner();
  const r = new Replayer(events.map(clean) as eventWithTime[], {
    root: ui.stage,
    skipInactive: true,
    // rrweb pauses CSS animations while paused: an element that fades in would stay invisible.
    pauseAnimation: false,
    showWarning: false,
    triggerFocus: false,
    mouseTail: { strokeStyle: 'rgba(99,102,241,.55)', lineWidth: 3, duration: 400 },
    // Canvas pictures are drawn by the viewer, so the replay iframe never needs scripts (canvas.ts).
    plugins: [canvasPlugin()],
  });
  makeInert(r);
  r.on('event-cast', (e) => {
    const tabs = tabsOf(e as WireEvent);
    if (tabs) showTabs(tabs);
  });
  let size = { width: 1280, height: 720 };
  const fit = () => fitWrapper(r.wrapper, size);
  r.on('resize', (d) => {
    size = d as { width: number; height: number };
    ui.placeholder.hidden = true;
    fit();
  });
  window.addEventListener('resize', fit);

  const play = $<HTMLButtonElement>('play');
  const seek = $<HTMLInputElement>('seek');
  const time = $('time');
  const speed = $<HTMLSelectElement>('speed');
  const skip = $<HTMLInputElement>('skip');
  let meta = r.getMetaData();
  let marks: StepMark[] = [];
  const refresh = () => {
    meta = r.getMetaData();
    seek.max = String(meta.totalTime);
    const all = r.service.state.context.events as WireEvent[];
    marks = stepMarks(all);
    $('markers').replaceChildren(...markers(all, meta.startTime, meta.totalTime));
  };
  refresh();
  $('controls').hidden = false;

  let playing = false;
  const show = (at: number) => {
    seek.value = String(at);
    time.textContent = `${clock(at)} / ${clock(meta.totalTime)}`;
    seek.setAttribute('aria-valuetext', `${clock(at)} of ${clock(meta.totalTime)}`);
    ui.root.dataset.replayAt = String(Math.round(at));
    highlightStep(stepAt(marks, meta.startTime + at));
  };
  const setPlaying = (on: boolean) => {
    playing = on;
    play.textContent = on ? '❚❚' : '▶';
    play.setAttribute('aria-label', on ? 'Pause' : 'Play');
    ui.root.dataset.playing = String(on);
  };
  const tick = () => {
    if (!playing) return;
    show(Math.min(meta.totalTime, r.getCurrentTime()));
    requestAnimationFrame(tick);
  };
  const goTo = (at: number) => {
    const t = Math.max(0, Math.min(meta.totalTime, at));
    if (playing) r.play(t);
    else r.pause(t);
    show(t);
  };
  const onPlay = () => {
    if (playing) {
      r.pause();
      setPlaying(false);
      show(r.getCurrentTime());
      return;
    }
    r.play(Number(seek.value) >= meta.totalTime ? 0 : Number(seek.value));
    setPlaying(true);
    tick();
  };
  const onSeek = () => goTo(Number(seek.value));
  // The bar counts milliseconds: an arrow moves 5 s (as video players do), Space plays or pauses.
  const onSeekKey = (e: KeyboardEvent) => {
    const by = { ArrowLeft: -5000, ArrowDown: -5000, ArrowRight: 5000, ArrowUp: 5000 }[e.key];
    if (by !== undefined) goTo(Number(seek.value) + by);
    else if (e.key === ' ') onPlay();
    else return;
    e.preventDefault();
  };
  const onSpeed = () => r.setConfig({ speed: Number(speed.value) });
  const onSkip = () => r.setConfig({ skipInactive: skip.checked });
  play.addEventListener('click', onPlay);
  seek.addEventListener('input', onSeek);
  seek.addEventListener('keydown', onSeekKey);
  setStepPicker((index) => {
    const mark = marks.find((m) => m.index === index);
    if (mark) goTo(mark.at - meta.startTime);
  });
  speed.addEventListener('change', onSpeed);
  skip.addEventListener('change', onSkip);
  r.setConfig({ speed: Number(speed.value), skipInactive: skip.checked });
  r.on('finish', () => {
    setPlaying(false);
    show(meta.totalTime);
  });
  setPlaying(false);
  goTo(startAt === 'end' ? meta.totalTime : startAt);

  return {
    replayer: r,
    addEvents(more) {
      for (const e of more) r.addEvent(clean(e) as eventWithTime);
      queueMicrotask(refresh);
    },
    destroy() {
      setPlaying(false);
      play.removeEventListener('click', onPlay);
      seek.removeEventListener('input', onSeek);
      seek.removeEventListener('keydown', onSeekKey);
      setStepPicker(null);
      speed.removeEventListener('change', onSpeed);
      skip.removeEventListener('change', onSkip);
      window.removeEventListener('resize', fit);
      r.destroy();
    },
  };
}

/** The whole recording of this session so far (seqs 1…n, in order). */
export async function fetchRecording(): Promise<WireEvent[]> {
  return (await fetch(withToken(`/workflows/${encodeURIComponent(sessionId)}/events`))).json() as Promise<WireEvent[]>;
}

/**
 * Replay mode, for a run that has ended (or was interrupted); `?t=<ms>` opens at that moment (else at
 * the end). Also where a live view goes when its run ends, so it resolves to the run's handle.
 */
export async function startReplay(): Promise<ReplayHandle | null> {
  const [info, events] = await Promise.all([
    fetch(withToken(`/workflows/${encodeURIComponent(sessionId)}`)).then((r) => r.json() as Promise<RunInfo>),
    fetchRecording(),
  ]);
  // A recording replayed from a file has no run behind it: its own step marks say what the steps were.
  const steps = info.steps.length > 0 ? info.steps : stepsFromRecording(events);
  ui.workflow.textContent = info.workflow;
  document.title = `${info.workflow} · domcast replay`;
  renderStatus(info.status, steps, null, info.error);
  ui.latency.hidden = true;
  ui.seq.textContent = `${events.length} events`;
  $('golive').hidden = true;
  ui.root.dataset.mode = 'replay';
  // Step and status marks alone (a run that failed before its first page) make nothing to replay.
  if (!events.some((e) => e.type === EventType.FullSnapshot)) {
    $('controls').hidden = true;
    explainNoPage(info.status, steps, info.error);
    setConnection('replay', 'replay');
    return null;
  }
  const params = new URLSearchParams(location.search);
  const t = Number(params.get('t'));
  const handle = mountReplay(events, params.has('t') && Number.isFinite(t) ? t : 'end');
  setConnection('replay', 'replay');
  return handle;
}
