/**
 * The viewer's first script, loaded in the page's head: for a run that is still going it opens the
 * stream at once, while the browser is still fetching and compiling viewer.js (about 280 kB, the
 * larger part of a late joiner's wait, issue 15). Frames that arrive before viewer.js runs are kept
 * in order; live.ts takes the socket and them over (takeEarlySocket) on its first connect.
 */
import { ENDED_STATUSES, streamUrl } from './link.js';

export interface EarlySocket {
  ws: WebSocket;
  /** Messages received before live.ts took the socket, in order. */
  frames: MessageEvent[];
  /** Set when the socket closed before live.ts took it. */
  closed: CloseEvent | null;
}

declare global {
  interface Window {
    __domcastEarlySocket?: EarlySocket;
  }
}

const status = document.documentElement.dataset.status;
// Served as `unknown` only when the page was not served by our route (it then asks, in main.ts).
if (status && status !== 'unknown' && !ENDED_STATUSES.includes(status) && typeof WebSocket === 'function') {
  try {
    const ws = new WebSocket(streamUrl());
    const early: EarlySocket = { ws, frames: [], closed: null };
    ws.onmessage = (m) => early.frames.push(m);
    ws.onclose = (e) => (early.closed = e);
    window.__domcastEarlySocket = early;
  } catch {
    // live.ts opens its own.
  }
}
