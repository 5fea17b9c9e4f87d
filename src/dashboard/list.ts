/**
 * The runs, newest first, updating live: the page polls GET /workflows/sessions every POLL_MS while
 * it is visible (and at once when it becomes visible again). Rows are kept and updated in place, so
 * focus, thumbnails and scroll position survive each refresh.
 */
import { api, type SessionView, type StoredWorkflow } from './api.js';
import { cancel, remove, watch } from './actions.js';
import { $, h, setText } from './dom.js';
import { ACTIVE, duration, STATUSES, when } from './format.js';
import { Thumbnails } from './thumbnails.js';

export const POLL_MS = 1500;
const PAGE_SIZE = 20;

interface Row {
  el: HTMLLIElement;
  box: HTMLElement;
  name: HTMLButtonElement;
  sub: HTMLElement;
  pill: HTMLElement;
  step: HTMLElement;
  duration: HTMLElement;
  viewers: HTMLElement;
  actions: HTMLElement;
  /** Status and visual as of the actions' last render. */
  shown: string;
}

export class RunList {
  private readonly rows = new Map<string, Row>();
  private readonly thumbnails = new Thumbnails();
  /** The cursor of each page visited; page n's is cursors[n]. */
  private cursors: (string | null)[] = [null];
  private page = 0;
  private nextCursor: string | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private generation = 0;
  private readonly workflows = new Set<string>();
  sessions: SessionView[] = [];
  /** Told after each refresh (the details dialog follows its run). */
  onRefresh: () => void = () => {};

  constructor(private readonly openDetails: (id: string) => void) {
    const status = $<HTMLSelectElement>('filter-status');
    for (const s of STATUSES) status.append(h('option', { value: s }, s[0]!.toUpperCase() + s.slice(1)));
    status.addEventListener('change', () => this.filtersChanged());
    $<HTMLSelectElement>('filter-workflow').addEventListener('change', () => this.filtersChanged());
    $('page-next').addEventListener('click', () => this.goto(this.page + 1));
    $('page-prev').addEventListener('click', () => this.goto(this.page - 1));
    $('page-first').addEventListener('click', () => this.goto(0));
    // A hidden tab polls nothing and watches nothing: its thumbnails' sockets are closed until it is seen again.
    document.addEventListener('visibilitychange', () => {
      if (document.hidden) this.thumbnails.sync([]);
      else void this.refresh();
    });
  }

  /** Stored workflows' names go into the workflow filter before any run of them is seen. */
  addWorkflows(list: StoredWorkflow[]): void {
    this.knowWorkflows(list.map((w) => w.title ?? w.name));
  }

  /** Filters come from the address (#status=…&workflow=…), so Back from a viewer finds them as they were. */
  start(): void {
    const wanted = new URLSearchParams(location.hash.slice(1));
    const workflow = wanted.get('workflow');
    if (workflow) this.knowWorkflows([workflow]);
    $<HTMLSelectElement>('filter-status').value = wanted.get('status') ?? '';
    $<HTMLSelectElement>('filter-workflow').value = workflow ?? '';
    void this.refresh();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.generation++;
    this.clear();
    this.thumbnails.sync([]);
  }

  private filtersChanged(): void {
    const q = new URLSearchParams();
    for (const [key, id] of [['status', 'filter-status'], ['workflow', 'filter-workflow']] as const) {
      const value = $<HTMLSelectElement>(id).value;
      if (value) q.set(key, value);
    }
    history.replaceState(null, '', q.size ? `#${q}` : location.pathname + location.search);
    this.cursors = [null];
    this.page = 0;
    this.clear();
    void this.refresh();
  }

  private goto(page: number): void {
    if (page < 0 || (page > this.page && !this.nextCursor)) return;
    if (page > this.page) this.cursors[page] = this.nextCursor;
    this.page = page;
    this.cursors.length = page + 1;
    this.clear();
    void this.refresh();
    $('runs-title').focus();
  }

  private clear(): void {
    for (const row of this.rows.values()) row.el.remove();
    this.rows.clear();
  }

  async refresh(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    const generation = ++this.generation;
    const q = new URLSearchParams({ limit: String(PAGE_SIZE) });
    const status = $<HTMLSelectElement>('filter-status').value;
    const workflow = $<HTMLSelectElement>('filter-workflow').value;
    if (status) q.set('status', status);
    if (workflow) q.set('workflow', workflow);
    const cursor = this.cursors[this.page];
    if (cursor) q.set('cursor', cursor);
    try {
      const answer = await api<{ sessions: SessionView[]; next_cursor: string | null }>('GET', `workflows/sessions?${q}`);
      if (generation !== this.generation) return;
      this.nextCursor = answer.next_cursor;
      this.render(answer.sessions);
      $('live').classList.remove('stale');
    } catch {
      if (generation !== this.generation) return;
      $('live').classList.add('stale');
    }
    this.timer = setTimeout(() => {
      if (!document.hidden) void this.refresh();
    }, POLL_MS);
  }

  private knowWorkflows(names: string[]): void {
    const select = $<HTMLSelectElement>('filter-workflow');
    let added = false;
    for (const n of names) {
      if (this.workflows.has(n)) continue;
      this.workflows.add(n);
      added = true;
    }
    if (!added) return;
    const value = select.value;
    select.replaceChildren(h('option', { value: '' }, 'All workflows'), ...[...this.workflows].sort().map((n) => h('option', { value: n }, n)));
    select.value = value;
  }

