/**
 * The viewer's first script, loaded in the page's head: for a run that is still going it opens the
 * stream at once, while the browser is still fetching and compiling viewer.js (about 280 kB, the
 * larger part of a late joiner's wait, issue 15). Frames that arrive before viewer.js runs are kept
 * in order; live.ts takes the socket and them over (takeEarlySocket) on its first connect.
 *
 * The page may carry the stream's start itself (`#domcast-start`: hello and the reset, JSON, from
 * routes/viewer.ts): then those are the first frames, and the socket asks only for what followed
 * them (`since`, `epoch`, and `page=1` so that the server does not count it as a reconnect).
 */
import type { HelloFrame, ServerFrame } from '../protocol/index.js';
import { ENDED_STATUSES, streamUrl } from './link.js';

export interface EarlySocket {
  ws: WebSocket;
  /** The frames the page carried, then messages received before live.ts took the socket, in order. */
  frames: (MessageEvent | ServerFrame)[];
  /** Set when the socket closed before live.ts took it. */
  closed: CloseEvent | null;
}

declare global {
  interface Window {
    __domcastEarlySocket?: EarlySocket;
  }
}

/** The frames the page carried, with the seq and epoch they reach; none when it carried none (or they do not read). */
export function pageStart(): { frames: ServerFrame[]; since: number; epoch: string } | null {
  try {
    const text = document.getElementById('domcast-start')?.textContent;
    if (!text) return null;
    const frames = JSON.parse(text) as ServerFrame[];
    const hello = frames[0] as HelloFrame | undefined;
    let since = 0;
    for (const f of frames) if (f.t === 'reset' || f.t === 'events') since = f.from + f.events.length - 1;
    if (hello?.t !== 'hello' || typeof hello.epoch !== 'string' || since < 1) return null;
    return { frames, since, epoch: hello.epoch };
  } catch {
    return null;
  }
}

const status = document.documentElement.dataset.status;
// Served as `unknown` only when the page was not served by our route (it then asks, in main.ts).
if (status && status !== 'unknown' && !ENDED_STATUSES.includes(status) && typeof WebSocket === 'function') {
  try {
    const start = pageStart();
    const ws = new WebSocket(streamUrl(start ? { since: start.since, epoch: start.epoch, page: true } : undefined));
    const early: EarlySocket = { ws, frames: start?.frames ?? [], closed: null };
    ws.onmessage = (m) => early.frames.push(m);
    ws.onclose = (e) => (early.closed = e);
    window.__domcastEarlySocket = early;
  } catch {
    // live.ts opens its own.
  }
}
