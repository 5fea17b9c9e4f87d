import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { Logger } from '../common/index.js';
import { checkNotNewer } from './migrations.js';
import type { ListQuery, PruneOptions, RecordingStore, StoredSession } from './recording-store.js';
import { IMPORT_CHUNK, INTERRUPTED_ERROR, StoredExtent, decodeCursor, fromRow, interruptedDetail, joinChunks, page, toColumns, type SessionRow } from './rows.js';
import { SQLITE_MIGRATIONS } from './sqlite-migrations.js';
import { WriteQueue, type WriteBatch } from './write-queue.js';

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

/**
 * Recordings on disk, the default store: SQLite in WAL mode, the event log in gzip chunks keyed by
 * session and seq, written behind the hot path (WriteQueue). better-sqlite3 is synchronous: the
 * database is opened and migrated in the constructor, and the Promises it returns are settled.
 */
export class SqliteStore implements RecordingStore {
  private readonly db: Database.Database;
  private readonly queue: WriteQueue;
  readonly file: string;
  readonly location: string;
  /** Sessions found unfinished at open: a previous process died while they ran. */
  readonly interrupted: number;

  constructor(
    dir: string,
    private readonly log: Logger,
    options: { flushMs?: number; maxPendingBytes?: number; readOnly?: boolean } = {},
  ) {
    this.file = join(dir, 'domcast.db');
    this.location = this.file;
    this.queue = new WriteQueue((batch) => Promise.resolve(this.write(batch)), log, options);
    if (options.readOnly) {
      // Beside a running server (e.g. `domcast export`): read, never migrate nor mark its runs interrupted.
      this.db = new Database(this.file, { readonly: true, fileMustExist: true });
      checkNotNewer(this.version(), SQLITE_MIGRATIONS.length, this.file);
      this.interrupted = 0;
      return;
    }
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    ownerOnly(this.file);
    this.db = new Database(this.file);
    try {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      this.migrate();
    } catch (err) {
      this.db.close();
      throw err;
    }
    this.interrupted = this.markInterrupted();
    this.queue.start();
  }

  private version(): number {
    return this.db.pragma('user_version', { simple: true }) as number;
  }

  /**
   * Applies the migrations this store lacks, in one immediate transaction: a second process
   * opening the same file waits for it, then finds nothing left to do.
   */
  private migrate(): void {
    this.db
      .transaction(() => {
        const from = this.version();
        checkNotNewer(from, SQLITE_MIGRATIONS.length, this.file);
        for (const [i, m] of SQLITE_MIGRATIONS.entries()) {
          if (i < from) continue;
          m.up(this.db);
          this.log.info({ store: this.file, version: i + 1, migration: m.name }, 'store schema migrated');
        }
        // PRAGMA takes no bound parameters; the value is our own integer.
        if (from < SQLITE_MIGRATIONS.length) this.db.pragma(`user_version = ${SQLITE_MIGRATIONS.length}`);
      })
      .immediate();
  }

  /** Nothing to wait for: the constructor opened the database. */
  open(): Promise<void> {
    return Promise.resolve();
  }

  get eventsWritten(): number {
    return this.queue.eventsWritten;
  }

  /**
   * Runs a previous process left queued or running died with it: they become `interrupted`. Their
   * counts were last saved at a status change, so they are taken from the chunks that reached the
   * disk, and they ended at their last stored event (not now, at the restart); a run without
   * events, at its start.
   */
  private markInterrupted(): number {
    const unfinished = this.db.prepare(`SELECT id, created_at, started_at, detail FROM sessions WHERE status IN ('queued', 'running')`).all() as Pick<SessionRow, 'id' | 'created_at' | 'started_at' | 'detail'>[];
    const mark = this.db.prepare(`UPDATE sessions SET status = 'interrupted', error = coalesce(error, ?),
      ended_at = ?, event_count = coalesce(?, event_count), byte_count = coalesce(?, byte_count), detail = ? WHERE id = ?`);
    this.db.transaction(() => {
      for (const run of unfinished) {
        const since = run.started_at ?? run.created_at;
        const stored = this.storedExtent(run.id);
        mark.run(INTERRUPTED_ERROR, Math.max(since, stored?.lastAt ?? since), stored?.events ?? null, stored?.bytes ?? null, interruptedDetail(run.detail, stored?.events), run.id);
      }
    })();
    return unfinished.length;
  }