  private render(sessions: SessionView[]): void {
    this.sessions = sessions;
    this.knowWorkflows(sessions.map((s) => s.workflow));
    const list = $('list');
    const ids = new Set(sessions.map((s) => s.session_id));
    for (const [id, row] of this.rows) {
      if (ids.has(id)) continue;
      row.el.remove();
      this.rows.delete(id);
    }
    // New rows go in before the first older one; existing rows never move (a moved iframe reloads).
    let next: Row | undefined;
    for (let i = sessions.length - 1; i >= 0; i--) {
      const s = sessions[i]!;
      let row = this.rows.get(s.session_id);
      if (!row) {
        row = this.newRow(s);
        this.rows.set(s.session_id, row);
        list.insertBefore(row.el, next?.el ?? null);
      }
      this.update(row, s);
      next = row;
    }
    $('empty').hidden = sessions.length > 0;
    setText($('page-label'), `Page ${this.page + 1}`);
    ($('page-prev') as HTMLButtonElement).disabled = this.page === 0;
    ($('page-first') as HTMLButtonElement).disabled = this.page === 0;
    ($('page-next') as HTMLButtonElement).disabled = this.nextCursor === null;
    const running = sessions.filter((s) => s.status === 'running').length;
    setText($('summary'), running > 0 ? `${running} running` : '');
    this.thumbnails.sync(sessions.filter((s) => s.status === 'running' && s.visual_enabled).map((s) => ({ id: s.session_id, box: this.rows.get(s.session_id)!.box })));
    this.onRefresh();
  }

  private newRow(s: SessionView): Row {
    const box = h('div', { class: 'thumb-box', 'aria-hidden': 'true' });
    const name = h('button', { class: 'name', type: 'button', onclick: () => this.openDetails(s.session_id) }, s.workflow);
    const sub = h('span', { class: 'sub' });
    const pill = h('span', { class: 'pill' });
    const step = h('span', { class: 'v' });
    const dur = h('span', { class: 'v num' });
    const viewers = h('span', { class: 'v num' });
    const actions = h('div', { class: 'actions' });
    const el = h(
      'li',
      { class: 'run', 'data-id': s.session_id },
      h('div', { class: 'thumb' }, box, h('span', { class: 'thumb-icon', 'aria-hidden': 'true' })),
      h('div', { class: 'who' }, name, sub),
      h('div', { class: 'status' }, pill),
      h('div', { class: 'step' }, h('span', { class: 'k' }, 'Step'), step),
      h('div', { class: 'dur' }, h('span', { class: 'k' }, 'Duration'), dur),
      h('div', { class: 'viewers' }, h('span', { class: 'k' }, 'Viewers'), viewers),
      actions,
    );
    return { el, box, name, sub, pill, step, duration: dur, viewers, actions, shown: '' };
  }

  private update(row: Row, s: SessionView): void {
    row.el.dataset.status = s.status;
    setText(row.name, s.workflow);
    row.name.setAttribute('aria-label', `${s.workflow}, ${s.status}, started ${when(s.created_at)}: details`);
    setText(row.sub, `${when(s.created_at)} · ${s.session_id.slice(0, 8)}`);
    row.pill.className = `pill ${s.status}`;
    setText(row.pill, s.status);
    setText(row.step, stepText(s));
    row.step.title = stepTitle(s);
    setText(row.duration, duration(s.duration_ms));
    setText(row.viewers, String(s.viewers ?? 0));
    const shown = `${s.status}|${s.visual_enabled}`;
    if (row.shown !== shown) {
      row.shown = shown;
      // Focus stays in the row when its buttons change under it (Cancel becomes Delete).
      const focused = [...row.actions.children].indexOf(document.activeElement as HTMLElement);
      row.actions.replaceChildren(...this.actionButtons(s));
      if (focused >= 0) (row.actions.children[Math.min(focused, row.actions.children.length - 1)] as HTMLElement).focus();
    }
  }

  private actionButtons(s: SessionView): HTMLElement[] {
    const id = s.session_id;
    const label = `${s.workflow} (${id.slice(0, 8)})`;
    const buttons: HTMLElement[] = [];
    if (s.visual_enabled) {
      buttons.push(h('button', { class: 'btn small', type: 'button', 'aria-label': `Watch ${label}`, onclick: () => void watch(id) }, ACTIVE.has(s.status) ? 'Watch' : 'Replay'));
    }
    if (ACTIVE.has(s.status)) {
      buttons.push(
        h('button', { class: 'btn small danger-ghost', type: 'button', 'aria-label': `Cancel ${label}`, onclick: async () => (await cancel(id)) && void this.refresh() }, 'Cancel'),
      );
    } else {
      buttons.push(
        h('button', { class: 'btn small danger-ghost', type: 'button', 'aria-label': `Delete ${label}`, onclick: async () => (await remove(id, label)) && void this.refresh() }, 'Delete'),
      );
    }
    buttons.push(h('button', { class: 'btn small ghost', type: 'button', 'aria-label': `Details of ${label}`, onclick: () => this.openDetails(id) }, 'Details'));
    return buttons;
  }
}

function stepText(s: SessionView): string {
  const total = s.steps.length;
  if (s.current_step !== null) {
    const step = s.steps[s.current_step];
    return `${s.current_step + 1}/${total} · ${step?.description ?? step?.type ?? ''}`;
  }
  if (s.status === 'queued') return 'waiting for a slot';
  if (s.failure) return `failed at ${s.failure.step + 1}/${total}`;
  const done = s.steps.filter((x) => x.state === 'succeeded').length;
  return `${done}/${total} done`;
}

function stepTitle(s: SessionView): string {
  if (s.failure) return `Step ${s.failure.step + 1} (${s.failure.type}): ${s.failure.reason ?? 'failed'}`;
  return s.error ?? '';
}
