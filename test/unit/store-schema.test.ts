import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { createLogger } from '../../src/common/index.js';
import { PG_MIGRATIONS, PgStore, SQLITE_MIGRATIONS, SqliteStore, StoreError } from '../../src/store/index.js';
import { collect } from '../helpers/stores.js';
import { createTestDatabase, query } from '../helpers/postgres.js';

const log = createLogger('silent');
const dir = () => mkdtempSync(join(tmpdir(), 'domcast-schema-unit-'));

/**
 * The schema of stores made before versions were kept (user_version 0), as that code created it;
 * `detail` came later than the rest, so the oldest files lack it.
 */
const UNVERSIONED_DDL = (withDetail: boolean) => `
CREATE TABLE IF NOT EXISTS sessions (
  id TEXT PRIMARY KEY, workflow TEXT NOT NULL, inputs TEXT NOT NULL, status TEXT NOT NULL, error TEXT,
  visual INTEGER NOT NULL, created_at INTEGER NOT NULL, started_at INTEGER, ended_at INTEGER,
  steps TEXT NOT NULL, outputs TEXT NOT NULL, event_count INTEGER NOT NULL DEFAULT 0, byte_count INTEGER NOT NULL DEFAULT 0${withDetail ? ',\n  detail TEXT' : ''}
);
CREATE INDEX IF NOT EXISTS sessions_created ON sessions (created_at DESC, id DESC);
CREATE TABLE IF NOT EXISTS chunks (
  session_id TEXT NOT NULL, first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL, data BLOB NOT NULL,
  PRIMARY KEY (session_id, first_seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS screenshots (
  session_id TEXT NOT NULL, step INTEGER NOT NULL, png BLOB NOT NULL, PRIMARY KEY (session_id, step)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS assets (
  hash TEXT PRIMARY KEY, content_type TEXT NOT NULL, size INTEGER NOT NULL, body BLOB NOT NULL, created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS session_assets (
  session_id TEXT NOT NULL, url TEXT NOT NULL, hash TEXT NOT NULL, captured_at INTEGER NOT NULL, PRIMARY KEY (session_id, url)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS session_assets_hash ON session_assets (hash, session_id);
`;

/** A store file as the code before versioned schemas left it: one ended run with its events and a screenshot. */
function unversionedStore(withDetail: boolean): string {
  const d = dir();
  const db = new Database(join(d, 'domcast.db'));
  db.pragma('journal_mode = WAL');
  db.exec(UNVERSIONED_DDL(withDetail));
  db.prepare(`INSERT INTO sessions (id, workflow, inputs, status, error, visual, created_at, started_at, ended_at, steps, outputs, event_count, byte_count)
    VALUES ('old', 'demo', '{"user":"ada"}', 'succeeded', NULL, 1, 1000, 1100, 2000, '[{"state":"succeeded"}]', '{}', 1, 24)`).run();
  // gzip of [{"type":4,"timestamp":1}], written here as that code wrote it.
  db.prepare('INSERT INTO chunks (session_id, first_seq, last_seq, data) VALUES (?, 1, 1, ?)').run('old', Buffer.from('H4sIAAAAAAAAA4uuViqpLEhVsjLRUSrJzE0tLknMLVCyMqyNBQBx2mOjGgAAAA==', 'base64'));
  db.prepare('INSERT INTO screenshots (session_id, step, png) VALUES (?, 0, ?)').run('old', Buffer.from('png'));
  assert.equal(db.pragma('user_version', { simple: true }), 0);
  db.close();
  return d;
}

