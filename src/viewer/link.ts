/**
 * What the viewer's link says: the session, its token, and the stream's URL. Kept apart from ui.ts
 * (which looks up the page's elements when loaded) so that early.ts, which runs in the head before
 * the body exists, can use it too.
 */
import { visualPath } from '../protocol/index.js';

export const sessionId = decodeURIComponent(location.pathname.split('/')[3] ?? '');

/** The viewer token of this page's link: every request the viewer makes carries it. */
const token = new URLSearchParams(location.search).get('token');

/** `path` (which may have a query) with this viewer's token added. */
export function withToken(path: string): string {
  return token === null ? path : `${path}${path.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`;
}

/**
 * The session's stream on this page's host; `resume` asks for what followed a seq of an epoch
 * (`page`: the seq is where the page's own start left off, not a reconnect).
 */
export function streamUrl(resume?: { since: number; epoch: string; page?: boolean }): string {
  const params = new URLSearchParams();
  if (resume) {
    params.set('since', String(resume.since));
    params.set('epoch', resume.epoch);
    if (resume.page) params.set('page', '1');
  }
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const query = params.size ? `?${params}` : '';
  return `${proto}//${location.host}${withToken(`${visualPath(sessionId)}${query}`)}`;
}

/** Statuses of a run that has ended: its viewer is a replay, with no stream to open. */
export const ENDED_STATUSES: readonly string[] = ['succeeded', 'failed', 'cancelled', 'interrupted', 'imported'];
