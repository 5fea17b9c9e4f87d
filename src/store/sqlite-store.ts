import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzip } from 'node:zlib';
import { promisify } from 'node:util';
import type { Logger } from '../common/index.js';

const gzipAsync = promisify(gzip);

/** What the store keeps about a session (the event log is kept apart, in chunks). */
export interface StoredSession {
  id: string;
  workflow: string;
  inputs: Record<string, unknown>;
  status: string;
  error: string | null;
  visual: boolean;
  createdAt: number;
  startedAt: number | null;
  endedAt: number | null;
  steps: unknown[];
  outputs: Record<string, unknown>;
  eventCount: number;
  byteCount: number;
}

export interface ListQuery {
  status?: string | undefined;
  limit: number;
  cursor?: string | undefined;
}

interface Pending {
  from: number;
  events: string[];
  bytes: number;
}

interface SessionRow {
  id: string;
  workflow: string;
  inputs: string;
  status: string;
  error: string | null;
  visual: number;
  created_at: number;
  started_at: number | null;
  ended_at: number | null;
  steps: string;
  outputs: string;
  event_count: number;
  byte_count: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS sessions (
  id TEXT PRIMARY KEY,
  workflow TEXT NOT NULL,
  inputs TEXT NOT NULL,
  status TEXT NOT NULL,
  error TEXT,
  visual INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  started_at INTEGER,
  ended_at INTEGER,
  steps TEXT NOT NULL,
  outputs TEXT NOT NULL,
  event_count INTEGER NOT NULL DEFAULT 0,
  byte_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS sessions_created ON sessions (created_at DESC, id DESC);
CREATE TABLE IF NOT EXISTS chunks (
  session_id TEXT NOT NULL,
  first_seq INTEGER NOT NULL,
  last_seq INTEGER NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (session_id, first_seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS screenshots (
  session_id TEXT NOT NULL,
  step INTEGER NOT NULL,
  png BLOB NOT NULL,
  PRIMARY KEY (session_id, step)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS assets (
  hash TEXT PRIMARY KEY,
  content_type TEXT NOT NULL,
  size INTEGER NOT NULL,
  body BLOB NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS session_assets (
  session_id TEXT NOT NULL,
  url TEXT NOT NULL,
  hash TEXT NOT NULL,
  captured_at INTEGER NOT NULL,
  PRIMARY KEY (session_id, url)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS session_assets_hash ON session_assets (hash, session_id);
`;

/** Recordings hold whatever the recorded pages showed: only the server's own user may read them. */
const STORE_FILE_MODE = 0o600;

/**
 * Creates the database file owner-only before SQLite opens it, and tightens one (and its WAL and
 * shared-memory files) left by an older version. SQLite creates `-wal` and `-shm` later, on its
 * own, with the database file's mode (it fchmods them to it whatever the umask), so they follow.
 */
function ownerOnly(file: string): void {
  closeSync(openSync(file, 'a', STORE_FILE_MODE));
  for (const f of [file, `${file}-wal`, `${file}-shm`]) if (existsSync(f)) chmodSync(f, STORE_FILE_MODE);
}

function toStored(r: SessionRow): StoredSession {
  return {
    id: r.id,
    workflow: r.workflow,
    inputs: JSON.parse(r.inputs) as Record<string, unknown>,
    status: r.status,
    error: r.error,
    visual: r.visual === 1,
    createdAt: r.created_at,
    startedAt: r.started_at,
    endedAt: r.ended_at,
    steps: JSON.parse(r.steps) as unknown[],
    outputs: JSON.parse(r.outputs) as Record<string, unknown>,
    eventCount: r.event_count,
    byteCount: r.byte_count,
  };
}

/**
 * Recordings on disk: SQLite in WAL mode, the event log in gzip chunks keyed by session and seq.
 * Writes are behind the hot path: events wait in a bounded in-memory queue and are written by a
 * timer every `flushMs` (so a crash loses at most that much), compressed off the event loop.
 */
export class SqliteStore {
  private readonly db: Database.Database;
  private readonly pending = new Map<string, Pending>();
  private readonly dirty = new Map<string, StoredSession>();
  private readonly shots: { id: string; step: number; png: Buffer }[] = [];
  private pendingBytes = 0;
  private flushing: Promise<void> | null = null;
  private readonly timer: NodeJS.Timeout | undefined;
  readonly file: string;
  /** Sessions found unfinished at open: a previous process died while they ran. */
  readonly interrupted: number;
  eventsWritten = 0;

  constructor(
    dir: string,
    private readonly log: Logger,
    private readonly options: { flushMs?: number; maxPendingBytes?: number; readOnly?: boolean } = {},
  ) {
    this.file = join(dir, 'domcast.db');
    if (options.readOnly) {
      // Beside a running server (e.g. `domcast export`): read, never mark its runs interrupted.
      this.db = new Database(this.file, { readonly: true, fileMustExist: true });
      this.interrupted = 0;
      this.timer = undefined;
      return;
    }
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    ownerOnly(this.file);
    this.db = new Database(this.file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(SCHEMA);
    this.interrupted = this.markInterrupted();
    this.timer = setInterval(() => void this.flush(), options.flushMs ?? 250);
    this.timer.unref();
  }

  /**
   * Runs a previous process left queued or running died with it: they become `interrupted`. Their
   * counts were last saved at a status change, so they are taken from the chunks that reached the
   * disk, and they ended at their last stored event (not now, at the restart); a run without
   * events, at its start.
   */
  private markInterrupted(): number {
    const unfinished = this.db.prepare(`SELECT id, created_at, started_at FROM sessions WHERE status IN ('queued', 'running')`).all() as Pick<SessionRow, 'id' | 'created_at' | 'started_at'>[];
    const mark = this.db.prepare(`UPDATE sessions SET status = 'interrupted', error = coalesce(error, 'the server stopped while this run was in progress'),
      ended_at = ?, event_count = coalesce(?, event_count), byte_count = coalesce(?, byte_count) WHERE id = ?`);
    this.db.transaction(() => {
      for (const run of unfinished) {
        const since = run.started_at ?? run.created_at;
        const stored = this.storedExtent(run.id);
        mark.run(Math.max(since, stored?.lastAt ?? since), stored?.events ?? null, stored?.bytes ?? null, run.id);
      }
    })();
    return unfinished.length;
  }

  /** How many events (and bytes of their text, as the log counts them) a session has on disk, and the latest timestamp of its last chunk. */
  private storedExtent(id: string): { events: number; bytes: number; lastAt: number } | null {
    const chunks = this.db.prepare('SELECT first_seq, last_seq, data FROM chunks WHERE session_id = ? ORDER BY first_seq').iterate(id) as Iterable<{ first_seq: number; last_seq: number; data: Buffer }>;
    try {
      let events = 0;
      let bytes = 0;
      let last = '[]';
      for (const c of chunks) {
        const text = gunzipSync(c.data).toString();
        const n = c.last_seq - c.first_seq + 1;
        events += n;
        // A chunk is `[e1,e2,…]`: its events' own text is all but the brackets and the n - 1 commas.
        bytes += text.length - 2 - (n - 1);
        last = text;
      }
      let lastAt = 0;
      for (const e of JSON.parse(last) as { timestamp?: unknown }[]) if (typeof e.timestamp === 'number' && e.timestamp > lastAt) lastAt = e.timestamp;
      return { events, bytes, lastAt };
    } catch (err) {
      // An unreadable chunk must not stop the server from starting: the run keeps its last saved counts.
      this.log.error({ err, session: id }, 'could not read the stored events of an interrupted run');
      return null;
    }
  }

  /** Queues events for writing; returns at once. */
  append(sessionId: string, from: number, events: readonly string[]): void {
    let p = this.pending.get(sessionId);
    if (!p || p.from + p.events.length !== from) {
      if (p) void this.flush(); // a gap would break the chunk's seq range: write what we have first
      p = { from, events: [], bytes: 0 };
      this.pending.set(sessionId, p);
    }
    for (const e of events) {
      p.events.push(e);
      p.bytes += e.length;
      this.pendingBytes += e.length;
    }
    // The queue is bounded: past the bound, write now rather than hold more.
    if (this.pendingBytes > (this.options.maxPendingBytes ?? 32 * 1024 * 1024)) void this.flush();
  }

  /** Queues a metadata update (the newest wins). */
  saveSession(session: StoredSession): void {
    this.dirty.set(session.id, session);
  }

  /** Queues a step's PNG (a screenshot step, or the page when the step failed). */
  saveScreenshot(sessionId: string, step: number, png: Buffer): void {
    this.shots.push({ id: sessionId, step, png });
  }

  screenshot(sessionId: string, step: number): Buffer | undefined {
    const row = this.db.prepare('SELECT png FROM screenshots WHERE session_id = ? AND step = ?').get(sessionId, step) as { png: Buffer } | undefined;
    return row?.png;
  }

  /**
   * Keeps a body the run's browser received for `url`: once, whatever the number of URLs and
   * sessions it came from (content-addressed by SHA-256), and the session's URL now stands for it.
   * Written at once, not behind a queue: a viewer may ask for it a moment later. A body the URL
   * stood for before, that no session uses any more, is deleted.
   */
  putAsset(sessionId: string, url: string, contentType: string, body: Buffer): { hash: string; isNew: boolean } {
    const hash = createHash('sha256').update(body).digest('hex');
    const now = Date.now();
    return this.db.transaction(() => {
      const isNew = this.db.prepare('SELECT 1 FROM assets WHERE hash = ?').get(hash) === undefined;
      if (isNew) this.db.prepare('INSERT INTO assets (hash, content_type, size, body, created_at) VALUES (?, ?, ?, ?, ?)').run(hash, contentType, body.length, body, now);
      const before = this.assetHash(sessionId, url);
      this.db
        .prepare(`INSERT INTO session_assets (session_id, url, hash, captured_at) VALUES (?, ?, ?, ?)
          ON CONFLICT (session_id, url) DO UPDATE SET hash = excluded.hash, captured_at = excluded.captured_at`)
        .run(sessionId, url, hash, now);
      if (before !== undefined && before !== hash) this.deleteUnusedAssets([before]);
      return { hash, isNew };
    })();
  }

  /** The hash of the body a session's URL stands for, if it was captured. */
  assetHash(sessionId: string, url: string): string | undefined {
    const row = this.db.prepare('SELECT hash FROM session_assets WHERE session_id = ? AND url = ?').get(sessionId, url) as { hash: string } | undefined;
    return row?.hash;
  }

  /**
   * A body, only to a session that captured it: one stored once for several sessions is not
   * served to a session that did not, so a hash seen elsewhere opens nothing.
   */
  assetBody(sessionId: string, hash: string): { contentType: string; body: Buffer } | undefined {
    const row = this.db
      .prepare(`SELECT content_type, body FROM assets WHERE hash = ?
        AND EXISTS (SELECT 1 FROM session_assets WHERE hash = assets.hash AND session_id = ?)`)
      .get(hash, sessionId) as { content_type: string; body: Buffer } | undefined;
    return row && { contentType: row.content_type, body: row.body };
  }

  /** A session's captured URLs and the bytes of their bodies (a body shared with other sessions counts for each). */
  sessionAssetStats(sessionId: string): { count: number; bytes: number } {
    return this.db
      .prepare(`SELECT count(*) AS count, coalesce(sum(assets.size), 0) AS bytes
        FROM session_assets JOIN assets ON assets.hash = session_assets.hash WHERE session_assets.session_id = ?`)
      .get(sessionId) as { count: number; bytes: number };
  }

  /** Forgets a session's captured URLs and deletes the bodies no other session uses. */
  private deleteSessionAssets(sessionId: string): void {
    const hashes = (this.db.prepare('SELECT DISTINCT hash FROM session_assets WHERE session_id = ?').all(sessionId) as { hash: string }[]).map((r) => r.hash);
    this.db.prepare('DELETE FROM session_assets WHERE session_id = ?').run(sessionId);
    this.deleteUnusedAssets(hashes);
  }

  private deleteUnusedAssets(hashes: readonly string[]): void {
    const drop = this.db.prepare('DELETE FROM assets WHERE hash = ? AND NOT EXISTS (SELECT 1 FROM session_assets WHERE hash = ?)');
    for (const hash of hashes) drop.run(hash, hash);
  }

  /**
   * Captured assets of sessions the store has no record of and `isKnown` does not know either:
   * runs not kept (DOMCAST_RECORDINGS=false) once the server forgets them, and runs of a previous
   * process that died before their record was written.
   */
  private sweepAssets(isKnown: (id: string) => boolean): number {
    const ids = this.db.prepare('SELECT DISTINCT session_id AS id FROM session_assets WHERE session_id NOT IN (SELECT id FROM sessions)').all() as { id: string }[];
    const gone = ids.filter((r) => !isKnown(r.id));
    if (gone.length) this.db.transaction(() => gone.forEach((r) => this.deleteSessionAssets(r.id)))();
    return gone.length;
  }

  /** Writes everything queued so far; concurrent callers share one write. */
  flush(): Promise<void> {
    if (this.flushing) return this.flushing.then(() => this.flush());
    if (this.pending.size === 0 && this.dirty.size === 0 && this.shots.length === 0) return Promise.resolve();
    const batches = [...this.pending.entries()];
    const metas = [...this.dirty.values()];
    const shots = this.shots.splice(0);
    this.pending.clear();
    this.dirty.clear();
    this.pendingBytes = 0;
    this.flushing = this.write(batches, metas, shots)
      .catch((err: unknown) => this.log.error({ err }, 'store write failed'))
      .finally(() => {
        this.flushing = null;
      });
    return this.flushing;
  }

  private async write(batches: [string, Pending][], metas: StoredSession[], shots: { id: string; step: number; png: Buffer }[]): Promise<void> {
    const chunks = await Promise.all(
      batches.map(async ([id, p]) => ({ id, p, data: await gzipAsync(Buffer.from(`[${p.events.join(',')}]`)) })),
    );
    const insertChunk = this.db.prepare('INSERT OR REPLACE INTO chunks (session_id, first_seq, last_seq, data) VALUES (?, ?, ?, ?)');
    const upsert = this.db.prepare(`INSERT INTO sessions (id, workflow, inputs, status, error, visual, created_at, started_at, ended_at, steps, outputs, event_count, byte_count)
      VALUES (@id, @workflow, @inputs, @status, @error, @visual, @createdAt, @startedAt, @endedAt, @steps, @outputs, @eventCount, @byteCount)
      ON CONFLICT (id) DO UPDATE SET status = excluded.status, error = excluded.error, started_at = excluded.started_at, ended_at = excluded.ended_at,
        steps = excluded.steps, outputs = excluded.outputs, event_count = excluded.event_count, byte_count = excluded.byte_count`);
    this.db.transaction(() => {
      for (const m of metas) {
        upsert.run({
          ...m,
          inputs: JSON.stringify(m.inputs),
          visual: m.visual ? 1 : 0,
          steps: JSON.stringify(m.steps),
          outputs: JSON.stringify(m.outputs),
        });
      }
      for (const c of chunks) insertChunk.run(c.id, c.p.from, c.p.from + c.p.events.length - 1, c.data);
      const insertShot = this.db.prepare('INSERT OR REPLACE INTO screenshots (session_id, step, png) VALUES (?, ?, ?)');
      for (const shot of shots) insertShot.run(shot.id, shot.step, shot.png);
    })();
    this.eventsWritten += chunks.reduce((n, c) => n + c.p.events.length, 0);
  }

  /** Stores a whole recording at once (`domcast replay` of a file). */
  importRecording(session: StoredSession, events: readonly string[]): void {
    const CHUNK = 1000;
    this.saveSession(session);
    for (let i = 0; i < events.length; i += CHUNK) this.append(session.id, i + 1, events.slice(i, i + CHUNK));
  }

  get(id: string): StoredSession | undefined {
    const row = this.db.prepare('SELECT * FROM sessions WHERE id = ?').get(id) as SessionRow | undefined;
    return row && toStored(row);
  }

  /** Newest first; the cursor is opaque (the last row's position). */
  list(q: ListQuery): { sessions: StoredSession[]; nextCursor: string | null } {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (q.status) {
      where.push('status = ?');
      args.push(q.status);
    }
    if (q.cursor) {
      const [created, id] = Buffer.from(q.cursor, 'base64url').toString().split('|');
      where.push('(created_at < ? OR (created_at = ? AND id < ?))');
      args.push(Number(created), Number(created), id ?? '');
    }
    const rows = this.db
      .prepare(`SELECT * FROM sessions ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id DESC LIMIT ?`)
      .all(...args, q.limit + 1) as SessionRow[];
    const page = rows.slice(0, q.limit);
    const last = page.at(-1);
    const nextCursor = rows.length > q.limit && last ? Buffer.from(`${last.created_at}|${last.id}`).toString('base64url') : null;
    return { sessions: page.map(toStored), nextCursor };
  }

  /** The recorded events of a session, chunk by chunk, each as JSON text of an array. */
  *eventChunks(id: string): Generator<string> {
    const rows = this.db.prepare('SELECT data FROM chunks WHERE session_id = ? ORDER BY first_seq').iterate(id) as Iterable<{ data: Buffer }>;
    for (const row of rows) yield gunzipSync(row.data).toString();
  }

  /** The whole recording as the text of one JSON array of rrweb events, in pieces (for streaming). */
  *eventsJson(id: string): Generator<string> {
    yield '[';
    let first = true;
    for (const chunk of this.eventChunks(id)) {
      const inner = chunk.slice(1, -1);
      if (!inner) continue;
      yield first ? inner : `,${inner}`;
      first = false;
    }
    yield ']';
  }

  delete(id: string): boolean {
    return this.db.transaction(() => {
      this.db.prepare('DELETE FROM chunks WHERE session_id = ?').run(id);
      this.db.prepare('DELETE FROM screenshots WHERE session_id = ?').run(id);
      this.deleteSessionAssets(id);
      return this.db.prepare('DELETE FROM sessions WHERE id = ?').run(id).changes > 0;
    })();
  }

  /** Bytes the database takes (pages in use). */
  sizeBytes(): number {
    const pages = this.db.pragma('page_count', { simple: true }) as number;
    const free = this.db.pragma('freelist_count', { simple: true }) as number;
    const size = this.db.pragma('page_size', { simple: true }) as number;
    return (pages - free) * size;
  }

  /**
   * Removes finished sessions, oldest first: those ended more than `maxAgeMs` ago, then more
   * until the store (captured assets included) is under `maxBytes`. Sessions still running are
   * never removed. First, captured assets of sessions neither on record nor `isKnown` (by default
   * `isLive`) are deleted.
   */
  prune(options: { maxAgeMs?: number | undefined; maxBytes?: number | undefined; isLive: (id: string) => boolean; isKnown?: (id: string) => boolean }): string[] {
    const swept = this.sweepAssets(options.isKnown ?? options.isLive);
    const removed: string[] = [];
    const oldest = this.db.prepare(
      `SELECT id, ended_at FROM sessions WHERE status NOT IN ('queued', 'running') ORDER BY coalesce(ended_at, created_at) ASC, id ASC`,
    );
    for (const row of oldest.all() as { id: string; ended_at: number | null }[]) {
      if (options.isLive(row.id)) continue;
      const tooOld = options.maxAgeMs !== undefined && row.ended_at !== null && Date.now() - row.ended_at > options.maxAgeMs;
      const tooBig = options.maxBytes !== undefined && this.sizeBytes() > options.maxBytes;
      if (!tooOld && !tooBig) break;
      this.delete(row.id);
      removed.push(row.id);
    }
    if (removed.length || swept) this.db.pragma('wal_checkpoint(TRUNCATE)');
    return removed;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
    this.db.close();
  }
}
