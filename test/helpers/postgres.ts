import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** The PostgreSQL the tests use: 127.0.0.1:5432, trust auth (`.ci/run` starts it). */
const ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  /** DOMCAST_DATABASE_URL of the database. */
  url: string;
  /** Drops every table, so that the next store starts from an empty database. */
  reset(): Promise<void>;
  /** Drops the database (at the end of the test file). */
  drop(): Promise<void>;
}

async function admin<T>(work: (db: pg.Client) => Promise<T>, url = ADMIN_URL): Promise<T> {
  const db = new pg.Client({ connectionString: url });
  try {
    await db.connect();
  } catch (err) {
    // Never a silent skip: a run without PostgreSQL fails and says how to get one.
    throw new Error(
      `PostgreSQL is not reachable at 127.0.0.1:5432 (${err instanceof Error ? err.message : String(err)}): start it with ` +
        '`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, or run .ci/run',
      { cause: err },
    );
  }
  try {
    return await work(db);
  } finally {
    await db.end();
  }
}

/** A database of its own for a test file, named uniquely; drop it in `after`. */
export async function createTestDatabase(label: string): Promise<TestDatabase> {
  const name = `domcast_${label.replace(/\W/g, '_')}_${process.pid}_${randomBytes(4).toString('hex')}`;
  await admin((db) => db.query(`CREATE DATABASE ${name}`));
  const url = `postgres://postgres@127.0.0.1:5432/${name}`;
  return {
    url,
    reset: () => admin((db) => db.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public'), url).then(() => undefined),
    drop: () => admin((db) => db.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined),
  };
}

/** Runs SQL on a test database over a connection of its own. */
export function query<R extends pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []): Promise<R[]> {
  return admin(async (db) => (await db.query<R>(sql, params)).rows, url);
}