describe('SQLite store schema versions', () => {
  for (const withDetail of [true, false]) {
    test(`a store made before versions were kept (${withDetail ? 'with' : 'without'} the detail column) upgrades in place and keeps its runs`, async () => {
      const d = unversionedStore(withDetail);
      const store = new SqliteStore(d, log);
      const db = new Database(join(d, 'domcast.db'), { readonly: true });
      assert.equal(db.pragma('user_version', { simple: true }), SQLITE_MIGRATIONS.length);
      assert.ok((db.prepare('PRAGMA table_info(sessions)').all() as { name: string }[]).some((c) => c.name === 'detail'));
      db.close();
      const old = await store.get('old');
      assert.equal(old?.status, 'succeeded');
      assert.deepEqual(old?.inputs, { user: 'ada' });
      assert.equal(old?.detail, undefined, 'a row written before detail was kept reads without it');
      assert.deepEqual(await collect(store.eventChunks('old')), ['[{"type":4,"timestamp":1}]']);
      assert.deepEqual(await store.screenshot('old', 0), Buffer.from('png'));
      store.saveSession({ ...old!, id: 'new', detail: { currentStep: null, lastSeq: 0, latency: { average: null, p95: null }, refusedRequests: 0, recordingStopped: null, assets: null } });
      await store.flush();
      assert.equal((await store.get('new'))?.detail?.lastSeq, 0);
      await store.close();
      const again = new SqliteStore(d, log);
      assert.equal((await again.list({ limit: 10 })).sessions.length, 2, 'opening again migrates nothing and loses nothing');
      await again.close();
    });
  }

  test('a store from a newer domcast is refused with a message that says so, and left as it is', () => {
    const d = dir();
    new Database(join(d, 'domcast.db')).pragma(`user_version = ${SQLITE_MIGRATIONS.length + 1}`);
    assert.throws(
      () => new SqliteStore(d, log),
      (err: unknown) =>
        err instanceof StoreError &&
        err.code === 'STORE_SCHEMA_TOO_NEW' &&
        err.message.includes(`schema version ${SQLITE_MIGRATIONS.length + 1}, newer than this domcast knows (${SQLITE_MIGRATIONS.length})`),
    );
    assert.throws(() => new SqliteStore(d, log, { readOnly: true }), /newer than this domcast knows/);
    const db = new Database(join(d, 'domcast.db'), { readonly: true });
    assert.deepEqual(db.prepare("SELECT name FROM sqlite_master WHERE name = 'sessions'").all(), [], 'no table was made in it');
    db.close();
  });
});

describe('PostgreSQL store schema versions', async () => {
  const database = await createTestDatabase('schema');
  after(() => database.drop());

  test('migrations are recorded in schema_migrations, once each, whatever the number of opens', async () => {
    await database.reset();
    await Promise.all([0, 1, 2].map(async () => {
      const store = new PgStore(database.url, log);
      await store.open();
      await store.close();
    }));
    const rows = await query<{ version: number; name: string }>(database.url, 'SELECT version, name FROM schema_migrations ORDER BY version');
    assert.deepEqual(rows, PG_MIGRATIONS.map((m, i) => ({ version: i + 1, name: m.name })));
  });

  test('a database migrated by a newer domcast is refused with a message that says so', async () => {
    await database.reset();
    const store = new PgStore(database.url, log);
    await store.open();
    await store.close();
    await query(database.url, "INSERT INTO schema_migrations (version, name) VALUES ($1, 'from the future')", [PG_MIGRATIONS.length + 1]);
    const newer = new PgStore(database.url, log);
    await assert.rejects(newer.open(), (err: unknown) => err instanceof StoreError && err.code === 'STORE_SCHEMA_TOO_NEW' && /127\.0\.0\.1:5432\/domcast_schema_\w+ has schema version \d+, newer than this domcast knows/.test(err.message));
    await newer.close();
  });

  test('an unreachable database is a StoreError naming host:port, never the password', async () => {
    const store = new PgStore('postgres://ada:s3cret-pw@127.0.0.1:1/recordings', log);
    await assert.rejects(store.open(), (err: unknown) => {
      assert.ok(err instanceof StoreError && err.code === 'STORE_UNREACHABLE', String(err));
      assert.match(err.message, /^cannot reach PostgreSQL at 127\.0\.0\.1:1\/recordings \(DOMCAST_DATABASE_URL\): /);
      assert.doesNotMatch(err.message, /s3cret/);
      return true;
    });
    assert.equal(store.location, '127.0.0.1:1/recordings');
    await store.close();
  });
});
