export { SqliteStore, type StoredSession, type ListQuery } from './sqlite-store.js';
export { track, toStored } from './track.js';
