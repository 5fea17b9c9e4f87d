import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { AssetIndex, servedContentType } from '../../src/assets/index.js';
import { createLogger } from '../../src/common/index.js';
import { SqliteStore, type StoredSession } from '../../src/store/index.js';
import { storeBackends } from '../helpers/stores.js';

const log = createLogger('silent');
const dir = () => mkdtempSync(join(tmpdir(), 'domcast-assets-unit-'));
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function meta(id: string, endedAt: number): StoredSession {
  return { id, workflow: 'w', inputs: {}, status: 'succeeded', error: null, visual: true, createdAt: endedAt, startedAt: null, endedAt, steps: [], outputs: {}, eventCount: 0, byteCount: 0 };
}

for (const backend of storeBackends('asset_store')) {
  describe(`captured assets in the store (${backend.name})`, () => {
    after(() => backend.dispose());
    const fresh = async () => backend.open(await backend.fresh());
    /** Which of these bodies the assets table still holds, read over a connection of its own. */
    const bodiesKept = async (where: string, bodies: Buffer[]) => {
      const kept = await backend.bodyHashes(where);
      return bodies.map((b) => kept.has(sha256(b)));
    };

    test('a body is kept once, whatever the URLs and sessions it came from, and each URL maps to its hash', async () => {
      const store = await fresh();
      const logo = randomBytes(2048);
      const first = await store.putAsset('a', 'https://site.test/logo.png', 'image/png', logo);
      assert.deepEqual(first, { hash: sha256(logo), isNew: true });
      assert.deepEqual(await store.putAsset('a', 'https://cdn.site.test/logo.png', 'image/png', logo), { hash: first.hash, isNew: false });
      assert.deepEqual(await store.putAsset('b', 'https://site.test/logo.png', 'image/png', logo), { hash: first.hash, isNew: false });
      assert.equal(await store.assetHash('a', 'https://cdn.site.test/logo.png'), first.hash);
      assert.equal(await store.assetHash('b', 'https://site.test/logo.png'), first.hash);
      assert.equal(await store.assetHash('b', 'https://cdn.site.test/logo.png'), undefined);
      assert.deepEqual(await store.assetBody('a', first.hash), { contentType: 'image/png', body: logo });
      await store.close();
    });

    test('a URL captured again maps to the latest body; the one it replaced goes when nothing else uses it', async () => {
      const where = await backend.fresh();
      const store = await backend.open(where);
      const v1 = Buffer.from('body { color: red }');
      const v2 = Buffer.from('body { color: blue }');
      const h1 = (await store.putAsset('a', 'https://site.test/app.css', 'text/css', v1)).hash;
      const h2 = (await store.putAsset('a', 'https://site.test/app.css', 'text/css', v2)).hash;
      assert.equal(await store.assetHash('a', 'https://site.test/app.css'), h2);
      assert.equal(await store.assetBody('a', h1), undefined);
      assert.deepEqual(await bodiesKept(where, [v1, v2]), [false, true]);
      await store.close();
    });

    test('a body stored once for two sessions is served to each, never to a session that did not capture it', async () => {
      const store = await fresh();
      const shared = randomBytes(512);
      const { hash } = await store.putAsset('a', 'https://a.test/x.png', 'image/png', shared);
      await store.putAsset('b', 'https://b.test/y.png', 'image/png', shared);
      assert.ok(await store.assetBody('a', hash));
      assert.ok(await store.assetBody('b', hash));
      assert.equal(await store.assetBody('c', hash), undefined, 'c knows the hash but never captured the body');
      assert.equal(await store.assetHash('c', 'https://a.test/x.png'), undefined);
      await store.close();
    });

    test('deleting a session drops its URLs and the bodies no other session uses', async () => {
      const where = await backend.fresh();
      const store = await backend.open(where);
      const mine = randomBytes(1024);
      const shared = randomBytes(1024);
      store.saveSession(meta('a', Date.now()));
      store.saveSession(meta('b', Date.now()));
      await store.flush();
      await store.putAsset('a', 'https://a.test/mine.png', 'image/png', mine);
      const { hash: sharedHash } = await store.putAsset('a', 'https://a.test/shared.png', 'image/png', shared);
      await store.putAsset('b', 'https://b.test/shared.png', 'image/png', shared);
      assert.equal(await store.delete('a'), true);
      assert.equal(await store.assetHash('a', 'https://a.test/mine.png'), undefined);
      assert.deepEqual(await store.sessionAssetStats('a'), { count: 0, bytes: 0 });
      assert.ok(await store.assetBody('b', sharedHash), "b's copy stays");
      assert.deepEqual(await bodiesKept(where, [mine, shared]), [false, true]);
      await store.delete('b');
      assert.deepEqual(await bodiesKept(where, [shared]), [false]);
      await store.close();
    });

    test("stats count a session's URLs and their bodies' bytes, shared or not", async () => {
      const store = await fresh();
      const a = randomBytes(1000);
      const b = randomBytes(300);
      await store.putAsset('s', 'https://s.test/a', 'image/png', a);
      await store.putAsset('s', 'https://s.test/a-again', 'image/png', a);
      await store.putAsset('s', 'https://s.test/b', 'font/woff2', b);
      await store.putAsset('t', 'https://t.test/b', 'font/woff2', b);
      assert.deepEqual(await store.sessionAssetStats('s'), { count: 3, bytes: 2300 });
      assert.deepEqual(await store.sessionAssetStats('t'), { count: 1, bytes: 300 });
      assert.deepEqual(await store.sessionAssetStats('none'), { count: 0, bytes: 0 });
      await store.close();
    });

    test('captured bytes count toward the size cap: pruning removes old runs and their bodies until the store fits', async () => {
      const store = await fresh();
      const now = Date.now();
      for (const [i, id] of ['old', 'mid', 'new'].entries()) {
        store.saveSession(meta(id, now - (3 - i) * 1000));
        // Bodies that do not compress and are not shared: 1 MiB a run, and no events at all.
        for (let n = 0; n < 4; n++) await store.putAsset(id, `https://${id}.test/${n}.png`, 'image/png', randomBytes(256 * 1024));
      }
      await store.flush();
      const total = await store.sizeBytes();
      assert.ok(total > 3 * 1024 * 1024, `${total} bytes`);
      const removed = await store.prune({ maxBytes: total - 1536 * 1024, isLive: () => false });
      assert.deepEqual(removed, ['old', 'mid']);
      assert.deepEqual(await store.sessionAssetStats('new'), { count: 4, bytes: 1024 * 1024 });
      const after = await store.sizeBytes();
      assert.ok(after < total - 1536 * 1024, `${after} bytes after pruning`);
      await store.close();
    });

    test("pruning drops the assets of runs neither on record nor known (not kept, or lost with a previous process), never a known one's", async () => {
      const store = await fresh();
      await store.putAsset('forgotten', 'https://f.test/a.png', 'image/png', randomBytes(100));
      await store.putAsset('held', 'https://h.test/a.png', 'image/png', randomBytes(100));
      store.saveSession(meta('kept', Date.now()));
      await store.flush();
      await store.putAsset('kept', 'https://k.test/a.png', 'image/png', randomBytes(100));
      await store.prune({ isLive: () => false, isKnown: (id) => id === 'held' });
      const counts = await Promise.all(['forgotten', 'held', 'kept'].map(async (id) => (await store.sessionAssetStats(id)).count));
      assert.deepEqual(counts, [0, 1, 1]);
      await store.close();
    });

    test('the schema is brought up to date harmlessly at each open, and assets outlive a restart', async () => {
      const where = await backend.fresh();
      const store = await backend.open(where);
      const body = randomBytes(64);
      const { hash } = await store.putAsset('a', 'https://a.test/', 'image/gif', body);
      await store.close();
      const again = await backend.open(where);
      assert.deepEqual(await again.assetBody('a', hash), { contentType: 'image/gif', body });
      await again.close();
    });
  });
}

