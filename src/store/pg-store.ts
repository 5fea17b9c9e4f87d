import { createHash, randomUUID } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import pg from 'pg';
import { errorMessage, type Logger } from '../common/index.js';
import { StoreError, checkNotNewer } from './migrations.js';
import { PG_MIGRATIONS } from './pg-migrations.js';
import { describePostgresUrl } from './pg-url.js';
import type { ListQuery, PruneOptions, RecordingStore, StoredSession } from './recording-store.js';
import { IMPORT_CHUNK, INTERRUPTED_ERROR, StoredExtent, decodeCursor, fromRow, interruptedDetail, joinChunks, page, toColumns, type SessionRow } from './rows.js';
import { WriteQueue, type WriteBatch } from './write-queue.js';

/** Advisory lock held while migrating (the one-bigint key space; the two-int4 one below does not overlap it). */
const MIGRATION_LOCK = 1_685_024_099;
/** Two-int4 advisory locks: a captured body by its hash, and an API node by its id, each hashed by hashtext. */
const ASSET_LOCKS = 1_685_024_100;
const NODE_LOCKS = 1_685_024_101;

/** bigint (epoch ms, counts) and numeric (sums) as numbers: every one we keep is far below 2^53. */
const INT8 = 20;
const NUMERIC = 1700;
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8 || oid === NUMERIC ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format ?? 'text')) as typeof pg.types.getTypeParser,
};

/**
 * Recordings in PostgreSQL (DOMCAST_DATABASE_URL), so that any API node serves any recording: the
 * same tables as the SQLite store, the same writes behind the hot path (WriteQueue), one pool of
 * connections. Each node holds an advisory lock on its own id for as long as it lives, on a
 * connection of its own: at start, a node marks `interrupted` only the unfinished runs of nodes
 * whose lock is free (they died), never those of a node that is running.
 */
/**
 * A run's status only moves forward (queued, then running, then its end): with several nodes
 * writing one run (cluster mode: the API node that queued it, the worker that runs it), a write
 * that arrives late never takes it back.
 */
const STATUS_RANK = (column: string): string => `(CASE ${column} WHEN 'queued' THEN 0 WHEN 'running' THEN 1 ELSE 2 END)`;

export class PgStore implements RecordingStore {
  private readonly pool: pg.Pool;
  private readonly queue: WriteQueue;
  private nodeLock: pg.Client | undefined;
  private found = 0;
  readonly location: string;
  /** This process's id as an API node. */
  readonly node = randomUUID();

  constructor(
    private readonly url: string,
    private readonly log: Logger,
    private readonly options: { flushMs?: number; maxPendingBytes?: number; readOnly?: boolean; queuedElsewhere?: boolean } = {},
  ) {
    this.location = describePostgresUrl(url);
    this.pool = new pg.Pool({ connectionString: url, types, max: 8, connectionTimeoutMillis: 5000, application_name: 'domcast' });
    // An idle connection that dies (the database restarted) must not take the process with it.
    this.pool.on('error', (err) => log.error({ err: errorMessage(err), store: this.location }, 'store connection lost'));
    this.queue = new WriteQueue((batch) => this.write(batch), log, options);
  }

  get interrupted(): number {
    return this.found;
  }

  get eventsWritten(): number {
    return this.queue.eventsWritten;
  }

  async open(): Promise<void> {
    try {
      await this.pool.query('SELECT 1');
    } catch (err) {
      throw new StoreError('STORE_UNREACHABLE', `cannot reach PostgreSQL at ${this.location} (DOMCAST_DATABASE_URL): ${this.clean(errorMessage(err))}`, { cause: err });
    }
    if (this.options.readOnly) {
      const version = await this.version(this.pool);
      checkNotNewer(version, PG_MIGRATIONS.length, this.location);
      if (version === 0) throw new StoreError('STORE_MIGRATION_FAILED', `PostgreSQL at ${this.location} holds no recordings store yet (a domcast server creates it at start)`);
      return;
    }
    await this.migrate();
    try {
      this.nodeLock = new pg.Client({ connectionString: this.url, types, application_name: 'domcast node lock' });
      this.nodeLock.on('error', (err) => this.log.error({ err: errorMessage(err), store: this.location }, 'store: lost the connection that holds this node alive'));
      await this.nodeLock.connect();
      await this.nodeLock.query('SELECT pg_advisory_lock($1, hashtext($2))', [NODE_LOCKS, this.node]);
      this.found = await this.markInterrupted();
    } catch (err) {
      throw new StoreError('STORE_UNREACHABLE', `PostgreSQL at ${this.location} (DOMCAST_DATABASE_URL) failed while starting: ${this.clean(errorMessage(err))}`, { cause: err });
    }
    this.queue.start();
  }

