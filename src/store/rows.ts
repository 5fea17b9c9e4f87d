import { gunzipSync } from 'node:zlib';
import type { ListQuery, SessionDetail, StoredSession } from './recording-store.js';

/** A sessions row as both databases return it (SQLite keeps `visual` as 0/1, PostgreSQL as a boolean). */
export interface SessionRow {
  id: string;
  workflow: string;
  inputs: string;
  status: string;
  error: string | null;
  visual: number | boolean;
  created_at: number;
  started_at: number | null;
  ended_at: number | null;
  steps: string;
  outputs: string;
  event_count: number;
  byte_count: number;
  detail: string | null;
}

export function fromRow(r: SessionRow): StoredSession {
  return {
    id: r.id,
    workflow: r.workflow,
    inputs: JSON.parse(r.inputs) as Record<string, unknown>,
    status: r.status,
    error: r.error,
    visual: r.visual === 1 || r.visual === true,
    createdAt: r.created_at,
    startedAt: r.started_at,
    endedAt: r.ended_at,
    steps: JSON.parse(r.steps) as unknown[],
    outputs: JSON.parse(r.outputs) as Record<string, unknown>,
    eventCount: r.event_count,
    byteCount: r.byte_count,
    ...(r.detail === null ? {} : { detail: JSON.parse(r.detail) as SessionDetail }),
  };
}

/** A session's columns as text, ready to write. */
export function toColumns(s: StoredSession): { inputs: string; steps: string; outputs: string; detail: string | null } {
  return {
    inputs: JSON.stringify(s.inputs),
    steps: JSON.stringify(s.steps),
    outputs: JSON.stringify(s.outputs),
    detail: s.detail === undefined ? null : JSON.stringify(s.detail),
  };
}

/** Why a run found unfinished at open ended, unless it had an error already. */
export const INTERRUPTED_ERROR = 'the server stopped while this run was in progress';

/** An interrupted run's detail: no step is current any more, and its last seq is the last one stored. */
export function interruptedDetail(detail: string | null, storedEvents: number | undefined): string | null {
  if (detail === null) return null;
  const d = JSON.parse(detail) as SessionDetail;
  return JSON.stringify({ ...d, currentStep: null, lastSeq: storedEvents ?? d.lastSeq });
}

/** The list's cursor: the last row's position, opaque to clients. */
export function encodeCursor(createdAt: number, id: string): string {
  return Buffer.from(`${createdAt}|${id}`).toString('base64url');
}

export function decodeCursor(cursor: string): { createdAt: number; id: string } {
  const [created, id] = Buffer.from(cursor, 'base64url').toString().split('|');
  return { createdAt: Number(created), id: id ?? '' };
}

/** One more row than the page is asked for tells whether there is a next page. */
export function page(rows: SessionRow[], q: ListQuery): { sessions: StoredSession[]; nextCursor: string | null } {
  const kept = rows.slice(0, q.limit);
  const last = kept.at(-1);
  return { sessions: kept.map(fromRow), nextCursor: rows.length > q.limit && last ? encodeCursor(last.created_at, last.id) : null };
}

/**
 * How many events (and bytes of their text, as the log counts them) a session's gzipped chunks
 * hold, added in seq order, and the latest timestamp of the last one.
 */
export class StoredExtent {
  events = 0;
  bytes = 0;
  private last = '[]';

  add(firstSeq: number, lastSeq: number, data: Buffer): void {
    const text = gunzipSync(data).toString();
    const n = lastSeq - firstSeq + 1;
    this.events += n;
    // A chunk is `[e1,e2,…]`: its events' own text is all but the brackets and the n - 1 commas.
    this.bytes += text.length - 2 - (n - 1);
    this.last = text;
  }

  /** The latest timestamp among the events of the last chunk added (0 without any). */
  get lastAt(): number {
    let at = 0;
    for (const e of JSON.parse(this.last) as { timestamp?: unknown }[]) if (typeof e.timestamp === 'number' && e.timestamp > at) at = e.timestamp;
    return at;
  }
}

/** Chunks (each the text of a JSON array) as the text of one JSON array, in pieces. */
export async function* joinChunks(chunks: AsyncIterable<string>): AsyncGenerator<string> {
  yield '[';
  let first = true;
  for await (const chunk of chunks) {
    const inner = chunk.slice(1, -1);
    if (!inner) continue;
    yield first ? inner : `,${inner}`;
    first = false;
  }
  yield ']';
}

/** Events of an imported recording are queued in chunks of this many. */
export const IMPORT_CHUNK = 1000;
