import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { createServer, loadConfig, type Server } from '../../src/server/index.js';

/** The real server on a data folder (no browser is started: nothing runs). */
function serverOn(dataDir: string): Server {
  return createServer(loadConfig({ PORT: '0', LOG_LEVEL: 'silent', CHROMIUM_PATH: '/nonexistent/domcast-unit-test-chromium', DOMCAST_DATA_DIR: dataDir }));
}

/** Writes a session through the store, so SQLite has made its WAL and shared-memory files. */
async function write(server: Server): Promise<void> {
  const store = server.deps.store;
  store.saveSession({ id: 's1', workflow: 'w', inputs: {}, status: 'running', error: null, visual: true, createdAt: 1, startedAt: 1, endedAt: null, steps: [], outputs: {}, eventCount: 0, byteCount: 0 });
  store.append('s1', 1, ['{"type":4,"timestamp":1,"data":{}}']);
  await store.flush();
}

/** Each file in the folder with its permission bits, e.g. {"domcast.db": "600"}. */
function modes(dir: string): Record<string, string> {
  return Object.fromEntries(readdirSync(dir).map((f) => [f, (statSync(join(dir, f)).mode & 0o777).toString(8)]));
}

describe('store files', () => {
  test('the database, its -wal and -shm and the token key are created 0600 under the usual umask (022)', async () => {
    const previous = process.umask(0o022);
    const dataDir = join(mkdtempSync(join(tmpdir(), 'domcast-files-')), 'data');
    const server = serverOn(dataDir);
    try {
      await write(server);
      const files = modes(dataDir);
      assert.deepEqual(Object.keys(files).sort(), ['domcast.db', 'domcast.db-shm', 'domcast.db-wal', 'viewer-token.key'], 'SQLite made its WAL files (so their modes are checked)');
      assert.deepEqual(files, Object.fromEntries(Object.keys(files).map((f) => [f, '600'])));
      assert.equal((statSync(dataDir).mode & 0o777).toString(8), '700', 'a data folder we create is ours alone');
    } finally {
      await server.close();
      process.umask(previous);
    }
  });

  test('files an older version left readable by others, a WAL left by a crash included, are made 0600 at start', async () => {
    const previous = process.umask(0o022);
    const dataDir = mkdtempSync(join(tmpdir(), 'domcast-files-'));
    // Left open, as a process killed with -9 leaves it: the -wal and -shm files stay on disk.
    const old = new Database(join(dataDir, 'domcast.db'));
    old.pragma('journal_mode = WAL');
    old.exec('CREATE TABLE t (x)');
    writeFileSync(join(dataDir, 'viewer-token.key'), `${Buffer.alloc(32, 9).toString('base64url')}\n`);
    for (const f of readdirSync(dataDir)) chmodSync(join(dataDir, f), 0o644);
    assert.equal(Object.keys(modes(dataDir)).length, 4);
    const server = serverOn(dataDir);
    try {
      await write(server);
      const files = modes(dataDir);
      assert.deepEqual(files, Object.fromEntries(Object.keys(files).map((f) => [f, '600'])));
    } finally {
      await server.close();
      old.close();
      process.umask(previous);
    }
  });
});