  /** A driver's message, with the URL's password taken out should it ever appear there. */
  private clean(message: string): string {
    const password = URL.canParse(this.url) ? decodeURIComponent(new URL(this.url).password) : '';
    return password ? message.replaceAll(password, '***') : message;
  }

  private async version(db: pg.Pool | pg.ClientBase): Promise<number> {
    const { rows } = await db.query<{ version: number }>(
      `SELECT CASE WHEN to_regclass('schema_migrations') IS NULL THEN 0 ELSE (SELECT coalesce(max(version), 0) FROM schema_migrations) END AS version`,
    );
    return rows[0]?.version ?? 0;
  }

  /**
   * Applies the migrations the database lacks, in one transaction, under an advisory lock: API
   * nodes starting at once take turns, and the later ones find nothing left to do.
   */
  private async migrate(): Promise<void> {
    try {
      await this.transaction(async (db) => {
        await db.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
        await db.query('CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())');
        const from = await this.version(db);
        checkNotNewer(from, PG_MIGRATIONS.length, this.location);
        for (const [i, m] of PG_MIGRATIONS.entries()) {
          if (i < from) continue;
          await m.up(db);
          await db.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [i + 1, m.name]);
          this.log.info({ store: this.location, version: i + 1, migration: m.name }, 'store schema migrated');
        }
      });
    } catch (err) {
      if (err instanceof StoreError) throw err;
      throw new StoreError('STORE_MIGRATION_FAILED', `could not bring the recordings store at ${this.location} up to date: ${this.clean(errorMessage(err))}`, { cause: err });
    }
  }

  private async transaction<T>(work: (db: pg.PoolClient) => Promise<T>): Promise<T> {
    const db = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await db.query('BEGIN');
      const result = await work(db);
      await db.query('COMMIT');
      return result;
    } catch (err) {
      await db.query('ROLLBACK').catch((rollback: unknown) => (broken = rollback instanceof Error ? rollback : new Error(String(rollback))));
      throw err;
    } finally {
      // A connection that could not even roll back is closed rather than handed to the next caller.
      db.release(broken);
    }
  }

  /**
   * Runs left queued or running by a node that is gone died with it: they become `interrupted`,
   * their counts taken from the chunks that reached the database, ended at their last stored event.
   * A node is gone when its advisory lock is free (its connection closed with its process).
   */
  private async markInterrupted(): Promise<number> {
    const lock = this.nodeLock!;
    // Cluster mode: a queued run is a job in Redis a worker may still take, not a dead node's run.
    const unfinished = this.options.queuedElsewhere ? ['running'] : ['queued', 'running'];
    const { rows: nodes } = await this.pool.query<{ node: string | null }>(
      `SELECT DISTINCT node FROM sessions WHERE status = ANY($2) AND node IS DISTINCT FROM $1`,
      [this.node, unfinished],
    );
    let marked = 0;
    for (const { node } of nodes) {
      if (node !== null) {
        const { rows } = await lock.query<{ free: boolean }>('SELECT pg_try_advisory_lock($1, hashtext($2)) AS free', [NODE_LOCKS, node]);
        if (!rows[0]?.free) continue;
        await lock.query('SELECT pg_advisory_unlock($1, hashtext($2))', [NODE_LOCKS, node]);
      }
      const { rows: runs } = await this.pool.query<Pick<SessionRow, 'id' | 'created_at' | 'started_at' | 'detail'>>(
        `SELECT id, created_at, started_at, detail FROM sessions WHERE status = ANY($2) AND node IS NOT DISTINCT FROM $1`,
        [node, unfinished],
      );
      for (const run of runs) {
        const since = run.started_at ?? run.created_at;
        const stored = await this.storedExtent(run.id);
        const { rowCount } = await this.pool.query(
          `UPDATE sessions SET status = 'interrupted', error = coalesce(error, $1), ended_at = $2, event_count = coalesce($3, event_count),
            byte_count = coalesce($4, byte_count), detail = $5 WHERE id = $6 AND status IN ('queued', 'running')`,
          [INTERRUPTED_ERROR, Math.max(since, stored?.lastAt ?? since), stored?.events ?? null, stored?.bytes ?? null, interruptedDetail(run.detail, stored?.events), run.id],
        );
        marked += rowCount ?? 0;
      }
    }
    return marked;
  }

  private async storedExtent(id: string): Promise<{ events: number; bytes: number; lastAt: number } | null> {
    try {
      const extent = new StoredExtent();
      // A chunk at a time: a long run's recording is not held in memory whole.
      const { rows } = await this.pool.query<{ first_seq: number; last_seq: number }>('SELECT first_seq, last_seq FROM chunks WHERE session_id = $1 ORDER BY first_seq', [id]);
      for (const c of rows) {
        const { rows: data } = await this.pool.query<{ data: Buffer }>('SELECT data FROM chunks WHERE session_id = $1 AND first_seq = $2', [id, c.first_seq]);
        if (data[0]) extent.add(c.first_seq, c.last_seq, data[0].data);
      }
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

  private async write(batch: WriteBatch): Promise<void> {
    await this.transaction(async (db) => {
      for (const s of batch.sessions) {
        const c = toColumns(s);
        await db.query(
          `INSERT INTO sessions (id, workflow, inputs, status, error, visual, created_at, started_at, ended_at, steps, outputs, event_count, byte_count, detail, node)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
            ON CONFLICT (id) DO UPDATE SET status = excluded.status, error = excluded.error, started_at = excluded.started_at, ended_at = excluded.ended_at,
              steps = excluded.steps, outputs = excluded.outputs, event_count = excluded.event_count, byte_count = excluded.byte_count, detail = excluded.detail,
              node = excluded.node
            WHERE ${STATUS_RANK('sessions.status')} <= ${STATUS_RANK('excluded.status')}`,
          [s.id, s.workflow, c.inputs, s.status, s.error, s.visual, s.createdAt, s.startedAt, s.endedAt, c.steps, c.outputs, s.eventCount, s.byteCount, c.detail, this.node],
        );
      }
      for (const c of batch.chunks) {
        await db.query(
          `INSERT INTO chunks (session_id, first_seq, last_seq, data) VALUES ($1, $2, $3, $4)
            ON CONFLICT (session_id, first_seq) DO UPDATE SET last_seq = excluded.last_seq, data = excluded.data`,
          [c.sessionId, c.firstSeq, c.lastSeq, c.data],
        );
      }
      for (const shot of batch.screenshots) {
        await db.query('INSERT INTO screenshots (session_id, step, png) VALUES ($1, $2, $3) ON CONFLICT (session_id, step) DO UPDATE SET png = excluded.png', [
          shot.sessionId,
          shot.step,
          shot.png,
        ]);
      }
    });
  }

  async screenshot(sessionId: string, step: number): Promise<Buffer | undefined> {
    const { rows } = await this.pool.query<{ png: Buffer }>('SELECT png FROM screenshots WHERE session_id = $1 AND step = $2', [sessionId, step]);
    return rows[0]?.png;
  }

  /**
   * Bodies are locked by hash for the transaction, in one order, so that a body being deleted as
   * unused is not at the same moment taken up by another session's capture.
   */
  private async lockBodies(db: pg.ClientBase, hashes: Iterable<string>): Promise<void> {
    for (const hash of [...new Set(hashes)].sort()) await db.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [ASSET_LOCKS, hash]);
  }

  putAsset(sessionId: string, url: string, contentType: string, body: Buffer): Promise<{ hash: string; isNew: boolean }> {
    const hash = createHash('sha256').update(body).digest('hex');
    const now = Date.now();
    return this.transaction(async (db) => {
      const { rows: held } = await db.query<{ hash: string }>('SELECT hash FROM session_assets WHERE session_id = $1 AND url = $2 FOR UPDATE', [sessionId, url]);
      const before = held[0]?.hash;
      await this.lockBodies(db, before === undefined ? [hash] : [hash, before]);
      const isNew = (await db.query('SELECT 1 FROM assets WHERE hash = $1', [hash])).rowCount === 0;
      if (isNew) await db.query('INSERT INTO assets (hash, content_type, size, body, created_at) VALUES ($1, $2, $3, $4, $5)', [hash, contentType, body.length, body, now]);
      await db.query(
        `INSERT INTO session_assets (session_id, url, hash, captured_at) VALUES ($1, $2, $3, $4)
          ON CONFLICT (session_id, url) DO UPDATE SET hash = excluded.hash, captured_at = excluded.captured_at`,
        [sessionId, url, hash, now],
      );
      if (before !== undefined && before !== hash) await this.deleteUnusedAssets(db, [before]);
      return { hash, isNew };
    });
  }

  async assetHash(sessionId: string, url: string): Promise<string | undefined> {
    const { rows } = await this.pool.query<{ hash: string }>('SELECT hash FROM session_assets WHERE session_id = $1 AND url = $2', [sessionId, url]);
    return rows[0]?.hash;
  }

  async assetBody(sessionId: string, hash: string): Promise<{ contentType: string; body: Buffer } | undefined> {
    const { rows } = await this.pool.query<{ content_type: string; body: Buffer }>(
      `SELECT content_type, body FROM assets WHERE hash = $1
        AND EXISTS (SELECT 1 FROM session_assets WHERE hash = assets.hash AND session_id = $2)`,
      [hash, sessionId],
    );
    const row = rows[0];
    return row && { contentType: row.content_type, body: row.body };
  }

  async sessionAssetStats(sessionId: string): Promise<{ count: number; bytes: number }> {
    const { rows } = await this.pool.query<{ count: number; bytes: number }>(
      `SELECT count(*) AS count, coalesce(sum(assets.size), 0) AS bytes
        FROM session_assets JOIN assets ON assets.hash = session_assets.hash WHERE session_assets.session_id = $1`,
      [sessionId],
    );
    return rows[0] ?? { count: 0, bytes: 0 };
  }

  /** Forgets a session's captured URLs and deletes the bodies no other session uses. */
  private async deleteSessionAssets(db: pg.ClientBase, sessionId: string): Promise<void> {
    const { rows } = await db.query<{ hash: string }>('SELECT DISTINCT hash FROM session_assets WHERE session_id = $1', [sessionId]);
    const hashes = rows.map((r) => r.hash);
    await this.lockBodies(db, hashes);
    await db.query('DELETE FROM session_assets WHERE session_id = $1', [sessionId]);
    await this.deleteUnusedAssets(db, hashes);
  }

  private async deleteUnusedAssets(db: pg.ClientBase, hashes: readonly string[]): Promise<void> {
    if (hashes.length === 0) return;
    await db.query('DELETE FROM assets WHERE hash = ANY($1) AND NOT EXISTS (SELECT 1 FROM session_assets WHERE session_assets.hash = assets.hash)', [hashes]);
  }

  private async sweepAssets(isKnown: (id: string) => boolean): Promise<number> {
    const { rows } = await this.pool.query<{ id: string }>('SELECT DISTINCT session_id AS id FROM session_assets WHERE session_id NOT IN (SELECT id FROM sessions)');
    const gone = rows.filter((r) => !isKnown(r.id));
    for (const r of gone) await this.transaction((db) => this.deleteSessionAssets(db, r.id));
    return gone.length;
  }

  async get(id: string): Promise<StoredSession | undefined> {
    const { rows } = await this.pool.query<SessionRow>('SELECT * FROM sessions WHERE id = $1', [id]);
    return rows[0] && fromRow(rows[0]);
  }

  async list(q: ListQuery): Promise<{ sessions: StoredSession[]; nextCursor: string | null }> {
    const where: string[] = [];
    const args: (string | number)[] = [];
    const arg = (v: string | number) => `$${args.push(v)}`;
    if (q.status) where.push(`status = ${arg(q.status)}`);
    if (q.workflow) where.push(`workflow = ${arg(q.workflow)}`);
    if (q.cursor) {
      const { createdAt, id } = decodeCursor(q.cursor);
      // A cursor that was tampered with is no position: it matches nothing rather than failing the query.
      const at = Number.isFinite(createdAt) ? Math.trunc(createdAt) : -1;
      where.push(`(created_at < ${arg(at)} OR (created_at = ${arg(at)} AND id < ${arg(id)}))`);
    }
    const { rows } = await this.pool.query<SessionRow>(
      `SELECT * FROM sessions ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id DESC LIMIT ${arg(q.limit + 1)}`,
      args,
    );
    return page(rows, q);
  }

  async *eventChunks(id: string): AsyncGenerator<string> {
    // A chunk at a time, each read whole: a slow client reading the recording holds no connection.
    const { rows } = await this.pool.query<{ first_seq: number }>('SELECT first_seq FROM chunks WHERE session_id = $1 ORDER BY first_seq', [id]);
    for (const { first_seq } of rows) {
      const { rows: data } = await this.pool.query<{ data: Buffer }>('SELECT data FROM chunks WHERE session_id = $1 AND first_seq = $2', [id, first_seq]);
      if (data[0]) yield gunzipSync(data[0].data).toString();
    }
  }

  eventsJson(id: string): AsyncGenerator<string> {
    return joinChunks(this.eventChunks(id));
  }

  delete(id: string): Promise<boolean> {
    return this.transaction(async (db) => {
      await db.query('DELETE FROM chunks WHERE session_id = $1', [id]);
      await db.query('DELETE FROM screenshots WHERE session_id = $1', [id]);
      await this.deleteSessionAssets(db, id);
      return ((await db.query('DELETE FROM sessions WHERE id = $1', [id])).rowCount ?? 0) > 0;
    });
  }

  /**
   * The bytes of what is stored (events, screenshots, bodies, the sessions' text), not the tables'
   * files: PostgreSQL reuses the space of deleted rows rather than give it back, so the files would
   * not shrink when retention removes runs.
   */
  async sizeBytes(): Promise<number> {
    const { rows } = await this.pool.query<{ bytes: number }>(`SELECT
      (SELECT coalesce(sum(octet_length(data)), 0) FROM chunks)
      + (SELECT coalesce(sum(octet_length(png)), 0) FROM screenshots)
      + (SELECT coalesce(sum(size), 0) FROM assets)
      + (SELECT coalesce(sum(octet_length(inputs) + octet_length(steps) + octet_length(outputs) + coalesce(octet_length(detail), 0)), 0) FROM sessions) AS bytes`);
    return rows[0]?.bytes ?? 0;
  }

  async prune(options: PruneOptions): Promise<string[]> {
    await this.sweepAssets(options.isKnown ?? options.isLive);
    const removed: string[] = [];
    const { rows } = await this.pool.query<{ id: string; ended_at: number | null }>(
      `SELECT id, ended_at FROM sessions WHERE status NOT IN ('queued', 'running') ORDER BY coalesce(ended_at, created_at) ASC, id ASC`,
    );
    for (const row of rows) {
      if (options.isLive(row.id)) continue;
      const tooOld = options.maxAgeMs !== undefined && row.ended_at !== null && Date.now() - row.ended_at > options.maxAgeMs;
      const tooBig = options.maxBytes !== undefined && (await this.sizeBytes()) > options.maxBytes;
      if (!tooOld && !tooBig) break;
      await this.delete(row.id);
      removed.push(row.id);
    }
    return removed;
  }

  async close(): Promise<void> {
    this.queue.stop();
    await this.queue.flush();
    await this.nodeLock?.end().catch((err: unknown) => this.log.warn({ err: errorMessage(err), store: this.location }, 'store: closing the node lock connection failed'));
    await this.pool.end();
  }
}