describe('AssetIndex', () => {
  test('waitFor resolves as soon as the URL is captured, and at once when it already is', async () => {
    const assets = new AssetIndex(new SqliteStore(dir(), log));
    const started = Date.now();
    const waiting = assets.waitFor('s', 'https://s.test/late.png', 5000);
    setTimeout(() => void assets.put('s', 'https://s.test/late.png', 'image/png', Buffer.from('png')), 100);
    const hash = await waiting;
    assert.equal(hash, sha256(Buffer.from('png')));
    assert.ok(Date.now() - started < 1000, `${Date.now() - started} ms`);
    assert.equal(await assets.waitFor('s', 'https://s.test/late.png', 5000), hash);
    assert.equal(assets.waitingCount, 0);
  });

  test('waitFor is woken by a capture that lands while it looks the URL up', async () => {
    const store = new SqliteStore(dir(), log);
    // A store slow to answer the lookup, as a remote database is: the capture lands in between.
    let answer: (hash: string | undefined) => void = () => undefined;
    const slow = Object.assign(Object.create(store) as SqliteStore, {
      assetHash: () => new Promise<string | undefined>((resolve) => (answer = resolve)),
    });
    const assets = new AssetIndex(slow);
    const waiting = assets.waitFor('s', 'https://s.test/racing.png', 5000);
    const { hash } = await assets.put('s', 'https://s.test/racing.png', 'image/png', Buffer.from('race'));
    answer(undefined);
    assert.equal(await waiting, hash);
    assert.equal(assets.waitingCount, 0);
  });

  test("waitFor gives up after its timeout or on abort, and is not woken by another session's capture", async () => {
    const assets = new AssetIndex(new SqliteStore(dir(), log));
    const timedOut = assets.waitFor('s', 'https://s.test/x', 150);
    await assets.put('other', 'https://s.test/x', 'image/png', Buffer.from('x'));
    assert.equal(await timedOut, undefined);
    const abort = new AbortController();
    const aborted = assets.waitFor('s', 'https://s.test/y', 5000, abort.signal);
    assert.equal(assets.waitingCount, 1);
    abort.abort();
    assert.equal(await aborted, undefined);
    assert.equal(assets.waitingCount, 0);
  });

  test('past its bound of waiting requests, waitFor answers at once', async () => {
    const assets = new AssetIndex(new SqliteStore(dir(), log), 2);
    const abort = new AbortController();
    const held = [assets.waitFor('s', 'https://s.test/1', 5000, abort.signal), assets.waitFor('s', 'https://s.test/2', 5000, abort.signal)];
    const started = Date.now();
    assert.equal(await assets.waitFor('s', 'https://s.test/3', 5000), undefined);
    assert.ok(Date.now() - started < 100);
    abort.abort();
    await Promise.all(held);
  });
});

