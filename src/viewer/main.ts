/** The viewer: a finished run is replayed with controls; a running one is followed live. */
import { startControl } from './control.js';
import { startEmbed } from './embed.js';
import { liveReplayer, startLive } from './live.js';
import { startReplay } from './replay.js';
import { wireSteps } from './steps.js';
import { ENDED_STATUSES, sessionId, withToken } from './link.js';

async function boot(): Promise<void> {
  // Served with the page (routes/viewer.ts); a page opened some other way asks.
  const served = document.documentElement.dataset.status;
  if (served && served !== 'unknown') {
    if (ENDED_STATUSES.includes(served)) await startReplay();
    else startLive();
    return;
  }
  const res = await fetch(withToken(`/workflows/${encodeURIComponent(sessionId)}`)).catch(() => null);
  const info = res?.ok ? ((await res.json()) as { status: string }) : null;
  if (info && ENDED_STATUSES.includes(info.status)) await startReplay();
  else startLive();
}

startEmbed();
wireSteps();
startControl(liveReplayer);
void boot();
