import type Database from 'better-sqlite3';
import type { Migration } from './migrations.js';

/**
 * The SQLite store's schema, in order; `PRAGMA user_version` holds how many were applied. A store
 * made before versions were kept has version 0 and its tables: the first migration creates only
 * what is missing, so such a store upgrades in place.
 */
export const SQLITE_MIGRATIONS: readonly Migration<Database.Database>[] = [
  {
    name: 'sessions, event chunks, screenshots, captured assets',
    up(db) {
      db.exec(`
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
  byte_count INTEGER NOT NULL DEFAULT 0,
  detail TEXT
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
`);
      // A store made before `detail` was kept gets the column (nullable: its rows have none).
      const columns = db.prepare('PRAGMA table_info(sessions)').all() as { name: string }[];
      if (!columns.some((c) => c.name === 'detail')) db.exec('ALTER TABLE sessions ADD COLUMN detail TEXT');
    },
  },
];
