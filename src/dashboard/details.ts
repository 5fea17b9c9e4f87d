/**
 * One run in a dialog: its status and steps (following the live list), the failure with its
 * screenshot, and what can be done: watch, cancel, delete, download the recording, share a link.
 */
import { sessionPath, type SessionView } from './api.js';
import { cancel, remove, share, watch } from './actions.js';
import { $, h, setText, toast } from './dom.js';
import { ACTIVE, duration, when } from './format.js';

const LIFETIMES: [number, string][] = [
  [15 * 60, '15 minutes'],
  [3600, '1 hour'],
  [24 * 3600, '1 day'],
  [7 * 24 * 3600, '7 days'],
];

export class Details {
  private readonly dialog = $<HTMLDialogElement>('detail-dialog');
  private id: string | null = null;
  /** What was last drawn (status, steps, failure): redrawn only when it changes. */
  private drawn = '';

  constructor(
    private readonly find: (id: string) => SessionView | undefined,
    private readonly changed: () => void,
  ) {
    this.dialog.addEventListener('close', () => {
      this.id = null;
      this.drawn = '';
    });
  }

  open(id: string): void {
    this.id = id;
    this.drawn = '';
    this.follow();
    if (!this.dialog.open) this.dialog.showModal();
  }

  /** After each refresh of the list: the run as it is now. */
  follow(): void {
    if (this.id === null) return;
    // A run that left the page (a filter, paging) stays shown as it was last seen; Delete closes the dialog itself.
    const s = this.find(this.id);
    if (!s) return;
    setText($('detail-title'), s.workflow);
    const key = JSON.stringify([s.status, s.steps.map((x) => x.state), s.failure, s.error]);
    if (key === this.drawn) {
      const d = this.dialog.querySelector('[data-duration]');
      if (d) setText(d, duration(s.duration_ms));
      return;
    }
    // Keep the share box (a link being copied) across redraws.
    const shareBox = this.drawn === '' ? this.shareBox(s) : (this.dialog.querySelector('.share') as HTMLElement | null);
    this.drawn = key;
    $('detail-body').replaceChildren(this.summary(s), this.actions(s), ...(shareBox && s.visual_enabled ? [shareBox] : []), this.failure(s), this.steps(s));
  }

  private summary(s: SessionView): HTMLElement {
    const item = (k: string, v: Node | string) => h('div', {}, h('dt', {}, k), h('dd', {}, v));
    const inputs = Object.entries(s.inputs);
    return h(
      'dl',
      { class: 'facts' },
      item('Status', h('span', { class: `pill ${s.status}` }, s.status)),
      item('Started', when(s.created_at)),
      item('Duration', h('span', { 'data-duration': '' }, duration(s.duration_ms))),
      item('Viewers', String(s.viewers ?? 0)),
      h('div', { class: 'span2' }, h('dt', {}, 'Run id'), h('dd', {}, h('code', { class: 'id' }, s.session_id))),
      inputs.length > 0 ? item('Inputs', h('span', { class: 'inputs' }, inputs.map(([k, v]) => `${k}=${String(v)}`).join(', '))) : null,
    );
  }

  private actions(s: SessionView): HTMLElement {
    const id = s.session_id;
    const label = `${s.workflow} (${id.slice(0, 8)})`;
    const bar = h('div', { class: 'detail-actions' });
    if (s.visual_enabled) bar.append(h('button', { class: 'btn primary', type: 'button', onclick: () => void watch(id) }, ACTIVE.has(s.status) ? 'Watch live' : 'Replay'));
    if (ACTIVE.has(s.status)) {
      bar.append(h('button', { class: 'btn danger-ghost', type: 'button', onclick: async () => (await cancel(id)) && this.changed() }, 'Cancel run'));
    } else {
      if (s.visual_enabled) bar.append(h('a', { class: 'btn ghost', href: sessionPath(id, '/events'), download: `domcast-${id}.json` }, 'Download recording'));
      bar.append(
        h(
          'button',
          {
            class: 'btn danger-ghost',
            type: 'button',
            onclick: async () => {
              if (!(await remove(id, label))) return;
              this.dialog.close();
              this.changed();
            },
          },
          'Delete',
        ),
      );
    }
    return bar;
  }

  private shareBox(s: SessionView): HTMLElement {
    const select = h('select', { id: 'share-ttl' }, ...LIFETIMES.map(([v, t]) => h('option', { value: v, ...(v === 3600 ? { selected: true } : {}) }, t)));
    const out = h('input', { id: 'share-link', type: 'text', readonly: true, 'aria-label': 'Viewer link to share', hidden: true });
    const note = h('p', { class: 'muted small', 'aria-live': 'polite' });
    const copy = h('button', { class: 'btn small ghost', type: 'button', hidden: true, onclick: () => void navigator.clipboard.writeText(out.value).then(() => toast('Link copied.'), () => out.select()) }, 'Copy');
    const create = h(
      'button',
      {
        class: 'btn small',
        type: 'button',
        onclick: async () => {
          const link = await share(s.session_id, Number(select.value));
          if (!link) return;
          out.value = link.viewer_url;
          out.hidden = false;
          copy.hidden = false;
          note.textContent = `Works until ${new Date(link.expires_at).toLocaleString()}: whoever has it can watch this run and download its recording.`;
          out.focus();
          out.select();
        },
      },
      'Create link',
    );
    return h(
      'section',
      { class: 'share', 'aria-label': 'Share' },
      h('h3', {}, 'Share a viewer link'),
      h('div', { class: 'share-row' }, h('label', { for: 'share-ttl' }, 'Valid for'), select, create),
      h('div', { class: 'share-row' }, out, copy),
      note,
    );
  }

  private failure(s: SessionView): HTMLElement | string {
    if (!s.failure && !s.error) return '';
    const f = s.failure;
    return h(
      'section',
      { class: 'failure', 'aria-label': 'Failure' },
      h('h3', {}, f ? `Step ${f.step + 1} failed` : 'Error'),
      h('p', { class: 'reason' }, s.error ?? f?.reason ?? ''),
      f?.screenshot_url
        ? h('a', { href: sessionPath(s.session_id, '/screenshot'), target: '_blank', rel: 'noopener' }, h('img', { class: 'shot', src: sessionPath(s.session_id, '/screenshot'), alt: `The page when step ${f.step + 1} failed` }))
        : null,
    );
  }

  private steps(s: SessionView): HTMLElement {
    return h(
      'section',
      { 'aria-label': 'Steps' },
      h('h3', {}, `Steps (${s.steps.length})`),
      h(
        'ol',
        { class: 'steps' },
        ...s.steps.map((x) =>
          h(
            'li',
            { class: x.state },
            h('span', { class: 'ic', 'aria-hidden': 'true' }),
            h('span', { class: 'd' }, x.description ?? x.type, x.error ? h('small', {}, x.error) : null),
            h('span', { class: 'st' }, x.state === 'pending' ? '' : x.durationMs !== undefined ? `${(x.durationMs / 1000).toFixed(1)}s` : x.state),
          ),
        ),
      ),
    );
  }
}
