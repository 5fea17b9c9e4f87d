/**
 * Starting a stored workflow: a form made from its `input_schema` (a field per input, typed, the
 * required ones marked), the run's options, and the API's answer shown where it belongs: each bad
 * input at its field (the error's `fields`), a bad option at the option, the rest above the buttons.
 * A visual run goes straight to its viewer.
 */
import { api, ApiError, type InputSpec, type StoredWorkflow } from './api.js';
import { $, h, toast } from './dom.js';

/** Names the server keeps as `[redacted]` (src/workflow/secrets.ts): typed as passwords here too. */
const SECRET = /pass|secret|token|key|credential|auth/i;
const OPTION_FIELDS = ['visual_quality', 'mask_text_selector', 'block_selector'];

const fieldId = (name: string) => `input-${name.replace(/[^A-Za-z0-9_-]/g, '_')}`;

export class StartForm {
  private readonly dialog = $<HTMLDialogElement>('start-dialog');
  private readonly form = $<HTMLFormElement>('start-form');
  private readonly select = $<HTMLSelectElement>('start-workflow');
  private workflows: StoredWorkflow[] = [];

  constructor(private readonly started: () => void) {
    this.select.addEventListener('change', () => this.renderFields());
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.submit();
    });
    for (const b of this.dialog.querySelectorAll('[data-close]')) b.addEventListener('click', () => this.dialog.close());
  }

  load(workflows: StoredWorkflow[]): void {
    this.workflows = workflows.filter((w) => !w.error);
    this.select.replaceChildren(...this.workflows.map((w) => h('option', { value: w.name }, w.title ? `${w.title} (${w.name})` : w.name)));
    this.renderFields();
  }

  open(): void {
    this.clearErrors();
    if (this.workflows.length === 0) {
      toast('No stored workflows: put workflow JSON files in WORKFLOWS_DIR.', 'error');
      return;
    }
    this.dialog.showModal();
    this.select.focus();
  }

  private get current(): StoredWorkflow | undefined {
    return this.workflows.find((w) => w.name === this.select.value);
  }

  private renderFields(): void {
    const w = this.current;
    $('start-description').textContent = w?.description ?? '';
    const specs = w?.input_schema ?? [];
    $('start-inputs').hidden = specs.length === 0;
    $('start-fields').replaceChildren(...specs.map((spec) => this.field(spec)));
    this.clearErrors();
  }

  private field(spec: InputSpec): HTMLElement {
    const id = fieldId(spec.name);
    const err = h('p', { id: `err-${id}`, class: 'field-error', role: 'alert' });
    const required = spec.required === true;
    if (spec.type === 'bool') {
      return h(
        'div',
        { class: 'field' },
        h('label', { class: 'check' }, h('input', { id, type: 'checkbox', 'data-input': spec.name, 'data-type': 'bool', 'aria-describedby': err.id }), ` ${spec.name}`),
        err,
      );
    }
    const type = spec.type === 'number' ? 'number' : SECRET.test(spec.name) ? 'password' : 'text';
    const input = h('input', {
      id,
      type,
      name: spec.name,
      'data-input': spec.name,
      'data-type': spec.type ?? 'string',
      'aria-required': required ? 'true' : 'false',
      'aria-describedby': err.id,
      autocomplete: type === 'password' ? 'new-password' : 'off',
      spellcheck: 'false',
      ...(type === 'number' ? { step: 'any', inputmode: 'decimal' } : {}),
    });
    return h(
      'div',
      { class: 'field' },
      h('label', { for: id }, spec.name, required ? h('span', { class: 'req', 'aria-hidden': 'true' }, ' *') : h('span', { class: 'muted' }, ' (optional)'), h('span', { class: 'type' }, spec.type ?? 'string')),
      input,
      err,
    );
  }

  private clearErrors(): void {
    for (const p of this.form.querySelectorAll<HTMLElement>('.field-error')) p.textContent = '';
    for (const i of this.form.querySelectorAll('[aria-invalid]')) i.removeAttribute('aria-invalid');
    const general = $('start-error');
    general.hidden = true;
    general.textContent = '';
  }

  /** Each input's value by its type; an empty field is left out (the server says whether it was required). */
  private inputs(): Record<string, string | number | boolean> {
    const values: Record<string, string | number | boolean> = {};
    for (const el of this.form.querySelectorAll<HTMLInputElement>('[data-input]')) {
      const name = el.dataset.input!;
      if (el.dataset.type === 'bool') values[name] = el.checked;
      else if (el.value === '') continue;
      else if (el.dataset.type === 'number') values[name] = Number(el.value);
      else values[name] = el.value;
    }
    return values;
  }

  private async submit(): Promise<void> {
    this.clearErrors();
    const w = this.current;
    if (!w) return;
    const text = (id: string) => $<HTMLInputElement>(id).value.trim();
    const visual = $<HTMLInputElement>('start-visual').checked;
    const body = {
      name: w.name,
      inputs: this.inputs(),
      visual_enabled: visual,
      visual_quality: $<HTMLSelectElement>('start-quality').value,
      mask_all_inputs: $<HTMLInputElement>('start-mask-all').checked,
      ...(text('start-mask-text') ? { mask_text_selector: text('start-mask-text') } : {}),
      ...(text('start-block') ? { block_selector: text('start-block') } : {}),
    };
    const button = $<HTMLButtonElement>('start-submit');
    button.disabled = true;
    button.textContent = 'Starting…';
    try {
      const answer = await api<{ session_id: string; viewer_url: string | null }>('POST', 'workflows/execute', body);
      if (answer.viewer_url) {
        location.assign(answer.viewer_url);
        return;
      }
      this.dialog.close();
      toast(`Started ${w.title ?? w.name}.`);
      this.started();
    } catch (err) {
      this.showError(err);
    } finally {
      button.disabled = false;
      button.textContent = 'Start run';
    }
  }

  private showError(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    const fields = err instanceof ApiError ? { ...err.fields } : {};
    // The options' own problems come as "field: why" in the message (the body's schema names the field).
    for (const part of message.split('; ')) {
      const m = /^([a-z_]+): (.*)$/.exec(part);
      if (m && OPTION_FIELDS.includes(m[1]!)) fields[m[1]!] = m[2]!;
    }
    let first: HTMLElement | null = null;
    const unplaced: string[] = [];
    for (const [name, why] of Object.entries(fields)) {
      const control = this.form.querySelector<HTMLElement>(`[data-input="${CSS.escape(name)}"]`) ?? this.form.querySelector<HTMLElement>(`[name="${CSS.escape(name)}"]`);
      const p = control ? document.getElementById(control.getAttribute('aria-describedby') ?? '') : null;
      if (!control || !p) {
        unplaced.push(`${name}: ${why}`);
        continue;
      }
      p.textContent = why;
      control.setAttribute('aria-invalid', 'true');
      first ??= control;
    }
    if (!first || unplaced.length > 0) {
      const general = $('start-error');
      general.textContent = first ? unplaced.join('; ') : message;
      general.hidden = false;
    }
    (first ?? $('start-submit')).focus();
  }
}
