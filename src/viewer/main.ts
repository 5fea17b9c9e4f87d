/** The viewer: a finished run is replayed with controls; a running one is followed live. */
import { startLive } from './live.js';
import { startReplay } from './replay.js';
import { sessionId, withToken } from './ui.js';

const ENDED = ['succeeded', 'failed', 'cancelled', 'interrupted', 'imported'];

async function boot(): Promise<void> {
  const res = await fetch(withToken(`/workflows/${encodeURIComponent(sessionId)}`)).catch(() => null);
  const info = res?.ok ? ((await res.json()) as { status: string }) : null;
  if (info && ENDED.includes(info.status)) await startReplay();
  else startLive();
}

void boot();
