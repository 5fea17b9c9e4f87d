/**
 * The step list: its rows, the one step highlighted (live: the step running now; replay: the step at
 * the play position), and the steps a recording tells of itself (its `domcast.step` marks), for a
 * recording that came without its run (`domcast replay file.json`).
 */
import { CustomTag, RrwebEventType, type StepCustomPayload, type StepInfo, type WireEvent } from '../protocol/index.js';

/** When each step started in a recording (page timestamps), in order. */
export interface StepMark {
  index: number;
  at: number;
}

const list = (): HTMLElement => document.getElementById('steps')!;

let highlighted: number | null = null;
let picker: ((index: number) => void) | null = null;

function stepPayloads(events: readonly WireEvent[]): { at: number; p: StepCustomPayload }[] {
  return events
    .filter((e) => e.type === RrwebEventType.Custom && (e.data as { tag?: string } | undefined)?.tag === CustomTag.step)
    .map((e) => ({ at: e.timestamp, p: (e.data as { payload: StepCustomPayload }).payload }));
}

/** The first start of each step, ordered by time. */
export function stepMarks(events: readonly WireEvent[]): StepMark[] {
  const seen = new Set<number>();
  const marks: StepMark[] = [];
  for (const { at, p } of stepPayloads(events)) {
    if (p.phase !== 'start' || seen.has(p.index)) continue;
    seen.add(p.index);
    marks.push({ index: p.index, at });
  }
  return marks.sort((a, b) => a.at - b.at);
}

/** The step running at page time `at`: the last one started by then (before any, the first: it is about to start). */
export function stepAt(marks: readonly StepMark[], at: number): number | null {
  let found: number | null = marks[0]?.index ?? null;
  for (const m of marks) {
    if (m.at > at) break;
    found = m.index;
  }
  return found;
}

/** The steps as a recording's own marks tell them: for a file replayed without its run. */
export function stepsFromRecording(events: readonly WireEvent[]): StepInfo[] {
  const steps = new Map<number, StepInfo>();
  for (const { p } of stepPayloads(events)) {
    const s = steps.get(p.index) ?? { index: p.index, type: p.type, description: p.description, state: 'pending' as const };
    if (p.phase === 'start') s.state = 'running';
    else if (p.phase === 'end') s.state = 'succeeded';
    else s.state = 'failed';
    if (p.durationMs !== undefined) s.durationMs = p.durationMs;
    if (p.error !== undefined) s.error = p.error;
    steps.set(p.index, s);
  }
  // A step the recording saw start but never end was cut short with it.
  return [...steps.values()].sort((a, b) => a.index - b.index).map((s) => (s.state === 'running' ? { ...s, state: 'cancelled' } : s));
}

/** Keeps `el` in view inside the list (centred when it was out of sight), not moving the page around it. */
function reveal(el: HTMLElement): void {
  const box = list();
  const outer = box.getBoundingClientRect();
  const r = el.getBoundingClientRect();
  if (r.top >= outer.top && r.bottom <= outer.bottom) return;
  const top = box.scrollTop + (r.top - outer.top) - (outer.height - r.height) / 2;
  const smooth = !matchMedia('(prefers-reduced-motion: reduce)').matches;
  box.scrollTo({ top, behavior: smooth ? 'smooth' : 'auto' });
}

/** Marks step `index` (or none) as the one shown, and scrolls the list to it. */
export function highlightStep(index: number | null): void {
  const changed = index !== highlighted;
  highlighted = index;
  document.documentElement.dataset.stepAt = index === null ? '' : String(index);
  for (const li of list().querySelectorAll<HTMLElement>('li')) {
    const on = li.dataset.index === String(index);
    li.classList.toggle('at', on);
    if (on) li.setAttribute('aria-current', 'step');
    else li.removeAttribute('aria-current');
    if (on && changed) reveal(li);
  }
}

/** In replay a step row is a way to seek: `pick` gets its index (null: rows are plain again). */
export function setStepPicker(pick: ((index: number) => void) | null): void {
  picker = pick;
  for (const li of list().querySelectorAll<HTMLElement>('li')) pickable(li);
}

function pickable(li: HTMLElement): void {
  if (picker) {
    li.tabIndex = 0;
    li.title = 'Play from this step';
  } else {
    li.removeAttribute('tabindex');
    li.removeAttribute('title');
  }
}

function row(s: StepInfo): HTMLLIElement {
  const li = document.createElement('li');
  li.className = s.state;
  li.dataset.index = String(s.index);
  const ic = document.createElement('span');
  ic.className = 'ic';
  ic.setAttribute('aria-hidden', 'true');
  const d = document.createElement('span');
  d.className = 'd';
  d.textContent = `${s.index + 1}. ${s.description ?? s.type}`;
  const small = document.createElement('small');
  small.textContent = s.error ?? `${s.type} · ${s.state}`;
  d.append(small);
  const t = document.createElement('span');
  t.className = 't';
  t.textContent = s.durationMs !== undefined ? `${(s.durationMs / 1000).toFixed(1)} s` : '';
  li.append(ic, d, t);
  pickable(li);
  return li;
}

/** Draws the rows, keeping the highlight where it was. */
export function renderSteps(steps: StepInfo[]): void {
  const el = list();
  el.replaceChildren(...steps.map(row));
  const count = document.getElementById('stepcount');
  if (count) count.textContent = steps.length ? String(steps.length) : '';
  el.dataset.empty = String(steps.length === 0);
  highlightStep(highlighted);
}

/** Once: clicks and Enter/Space on a row seek to it while a picker is set; the heading folds the list. */
export function wireSteps(): void {
  const el = list();
  const pickFrom = (e: Event) => {
    const li = (e.target as HTMLElement).closest<HTMLElement>('li[data-index]');
    if (li && picker) picker(Number(li.dataset.index));
  };
  el.addEventListener('click', pickFrom);
  el.addEventListener('keydown', (e) => {
    if (e.key !== 'Enter' && e.key !== ' ') return;
    e.preventDefault();
    pickFrom(e);
  });
  const toggle = document.getElementById('stepstoggle');
  const panel = document.getElementById('panel');
  toggle?.addEventListener('click', () => {
    const open = toggle.getAttribute('aria-expanded') !== 'true';
    toggle.setAttribute('aria-expanded', String(open));
    panel?.classList.toggle('folded', !open);
    if (open && highlighted !== null) {
      const li = el.querySelector<HTMLElement>(`li[data-index="${highlighted}"]`);
      if (li) reveal(li);
    }
  });
}