describe('served content types', () => {
  test('images, CSS, fonts and media pass; SVG passes as SVG; documents, scripts and the unknown never do', () => {
    const cases: [string, string][] = [
      ['image/png', 'image/png'],
      ['IMAGE/JPEG', 'image/jpeg'],
      ['image/svg+xml', 'image/svg+xml'],
      ['image/svg+xml; charset=utf-8', 'image/svg+xml; charset=utf-8'],
      ['text/css; charset=ISO-8859-1', 'text/css; charset=ISO-8859-1'],
      ['text/css; charset="x"; foo', 'text/css; charset=x'],
      ['font/woff2', 'font/woff2'],
      ['application/vnd.ms-fontobject', 'application/vnd.ms-fontobject'],
      ['video/mp4', 'video/mp4'],
      ['text/html', 'text/plain; charset=utf-8'],
      ['text/html; charset=utf-8', 'text/plain; charset=utf-8'],
      ['application/xhtml+xml', 'text/plain; charset=utf-8'],
      ['application/xml', 'text/plain; charset=utf-8'],
      ['text/xml', 'text/plain; charset=utf-8'],
      ['text/xsl', 'text/plain; charset=utf-8'],
      ['application/rss+xml', 'text/plain; charset=utf-8'],
      ['image/svg+xml+html', 'application/octet-stream'],
      ['application/javascript', 'text/plain; charset=utf-8'],
      ['text/javascript', 'text/plain; charset=utf-8'],
      ['application/json', 'text/plain; charset=utf-8'],
      ['image/x-unknown', 'application/octet-stream'],
      ['application/pdf', 'application/octet-stream'],
      ['application/x-shockwave-flash', 'application/octet-stream'],
      ['multipart/x-mixed-replace; boundary=x', 'application/octet-stream'],
      ['', 'application/octet-stream'],
      ['text/css\r\nx-evil: 1', 'application/octet-stream'],
    ];
    for (const [captured, served] of cases) assert.equal(servedContentType(captured), served, captured);
  });
});
