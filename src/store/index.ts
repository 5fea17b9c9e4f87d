export type { RecordingStore, StoredSession, SessionDetail, ListQuery, PruneOptions } from './recording-store.js';
export { SqliteStore } from './sqlite-store.js';
export { PgStore } from './pg-store.js';
export { createStore, type StoreSettings } from './open.js';
export { StoreError } from './migrations.js';
export { SQLITE_MIGRATIONS } from './sqlite-migrations.js';
export { PG_MIGRATIONS } from './pg-migrations.js';
export { postgresUrlProblem, describePostgresUrl } from './pg-url.js';
export { track, toStored } from './track.js';
