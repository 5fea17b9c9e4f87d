import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { createLogger } from '../../src/common/index.js';
import { PgStore, type RecordingStore, type StoredSession } from '../../src/store/index.js';
import { collect, storeBackends } from '../helpers/stores.js';

function meta(id: string, status: string, endedAt: number | null, createdAt = endedAt ?? Date.now()): StoredSession {
  return { id, workflow: 'w', inputs: {}, status, error: null, visual: true, createdAt, startedAt: null, endedAt, steps: [], outputs: {}, eventCount: 0, byteCount: 0 };
}

/** An event that does not compress, so sizes on disk are predictable. */
const bulky = () => JSON.stringify({ type: 3, timestamp: 1, data: { blob: randomBytes(96 * 1024).toString('base64') } });

const timestamps = async (store: RecordingStore, id: string) =>
  (await collect(store.eventChunks(id))).flatMap((c) => JSON.parse(c) as { timestamp: number }[]).map((e) => e.timestamp);

for (const backend of storeBackends('store')) {
  describe(`recordings store (${backend.name})`, () => {
    after(() => backend.dispose());

    test('events come back in seq order, as one array per chunk, after a reopen', async () => {
      const where = await backend.fresh();
      const store = await backend.open(where);
      store.saveSession(meta('a', 'running', null));
      store.append('a', 1, ['{"type":4,"timestamp":1}', '{"type":2,"timestamp":2}']);
      await store.flush();
      store.append('a', 3, ['{"type":3,"timestamp":3}']);
      await store.close();
      const reopened = await backend.open(where);
      assert.deepEqual(await timestamps(reopened, 'a'), [1, 2, 3]);
      assert.equal((await collect(reopened.eventsJson('a'))).join(''), '[{"type":4,"timestamp":1},{"type":2,"timestamp":2},{"type":3,"timestamp":3}]');
      assert.equal((await collect(reopened.eventsJson('none'))).join(''), '[]');
      await reopened.close();
    });

    test('a session, its detail and its screenshots read back as written', async () => {
      const store = await backend.open(await backend.fresh());
      const detail = { currentStep: 1, lastSeq: 7, latency: { average: 3.5, p95: 9 }, refusedRequests: 2, recordingStopped: null, assets: null };
      const session = { ...meta('s', 'failed', 2000, 1000), inputs: { user: 'ada', n: 2 }, error: 'boom', startedAt: 1500, steps: [{ state: 'failed' }], outputs: { b: 1, a: 2 }, eventCount: 7, byteCount: 90, detail };
      store.saveSession(session);
      store.saveScreenshot('s', 0, Buffer.from('png-0'));
      await store.flush();
      assert.deepEqual(await store.get('s'), session);
      assert.deepEqual(Object.keys((await store.get('s'))!.outputs), ['b', 'a'], 'outputs keep their order');
      assert.deepEqual(await store.screenshot('s', 0), Buffer.from('png-0'));
      assert.equal(await store.screenshot('s', 1), undefined);
      assert.equal(await store.get('nobody'), undefined);
      await store.close();
    });

    test('the list is newest first, filtered by status and workflow, paged by an opaque cursor', async () => {
      const store = await backend.open(await backend.fresh());
      for (let i = 0; i < 5; i++) store.saveSession({ ...meta(`r${i}`, i % 2 ? 'failed' : 'succeeded', 1000 + i), workflow: i === 4 ? 'other' : 'w' });
      // Two runs created in the same millisecond are told apart by id.
      store.saveSession(meta('same-b', 'succeeded', 1002));
      await store.flush();
      const first = await store.list({ limit: 3 });
      assert.deepEqual(first.sessions.map((s) => s.id), ['r4', 'r3', 'same-b']);
      const second = await store.list({ limit: 3, cursor: first.nextCursor! });
      assert.deepEqual(second.sessions.map((s) => s.id), ['r2', 'r1', 'r0']);
      assert.equal(second.nextCursor, null);
      assert.deepEqual((await store.list({ limit: 10, status: 'failed' })).sessions.map((s) => s.id), ['r3', 'r1']);
      assert.deepEqual((await store.list({ limit: 10, workflow: 'other' })).sessions.map((s) => s.id), ['r4']);
      assert.deepEqual((await store.list({ limit: 10, cursor: 'not-a-cursor' })).sessions, []);
      await store.close();
    });

    test('delete removes a session with its events and screenshots, and says whether there was one', async () => {
      const store = await backend.open(await backend.fresh());
      store.saveSession(meta('d', 'succeeded', Date.now()));
      store.append('d', 1, ['{"type":4,"timestamp":1}']);
      store.saveScreenshot('d', 0, Buffer.from('png'));
      await store.flush();
      assert.equal(await store.delete('d'), true);
      assert.equal(await store.get('d'), undefined);
      assert.deepEqual(await timestamps(store, 'd'), []);
      assert.equal(await store.screenshot('d', 0), undefined);
      assert.equal(await store.delete('d'), false);
      await store.close();
    });

    test('runs found unfinished at open are marked interrupted from what was stored, but not by a read-only open', async () => {
      const where = await backend.fresh();
      const store = await backend.open(where);
      const detail = { currentStep: 2, lastSeq: 1, latency: { average: null, p95: null }, refusedRequests: 0, recordingStopped: null, assets: null };
      store.saveSession({ ...meta('r', 'running', null, 1000), startedAt: 1100, detail });
      store.append('r', 1, ['{"type":4,"timestamp":5000}', '{"type":3,"timestamp":6000}']);
      store.saveSession(meta('q', 'queued', null));
      store.saveSession(meta('s', 'succeeded', Date.now()));
      await store.flush();
      // The process "dies": nothing more is written, and (PostgreSQL) its node lock goes with its connection.
      await store.close();
      const reader = await backend.open(where, { readOnly: true });
      assert.equal((await reader.get('r'))?.status, 'running');
      await reader.close();
      const next = await backend.open(where);
      assert.equal(next.interrupted, 2);
      assert.deepEqual(await Promise.all(['r', 'q', 's'].map(async (id) => (await next.get(id))?.status)), ['interrupted', 'interrupted', 'succeeded']);
      const r = (await next.get('r'))!;
      assert.equal(r.error, 'the server stopped while this run was in progress');
      assert.equal(r.endedAt, 6000, 'it ended at its last stored event');
      assert.equal(r.eventCount, 2);
      assert.equal(r.byteCount, '{"type":4,"timestamp":5000}'.length + '{"type":3,"timestamp":6000}'.length);
      assert.deepEqual(r.detail, { ...detail, currentStep: null, lastSeq: 2 });
      await next.close();
    });

    test('DOMCAST_MAX_STORE_MB-style pruning removes the oldest ended runs until the store fits, never a live one', async () => {
      const store = await backend.open(await backend.fresh());
      const now = Date.now();
      for (const [i, id] of ['old', 'mid', 'new'].entries()) {
        store.saveSession(meta(id, 'succeeded', now - (3 - i) * 1000));
        store.append(id, 1, Array.from({ length: 6 }, bulky));
      }
      store.saveSession(meta('live', 'succeeded', now - 10_000));
      store.append('live', 1, Array.from({ length: 6 }, bulky));
      await store.flush();
      const total = await store.sizeBytes();
      assert.ok(total > 2 * 1024 * 1024, `${total} bytes`);
      const removed = await store.prune({ maxBytes: total - 1024 * 1024, isLive: (id) => id === 'live' });
      assert.deepEqual(removed, ['old', 'mid']);
      assert.ok((await store.get('live')) && (await store.get('new')));
      assert.ok((await store.sizeBytes()) <= total - 1024 * 1024);
      await store.close();
    });

    test('retention removes runs ended longer ago than its age, never a running one', async () => {
      const store = await backend.open(await backend.fresh());
      const now = Date.now();
      store.saveSession(meta('ancient', 'succeeded', now - 3 * 86_400_000));
      store.saveSession(meta('recent', 'succeeded', now - 1000));
      store.saveSession(meta('running', 'running', null, now - 5 * 86_400_000));
      await store.flush();
      assert.deepEqual(await store.prune({ maxAgeMs: 86_400_000, isLive: () => false }), ['ancient']);
      assert.ok(await store.get('running'));
      await store.close();
    });
  });
}

describe('recordings store in PostgreSQL, several API nodes on one database', () => {
  const [, backend] = storeBackends('store_nodes');
  after(() => backend!.dispose());
  const log = createLogger('silent');

  test('nodes starting at once migrate once, and neither marks the runs of the other, which is alive', async () => {
    const url = await backend!.fresh();
    const [a, b] = [new PgStore(url, log), new PgStore(url, log)];
    await Promise.all([a.open(), b.open()]);
    a.saveSession(meta('on-a', 'running', null));
    await a.flush();
    const c = new PgStore(url, log);
    await c.open();
    assert.equal(c.interrupted, 0, "a's run goes on: a holds its lock");
    assert.equal((await c.get('on-a'))?.status, 'running');
    await a.close();
    const d = new PgStore(url, log);
    await d.open();
    assert.equal(d.interrupted, 1, 'a is gone: its run is interrupted');
    assert.equal((await b.get('on-a'))?.status, 'interrupted');
    await Promise.all([b.close(), c.close(), d.close()]);
  });
});
