/** What an operator can do to one run, from its row or its details. */
import { api, ApiError, sessionPath, type Links } from './api.js';
import { $, toast } from './dom.js';

/** Opens the run's viewer in this tab, with a fresh viewer link (GET /workflows/{id} mints one for the signed-in dashboard). */
export async function watch(id: string): Promise<void> {
  try {
    const links = await api<Links>('GET', sessionPath(id));
    if (!links.viewer_url) return toast('This run was not recorded (visual_enabled was off): there is nothing to watch.', 'error');
    location.assign(links.viewer_url);
  } catch (err) {
    toast(message(err), 'error');
  }
}

export async function cancel(id: string): Promise<boolean> {
  try {
    await api('POST', sessionPath(id, '/cancel'));
    toast('Run cancelled.');
    return true;
  } catch (err) {
    toast(message(err), 'error');
    return false;
  }
}

/** Asks first (a dialog that opens on "Keep it"); true once the run is gone. */
export async function remove(id: string, label: string): Promise<boolean> {
  const dialog = $<HTMLDialogElement>('confirm-dialog');
  $('confirm-text').textContent = `${label}: its recording, screenshots and results are removed for good.`;
  dialog.returnValue = '';
  dialog.showModal();
  const answer = await new Promise<string>((resolve) => dialog.addEventListener('close', () => resolve(dialog.returnValue), { once: true }));
  if (answer !== 'yes') return false;
  try {
    await api('DELETE', sessionPath(id));
    toast('Run deleted.');
    return true;
  } catch (err) {
    toast(message(err), 'error');
    return false;
  }
}

/** A new viewer link to share, valid for `ttlSeconds` (POST /workflows/{id}/links). */
export async function share(id: string, ttlSeconds: number): Promise<{ viewer_url: string; expires_at: string } | null> {
  try {
    return await api<{ viewer_url: string; expires_at: string }>('POST', sessionPath(id, '/links'), { ttl_s: ttlSeconds });
  } catch (err) {
    toast(message(err), 'error');
    return null;
  }
}

export const message = (err: unknown): string => (err instanceof ApiError || err instanceof Error ? err.message : String(err));