  private storedExtent(id: string): { events: number; bytes: number; lastAt: number } | null {
    const rows = this.db.prepare('SELECT first_seq, last_seq, data FROM chunks WHERE session_id = ? ORDER BY first_seq').iterate(id) as Iterable<{ first_seq: number; last_seq: number; data: Buffer }>;
    try {
      const extent = new StoredExtent();
      for (const c of rows) extent.add(c.first_seq, c.last_seq, c.data);
      return { events: extent.events, bytes: extent.bytes, lastAt: extent.lastAt };
    } catch (err) {
      // An unreadable chunk must not stop the server from starting: the run keeps its last saved counts.
      this.log.error({ err, session: id }, 'could not read the stored events of an interrupted run');
      return null;
    }
  }

  append(sessionId: string, from: number, events: readonly string[]): void {
    this.queue.append(sessionId, from, events);
  }

  saveSession(session: StoredSession): void {
    this.queue.saveSession(session);
  }

  saveScreenshot(sessionId: string, step: number, png: Buffer): void {
    this.queue.saveScreenshot(sessionId, step, png);
  }

  importRecording(session: StoredSession, events: readonly string[]): void {
    this.saveSession(session);
    for (let i = 0; i < events.length; i += IMPORT_CHUNK) this.append(session.id, i + 1, events.slice(i, i + IMPORT_CHUNK));
  }

  flush(): Promise<void> {
    return this.queue.flush();
  }

  private write(batch: WriteBatch): void {
    const insertChunk = this.db.prepare('INSERT OR REPLACE INTO chunks (session_id, first_seq, last_seq, data) VALUES (?, ?, ?, ?)');
    const upsert = this.db.prepare(`INSERT INTO sessions (id, workflow, inputs, status, error, visual, created_at, started_at, ended_at, steps, outputs, event_count, byte_count, detail)
      VALUES (@id, @workflow, @inputs, @status, @error, @visual, @createdAt, @startedAt, @endedAt, @steps, @outputs, @eventCount, @byteCount, @detail)
      ON CONFLICT (id) DO UPDATE SET status = excluded.status, error = excluded.error, started_at = excluded.started_at, ended_at = excluded.ended_at,
        steps = excluded.steps, outputs = excluded.outputs, event_count = excluded.event_count, byte_count = excluded.byte_count, detail = excluded.detail`);
    const insertShot = this.db.prepare('INSERT OR REPLACE INTO screenshots (session_id, step, png) VALUES (?, ?, ?)');
    this.db.transaction(() => {
      for (const s of batch.sessions) upsert.run({ ...s, ...toColumns(s), visual: s.visual ? 1 : 0 });
      for (const c of batch.chunks) insertChunk.run(c.sessionId, c.firstSeq, c.lastSeq, c.data);
      for (const shot of batch.screenshots) insertShot.run(shot.sessionId, shot.step, shot.png);
    })();
  }

  screenshot(sessionId: string, step: number): Promise<Buffer | undefined> {
    const row = this.db.prepare('SELECT png FROM screenshots WHERE session_id = ? AND step = ?').get(sessionId, step) as { png: Buffer } | undefined;
    return Promise.resolve(row?.png);
  }

  putAsset(sessionId: string, url: string, contentType: string, body: Buffer): Promise<{ hash: string; isNew: boolean }> {
    const hash = createHash('sha256').update(body).digest('hex');
    const now = Date.now();
    return Promise.resolve(
      this.db.transaction(() => {
        const isNew = this.db.prepare('SELECT 1 FROM assets WHERE hash = ?').get(hash) === undefined;
        if (isNew) this.db.prepare('INSERT INTO assets (hash, content_type, size, body, created_at) VALUES (?, ?, ?, ?, ?)').run(hash, contentType, body.length, body, now);
        const before = this.hashOf(sessionId, url);
        this.db
          .prepare(`INSERT INTO session_assets (session_id, url, hash, captured_at) VALUES (?, ?, ?, ?)
            ON CONFLICT (session_id, url) DO UPDATE SET hash = excluded.hash, captured_at = excluded.captured_at`)
          .run(sessionId, url, hash, now);
        if (before !== undefined && before !== hash) this.deleteUnusedAssets([before]);
        return { hash, isNew };
      })(),
    );
  }

  private hashOf(sessionId: string, url: string): string | undefined {
    const row = this.db.prepare('SELECT hash FROM session_assets WHERE session_id = ? AND url = ?').get(sessionId, url) as { hash: string } | undefined;
    return row?.hash;
  }

  assetHash(sessionId: string, url: string): Promise<string | undefined> {
    return Promise.resolve(this.hashOf(sessionId, url));
  }

  assetBody(sessionId: string, hash: string): Promise<{ contentType: string; body: Buffer } | undefined> {
    const row = this.db
      .prepare(`SELECT content_type, body FROM assets WHERE hash = ?
        AND EXISTS (SELECT 1 FROM session_assets WHERE hash = assets.hash AND session_id = ?)`)
      .get(hash, sessionId) as { content_type: string; body: Buffer } | undefined;
    return Promise.resolve(row && { contentType: row.content_type, body: row.body });
  }

