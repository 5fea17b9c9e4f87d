import Database from 'better-sqlite3';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../src/common/index.js';
import { PgStore, SqliteStore, type RecordingStore } from '../../src/store/index.js';
import { createTestDatabase, query, type TestDatabase } from './postgres.js';

const log = createLogger('silent');

export interface StoreOptions {
  readOnly?: boolean;
}

/** One kind of recordings store, for tests that run against each. */
export interface StoreBackend {
  name: 'sqlite' | 'postgres';
  /** A new, empty place for a store: a temporary folder, or the test file's database emptied. */
  fresh(): Promise<string>;
  /** A store at `where`, opened (connected, migrated). */
  open(where: string, options?: StoreOptions): Promise<RecordingStore>;
  /** The hashes of the asset bodies stored at `where`, read over a connection of its own. */
  bodyHashes(where: string): Promise<Set<string>>;
  /** Drops what the backend made for the test file. */
  dispose(): Promise<void>;
}

const sqlite: StoreBackend = {
  name: 'sqlite',
  fresh: () => Promise.resolve(mkdtempSync(join(tmpdir(), 'domcast-store-test-'))),
  async open(where, options = {}) {
    const store = new SqliteStore(where, log, options);
    await store.open();
    return store;
  },
  bodyHashes(where) {
    const db = new Database(join(where, 'domcast.db'), { readonly: true });
    try {
      return Promise.resolve(new Set((db.prepare('SELECT hash FROM assets').all() as { hash: string }[]).map((r) => r.hash)));
    } finally {
      db.close();
    }
  },
  dispose: () => Promise.resolve(),
};

function postgres(label: string): StoreBackend {
  let database: Promise<TestDatabase> | undefined;
  return {
    name: 'postgres',
    async fresh() {
      database ??= createTestDatabase(label);
      const db = await database;
      await db.reset();
      return db.url;
    },
    async open(where, options = {}) {
      const store = new PgStore(where, log, options);
      try {
        await store.open();
      } catch (err) {
        await store.close();
        throw err;
      }
      return store;
    },
    async bodyHashes(where) {
      return new Set((await query<{ hash: string }>(where, 'SELECT hash FROM assets')).map((r) => r.hash));
    },
    async dispose() {
      await (await database)?.drop();
    },
  };
}

/** SQLite and PostgreSQL (a database of the test file's own, named after `label`). */
export function storeBackends(label: string): StoreBackend[] {
  return [sqlite, postgres(label)];
}

/** Everything an async iterable yields (Node 20 has no Array.fromAsync). */
export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}
