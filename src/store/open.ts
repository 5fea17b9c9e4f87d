import type { Logger } from '../common/index.js';
import { PgStore } from './pg-store.js';
import type { RecordingStore } from './recording-store.js';
import { SqliteStore } from './sqlite-store.js';

/** Which store: PostgreSQL when a database URL is set, else SQLite in the data folder. */
export interface StoreSettings {
  readonly databaseUrl: string | undefined;
  readonly dataDir: string;
}

/** The recordings store the settings name, not yet opened (`open()` connects and migrates). */
/**
 * `queuedElsewhere`: cluster mode, where a `queued` run is a job in Redis that any worker may still
 * take: the start-up check marks only unfinished *running* runs of dead nodes `interrupted`.
 */
export function createStore(settings: StoreSettings, log: Logger, options: { readOnly?: boolean; queuedElsewhere?: boolean } = {}): RecordingStore {
  return settings.databaseUrl !== undefined ? new PgStore(settings.databaseUrl, log, options) : new SqliteStore(settings.dataDir, log, options);
}
