import type pg from 'pg';
import type { Migration } from './migrations.js';

/**
 * The PostgreSQL store's schema, in order; `schema_migrations` records each one applied. Times are
 * epoch milliseconds (bigint), JSON is kept as text (as written: jsonb would reorder keys).
 */
export const PG_MIGRATIONS: readonly Migration<pg.ClientBase>[] = [
  {
    name: 'sessions, event chunks, screenshots, captured assets',
    async up(db) {
      await db.query(`
CREATE TABLE sessions (
  id text PRIMARY KEY,
  workflow text NOT NULL,
  inputs text NOT NULL,
  status text NOT NULL,
  error text,
  visual boolean NOT NULL,
  created_at bigint NOT NULL,
  started_at bigint,
  ended_at bigint,
  steps text NOT NULL,
  outputs text NOT NULL,
  event_count bigint NOT NULL DEFAULT 0,
  byte_count bigint NOT NULL DEFAULT 0,
  detail text,
  -- The API node whose process runs (or ran) the session: its runs are interrupted only once it is gone.
  node text
);
CREATE INDEX sessions_created ON sessions (created_at DESC, id DESC);
CREATE INDEX sessions_unfinished ON sessions (node) WHERE status IN ('queued', 'running');
CREATE TABLE chunks (
  session_id text NOT NULL,
  first_seq bigint NOT NULL,
  last_seq bigint NOT NULL,
  data bytea NOT NULL,
  PRIMARY KEY (session_id, first_seq)
);
CREATE TABLE screenshots (
  session_id text NOT NULL,
  step integer NOT NULL,
  png bytea NOT NULL,
  PRIMARY KEY (session_id, step)
);
-- Chunks are gzip and screenshots PNG already: PostgreSQL would only try to compress them again.
ALTER TABLE chunks ALTER COLUMN data SET STORAGE EXTERNAL;
ALTER TABLE screenshots ALTER COLUMN png SET STORAGE EXTERNAL;
CREATE TABLE assets (
  hash text PRIMARY KEY,
  content_type text NOT NULL,
  size bigint NOT NULL,
  body bytea NOT NULL,
  created_at bigint NOT NULL
);
CREATE TABLE session_assets (
  session_id text NOT NULL,
  url text NOT NULL,
  hash text NOT NULL,
  captured_at bigint NOT NULL,
  PRIMARY KEY (session_id, url)
);
CREATE INDEX session_assets_hash ON session_assets (hash, session_id);
`);
    },
  },
];
