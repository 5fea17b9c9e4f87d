import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { createLogger } from '../../src/common/index.js';
import { SqliteStore, type StoredSession } from '../../src/store/index.js';

const log = createLogger('silent');
const dir = () => mkdtempSync(join(tmpdir(), 'domcast-store-unit-'));

function meta(id: string, status: string, endedAt: number | null): StoredSession {
  return { id, workflow: 'w', inputs: {}, status, error: null, visual: true, createdAt: endedAt ?? Date.now(), startedAt: null, endedAt, steps: [], outputs: {}, eventCount: 0, byteCount: 0 };
}

/** An event that does not compress, so sizes on disk are predictable. */
const bulky = () => JSON.stringify({ type: 3, timestamp: 1, data: { blob: randomBytes(96 * 1024).toString('base64') } });

describe('SqliteStore', () => {
  test('events come back in seq order, as one array per chunk', async () => {
    const store = new SqliteStore(dir(), log);
    store.saveSession(meta('a', 'running', null));
    store.append('a', 1, ['{"type":4,"timestamp":1}', '{"type":2,"timestamp":2}']);
    await store.flush();
    store.append('a', 3, ['{"type":3,"timestamp":3}']);
    await store.close();
    const reopened = new SqliteStore(store.file.replace(/\/domcast\.db$/, ''), log);
    const events = [...reopened.eventChunks('a')].flatMap((c) => JSON.parse(c) as { timestamp: number }[]);
    assert.deepEqual(events.map((e) => e.timestamp), [1, 2, 3]);
    await reopened.close();
  });

  test('runs found unfinished at open are marked interrupted, but not by a read-only open', async () => {
    const d = dir();
    const store = new SqliteStore(d, log);
    store.saveSession(meta('r', 'running', null));
    store.saveSession(meta('q', 'queued', null));
    store.saveSession(meta('s', 'succeeded', Date.now()));
    await store.flush();
    const reader = new SqliteStore(d, log, { readOnly: true });
    assert.equal(reader.get('r')?.status, 'running');
    await reader.close();
    await store.close();
    const next = new SqliteStore(d, log);
    assert.equal(next.interrupted, 2);
    assert.deepEqual(['r', 'q', 's'].map((id) => next.get(id)?.status), ['interrupted', 'interrupted', 'succeeded']);
    await next.close();
  });

  test('DOMCAST_MAX_STORE_MB-style pruning removes the oldest ended runs until the store fits, never a live one', async () => {
    const store = new SqliteStore(dir(), log);
    const now = Date.now();
    for (const [i, id] of ['old', 'mid', 'new'].entries()) {
      store.saveSession(meta(id, 'succeeded', now - (3 - i) * 1000));
      store.append(id, 1, Array.from({ length: 6 }, bulky));
    }
    store.saveSession(meta('live', 'succeeded', now - 10_000));
    store.append('live', 1, Array.from({ length: 6 }, bulky));
    await store.flush();
    const total = store.sizeBytes();
    assert.ok(total > 2 * 1024 * 1024, `${total} bytes`);
    const removed = store.prune({ maxBytes: total - 1024 * 1024, isLive: (id) => id === 'live' });
    assert.deepEqual(removed, ['old', 'mid']);
    assert.ok(store.get('live') && store.get('new'));
    assert.ok(store.sizeBytes() <= total - 1024 * 1024);
    await store.close();
  });
});
