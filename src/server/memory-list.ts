import type { Session, SessionRegistry } from '../session/index.js';
import type { ListQuery } from '../store/index.js';

/**
 * The runs still in memory, filtered and paged as the store pages its own (newest first, the same
 * cursor): what GET /workflows/sessions lists when nothing is stored (DOMCAST_RECORDINGS=false).
 */
export function listInMemory(registry: SessionRegistry, q: ListQuery): { sessions: Session[]; nextCursor: string | null } {
  let after: { created: number; id: string } | null = null;
  if (q.cursor) {
    const [created, id] = Buffer.from(q.cursor, 'base64url').toString().split('|');
    after = { created: Number(created), id: id ?? '' };
  }
  const all = [...registry.all()]
    .filter((s) => (!q.status || s.status === q.status) && (!q.workflow || s.workflowName === q.workflow))
    .filter((s) => !after || s.createdAt < after.created || (s.createdAt === after.created && s.id < after.id))
    .sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  const page = all.slice(0, q.limit);
  const last = page.at(-1);
  const nextCursor = all.length > q.limit && last ? Buffer.from(`${last.createdAt}|${last.id}`).toString('base64url') : null;
  return { sessions: page, nextCursor };
}
