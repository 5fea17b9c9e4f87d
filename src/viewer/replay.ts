/**
 * Replay mode, for a run that has ended (or was interrupted): the whole recording from
 * GET /workflows/{id}/events in rrweb's Replayer, with play/pause, a seek bar marked with the
 * workflow's steps, speed and skip-inactivity. `?t=<ms>` opens at that moment.
 */
import { EventType, Replayer, type eventWithTime } from 'rrweb';
import { CustomTag, type SessionStatus, type StepCustomPayload, type StepInfo, type WireEvent } from '../protocol/index.js';
import { $, fitWrapper, renderStatus, sessionId, setConnection, ui } from './ui.js';

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

export async function startReplay(): Promise<void> {
  const id = encodeURIComponent(sessionId);
  const [info, events] = await Promise.all([
    fetch(`/workflows/${id}`).then((r) => r.json() as Promise<RunInfo>),
    fetch(`/workflows/${id}/events`).then((r) => r.json() as Promise<WireEvent[]>),
  ]);
  ui.workflow.textContent = info.workflow;
  document.title = `${info.workflow} · domcast replay`;
  renderStatus(info.status, info.steps, null, info.error);
  setConnection('replay', 'replay');
  ui.latency.hidden = true;
  if (events.length < 2) {
    ui.placeholder.querySelector('.spinner')?.remove();
    ui.placeholder.querySelector('p')!.textContent = 'Nothing was recorded for this run.';
    return;
  }

  const r = new Replayer(events as eventWithTime[], {
    root: ui.stage,
    skipInactive: true,
    // rrweb pauses CSS animations while paused: an element that fades in would stay invisible.
    pauseAnimation: false,
    showWarning: false,
    triggerFocus: false,
    mouseTail: { strokeStyle: 'rgba(99,102,241,.55)', lineWidth: 3, duration: 400 },
  });
  let size = { width: 1280, height: 720 };
  const fit = () => fitWrapper(r.wrapper, size);
  r.on('resize', (d) => {
    size = d as { width: number; height: number };
    ui.placeholder.hidden = true;
    fit();
  });
  window.addEventListener('resize', fit);

  const { startTime, totalTime } = r.getMetaData();
  const play = $<HTMLButtonElement>('play');
  const seek = $<HTMLInputElement>('seek');
  const time = $('time');
  const speed = $<HTMLSelectElement>('speed');
  const skip = $<HTMLInputElement>('skip');
  $('markers').replaceChildren(...markers(events, startTime, totalTime));
  seek.max = String(totalTime);
  $('controls').hidden = false;

  let playing = false;
  const show = (at: number) => {
    seek.value = String(at);
    time.textContent = `${clock(at)} / ${clock(totalTime)}`;
    ui.root.dataset.replayAt = String(Math.round(at));
    ui.seq.textContent = `${events.length} events`;
  };
  const setPlaying = (on: boolean) => {
    playing = on;
    play.textContent = on ? '❚❚' : '▶';
    play.setAttribute('aria-label', on ? 'Pause' : 'Play');
    ui.root.dataset.playing = String(on);
  };
  const tick = () => {
    if (!playing) return;
    show(Math.min(totalTime, r.getCurrentTime()));
    requestAnimationFrame(tick);
  };
  const goTo = (at: number) => {
    const t = Math.max(0, Math.min(totalTime, at));
    if (playing) r.play(t);
    else r.pause(t);
    show(t);
  };

  play.addEventListener('click', () => {
    if (playing) {
      r.pause();
      setPlaying(false);
      show(r.getCurrentTime());
      return;
    }
    const from = Number(seek.value) >= totalTime ? 0 : Number(seek.value);
    r.play(from);
    setPlaying(true);
    tick();
  });
  seek.addEventListener('input', () => goTo(Number(seek.value)));
  speed.addEventListener('change', () => r.setConfig({ speed: Number(speed.value) }));
  skip.addEventListener('change', () => r.setConfig({ skipInactive: skip.checked }));
  r.on('finish', () => {
    setPlaying(false);
    show(totalTime);
  });

  // Opens on the final page, or at ?t=<ms>.
  const t = Number(new URLSearchParams(location.search).get('t'));
  setPlaying(false);
  goTo(Number.isFinite(t) && new URLSearchParams(location.search).has('t') ? t : totalTime);
}
