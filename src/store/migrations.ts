import { DomcastError } from '../common/index.js';

/** The store cannot be used: unreachable, or its schema is not one this code can use. */
export class StoreError extends DomcastError {
  constructor(code: 'STORE_UNREACHABLE' | 'STORE_SCHEMA_TOO_NEW' | 'STORE_MIGRATION_FAILED', message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/**
 * One step of a store's schema. Migrations are applied in order, each once; the database records
 * the version it reached (the number of migrations applied). Never edit one that was released:
 * add the next.
 */
export interface Migration<Db> {
  /** What it changes, for the log and the schema_migrations table. */
  name: string;
  up(db: Db): void | Promise<void>;
}

/** Refuses a database a newer domcast migrated: its data may no longer mean what this code thinks. */
export function checkNotNewer(version: number, known: number, location: string): void {
  if (version > known) {
    throw new StoreError(
      'STORE_SCHEMA_TOO_NEW',
      `the recordings store at ${location} has schema version ${version}, newer than this domcast knows (${known}): run a newer domcast, or use another store`,
    );
  }
}
