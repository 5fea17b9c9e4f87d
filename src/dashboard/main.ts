/**
 * The operator dashboard (GET /): sign in with the API key (once, for a cookie), then the runs,
 * live, with what can be done to each, and a form to start a stored workflow. See
 * src/server/routes/dashboard.ts for the server's side.
 */
import { api, ApiError, whenUnauthorized, type StoredWorkflow } from './api.js';
import { Details } from './details.js';
import { $ } from './dom.js';
import { RunList } from './list.js';
import { StartForm } from './start.js';

type View = 'loading' | 'signin' | 'runs';

function show(view: View): void {
  for (const v of ['loading', 'signin', 'runs'] as const) $(v).hidden = v !== view;
  $('nav').hidden = view !== 'runs';
  document.documentElement.dataset.view = view;
}

const details = new Details(
  (id) => list.sessions.find((s) => s.session_id === id),
  () => void list.refresh(),
);
const list = new RunList((id) => details.open(id));
list.onRefresh = () => details.follow();
const start = new StartForm(() => void list.refresh());

async function enter(): Promise<void> {
  show('runs');
  list.start();
  try {
    const { workflows } = await api<{ workflows: StoredWorkflow[] }>('GET', 'workflows');
    start.load(workflows);
    list.addWorkflows(workflows);
  } catch {
    // The list still works; the form says there is nothing to start.
  }
}

function signIn(reason = ''): void {
  list.stop();
  for (const d of document.querySelectorAll('dialog')) if (d.open) d.close();
  show('signin');
  $('signin-error').textContent = reason;
  $('signin-key').focus();
}

whenUnauthorized(() => signIn('Your sign-in has expired: sign in again.'));

$('signin-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const input = $<HTMLInputElement>('signin-key');
  const error = $('signin-error');
  error.textContent = '';
  input.removeAttribute('aria-invalid');
  if (!input.value) {
    error.textContent = 'Enter the API key.';
    input.setAttribute('aria-invalid', 'true');
    input.focus();
    return;
  }
  try {
    await api('POST', 'dashboard/session', { key: input.value });
    input.value = '';
    void enter();
  } catch (err) {
    error.textContent = err instanceof ApiError && err.status === 401 ? 'That is not the API key of this server.' : err instanceof Error ? err.message : String(err);
    input.setAttribute('aria-invalid', 'true');
    input.select();
  }
});

$('signout').addEventListener('click', async () => {
  await api('DELETE', 'dashboard/session').catch(() => undefined);
  signIn('');
});

$('start-open').addEventListener('click', () => start.open());
for (const d of document.querySelectorAll('#detail-dialog [data-close]')) d.addEventListener('click', () => $<HTMLDialogElement>('detail-dialog').close());

void (async () => {
  try {
    const state = await api<{ key_required: boolean; signed_in: boolean }>('GET', 'dashboard/session');
    $('signout').hidden = !state.key_required;
    $('open-mode').hidden = state.key_required;
    if (state.signed_in) await enter();
    else signIn();
  } catch (err) {
    show('signin');
    $('signin-error').textContent = `The server did not answer: ${err instanceof Error ? err.message : String(err)}`;
  }
})();