  sessionAssetStats(sessionId: string): Promise<{ count: number; bytes: number }> {
    return Promise.resolve(
      this.db
        .prepare(`SELECT count(*) AS count, coalesce(sum(assets.size), 0) AS bytes
          FROM session_assets JOIN assets ON assets.hash = session_assets.hash WHERE session_assets.session_id = ?`)
        .get(sessionId) as { count: number; bytes: number },
    );
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

  private sweepAssets(isKnown: (id: string) => boolean): number {
    const ids = this.db.prepare('SELECT DISTINCT session_id AS id FROM session_assets WHERE session_id NOT IN (SELECT id FROM sessions)').all() as { id: string }[];
    const gone = ids.filter((r) => !isKnown(r.id));
    if (gone.length) this.db.transaction(() => gone.forEach((r) => this.deleteSessionAssets(r.id)))();
    return gone.length;
  }

  get(id: string): Promise<StoredSession | undefined> {
    const row = this.db.prepare('SELECT * FROM sessions WHERE id = ?').get(id) as SessionRow | undefined;
    return Promise.resolve(row && fromRow(row));
  }

  list(q: ListQuery): Promise<{ sessions: StoredSession[]; nextCursor: string | null }> {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (q.status) {
      where.push('status = ?');
      args.push(q.status);
    }
    if (q.workflow) {
      where.push('workflow = ?');
      args.push(q.workflow);
    }
    if (q.cursor) {
      const { createdAt, id } = decodeCursor(q.cursor);
      where.push('(created_at < ? OR (created_at = ? AND id < ?))');
      args.push(createdAt, createdAt, id);
    }
    const rows = this.db
      .prepare(`SELECT * FROM sessions ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id DESC LIMIT ?`)
      .all(...args, q.limit + 1) as SessionRow[];
    return Promise.resolve(page(rows, q));
  }

  async *eventChunks(id: string): AsyncGenerator<string> {
    // A chunk at a time, each read whole: a statement left iterating while a slow or vanished client
    // reads the recording would make every other statement on this connection fail ("busy").
    const starts = this.db.prepare('SELECT first_seq FROM chunks WHERE session_id = ? ORDER BY first_seq').pluck().all(id) as number[];
    const chunk = this.db.prepare('SELECT data FROM chunks WHERE session_id = ? AND first_seq = ?').pluck();
    for (const start of starts) {
      const data = chunk.get(id, start) as Buffer | undefined;
      if (data) yield gunzipSync(data).toString();
    }
  }

  eventsJson(id: string): AsyncGenerator<string> {
    return joinChunks(this.eventChunks(id));
  }

  delete(id: string): Promise<boolean> {
    return Promise.resolve(this.deleteNow(id));
  }

  private deleteNow(id: string): boolean {
    return this.db.transaction(() => {
      this.db.prepare('DELETE FROM chunks WHERE session_id = ?').run(id);
      this.db.prepare('DELETE FROM screenshots WHERE session_id = ?').run(id);
      this.deleteSessionAssets(id);
      return this.db.prepare('DELETE FROM sessions WHERE id = ?').run(id).changes > 0;
    })();
  }

  /** Bytes the database takes (pages in use). */
  private pagesInUse(): number {
    const pages = this.db.pragma('page_count', { simple: true }) as number;
    const free = this.db.pragma('freelist_count', { simple: true }) as number;
    const size = this.db.pragma('page_size', { simple: true }) as number;
    return (pages - free) * size;
  }

  sizeBytes(): Promise<number> {
    return Promise.resolve(this.pagesInUse());
  }

  prune(options: PruneOptions): Promise<string[]> {
    const swept = this.sweepAssets(options.isKnown ?? options.isLive);
    const removed: string[] = [];
    const oldest = this.db.prepare(
      `SELECT id, ended_at FROM sessions WHERE status NOT IN ('queued', 'running') ORDER BY coalesce(ended_at, created_at) ASC, id ASC`,
    );
    for (const row of oldest.all() as { id: string; ended_at: number | null }[]) {
      if (options.isLive(row.id)) continue;
      const tooOld = options.maxAgeMs !== undefined && row.ended_at !== null && Date.now() - row.ended_at > options.maxAgeMs;
      const tooBig = options.maxBytes !== undefined && this.pagesInUse() > options.maxBytes;
      if (!tooOld && !tooBig) break;
      this.deleteNow(row.id);
      removed.push(row.id);
    }
    if (removed.length || swept) this.db.pragma('wal_checkpoint(TRUNCATE)');
    return Promise.resolve(removed);
  }

  async close(): Promise<void> {
    this.queue.stop();
    await this.queue.flush();
    this.db.close();
  }
}
