import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { build } from 'esbuild';
import { assetPath } from '../../src/assets/paths.js';
import { AssetRewriter } from '../../src/assets/rewrite.js';
import { RrwebEventType, type WireEvent } from '../../src/protocol/index.js';
import { PageIngest, type IngestTarget } from '../../src/session/ingest.js';
import { IngestPool, type Prepared } from '../../src/session/ingest-pool.js';
import { handleRequest, type IngestRequest } from '../../src/session/ingest-worker.js';
import { DEFAULT_LIMITS, INLINE_MAX_CHARS, type RecordingLimits } from '../../src/session/limits.js';
import { StreamMetrics } from '../../src/session/metrics.js';
import type { PreparedBatch } from '../../src/session/prepare.js';
import { Session } from '../../src/session/session.js';

const ID = 'session-a';
const url = (path: string): string => `https://site.example/${path}`;
const asset = (path: string): string => assetPath(ID, url(path));

function newSession(init: { assets?: boolean; limits?: Partial<RecordingLimits> } = {}): Session {
  return new Session({ id: ID, workflowName: 'w', steps: [{ type: 'click', description: 'url(https://site.example/step.png)' }], visual: true, quality: 'standard', metrics: new StreamMetrics(), ...init });
}

const logged = (session: Session): WireEvent[] => session.log.fromCheckpoint().events.map((j) => JSON.parse(j) as WireEvent);

/** A FullSnapshot with a <style> (text node 11), an <img> and, to make it large, a padded text. */
function fullSnapshot(pad = 0): WireEvent {
  return {
    type: RrwebEventType.FullSnapshot,
    timestamp: 2,
    data: {
      initialOffset: { top: 0, left: 0 },
      node: {
        type: 0,
        id: 1,
        childNodes: [
          {
            type: 2,
            id: 2,
            tagName: 'html',
            attributes: {},
            childNodes: [
              { type: 2, id: 10, tagName: 'style', attributes: {}, childNodes: [{ type: 3, id: 11, isStyle: true, textContent: `a{background:url(${url('a.png')})}` }] },
              { type: 2, id: 12, tagName: 'img', attributes: { src: url('b.png') }, childNodes: [] },
              { type: 3, id: 13, textContent: 'x'.repeat(pad) },
            ],
          },
        ],
      },
    },
  };
}

const meta: WireEvent = { type: RrwebEventType.Meta, timestamp: 1, data: { href: url('page'), width: 800, height: 600 } };
const styleText = (value: string, timestamp = 3): WireEvent => ({
  type: RrwebEventType.IncrementalSnapshot,
  timestamp,
  data: { source: 0, texts: [{ id: 11, value }], attributes: [], removes: [], adds: [] },
});

/** A target that keeps what it is given, parsed. */
function collector(): { target: IngestTarget; events: WireEvent[] } {
  const events: WireEvent[] = [];
  const target: IngestTarget = {
    accept: (batch: PreparedBatch) => {
      for (const e of batch.entries) events.push(JSON.parse(e.json) as WireEvent);
      return batch.refused ?? null;
    },
    stop: () => assert.fail('stopped'),
    flood: () => assert.fail('flooded'),
    isFinished: () => false,
    isStopped: () => false,
  };
  return { target, events };
}

/** The worker's handling, across a copy as a thread boundary would make. */
const clonedPool = {
  prepare: async (json: string, limits: IngestRequest['limits'], assets?: IngestRequest['assets']): Promise<Prepared> => {
    const reply = structuredClone(handleRequest(structuredClone({ id: 1, json, limits, ...(assets ? { assets } : {}) })));
    return { batch: reply.result, ms: reply.ms, ...(reply.assets ? { assets: reply.assets } : {}) };
  },
} as unknown as IngestPool;

/** A large batch (worker) with the snapshot, then small ones (inline) that change its style text, then the reverse. */
async function worksAcrossWorkerAndInline(pool: IngestPool): Promise<void> {
  const { target, events } = collector();
  const ingest = new PageIngest(DEFAULT_LIMITS, target, pool, new AssetRewriter(ID));
  const large = JSON.stringify([meta, fullSnapshot(INLINE_MAX_CHARS)]);
  assert.ok(large.length > INLINE_MAX_CHARS);
  await ingest.ingest(large);
  await ingest.ingest(JSON.stringify([styleText(`b{background:url(${url('c.png')})}`)]));
  const bigText = styleText(`c{background:url(${url('d.png')})}/*${'x'.repeat(INLINE_MAX_CHARS)}*/`, 4);
  await ingest.ingest(JSON.stringify([bigText]));
  await ingest.ingest(JSON.stringify([{ type: RrwebEventType.FullSnapshot, timestamp: 5, data: { node: { type: 0, id: 1, childNodes: [] } } }]));
  await ingest.ingest(JSON.stringify([styleText(`d{background:url(${url('e.png')})}`, 6)]));
  const texts = events.filter((e) => e.type === RrwebEventType.IncrementalSnapshot).map((e) => (e.data as { texts: { value: string }[] }).texts[0]!.value);
  assert.deepEqual(texts, [
    `b{background:url(${asset('c.png')})}`,
    `c{background:url(${asset('d.png')})}/*${'x'.repeat(INLINE_MAX_CHARS)}*/`,
    // A new document: node 11 is no longer known to be style text.
    `d{background:url(${url('e.png')})}`,
  ]);
  const snapshot = JSON.stringify(events.find((e) => e.type === RrwebEventType.FullSnapshot));
  assert.ok(snapshot.includes(`url(${asset('a.png')})`) && snapshot.includes(`"src":"${asset('b.png')}"`));
}

describe('asset URLs on the ingest path', () => {
  test("a session with assets has its page's events rewritten before they reach the log; one without does not", async () => {
    const batch = JSON.stringify([meta, fullSnapshot()]);
    const withAssets = newSession({ assets: true });
    const without = newSession();
    await withAssets.ingest(batch);
    await without.ingest(batch);
    const kept = JSON.stringify(logged(withAssets));
    assert.ok(kept.includes(asset('a.png')) && kept.includes(asset('b.png')));
    assert.ok(!kept.includes(`url(${url('a.png')})`));
    assert.equal(JSON.stringify(logged(without)), JSON.stringify([meta, fullSnapshot()]));
  });

  test("the server's own custom events are never rewritten", async () => {
    const session = newSession({ assets: true });
    await session.ingest(JSON.stringify([meta, fullSnapshot()]));
    session.stepStarted(0);
    const step = logged(session).at(-1)!;
    assert.equal(step.type, RrwebEventType.Custom);
    assert.equal((step.data as { payload: { description: string } }).payload.description, 'url(https://site.example/step.png)');
  });

  test('the size bound holds on the rewritten event: one that the rewrite takes past it is refused whole', async () => {
    const limits = { maxEventChars: 4000, maxSessionChars: 1_000_000 };
    const srcset = Array.from({ length: 100 }, (_, i) => `http://h/${i} 1x`).join(',');
    const event = { type: RrwebEventType.FullSnapshot, timestamp: 1, data: { node: { type: 2, id: 1, tagName: 'img', attributes: { srcset }, childNodes: [] } } };
    const json = JSON.stringify([event]);
    assert.ok(json.length < 2000);
    const session = newSession({ assets: true, limits });
    assert.match((await session.ingest(json)) ?? '', /event 0 is over 4000 chars once written out/);
    assert.equal(session.log.lastSeq, 0);
    assert.equal(await newSession({ limits }).ingest(json), null, 'without the rewrite it fits');
  });

  test("the rewrite's state follows the page's batches, whether prepared here or in the worker (copied across)", async () => {
    await worksAcrossWorkerAndInline(clonedPool);
  });

  describe('with a real worker thread', () => {
    let dir: string;
    let pool: IngestPool;
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'domcast-worker-'));
      const script = join(dir, 'ingest-worker.js');
      await build({ entryPoints: [join(import.meta.dirname, '../../src/session/ingest-worker.ts')], outfile: script, bundle: true, platform: 'node', format: 'esm', target: 'node20', logLevel: 'warning' });
      pool = new IngestPool(1, script);
    });
    after(async () => {
      await pool.close();
      rmSync(dir, { recursive: true, force: true });
    });

    test("the rewrite's state follows the page's batches between the worker and the event loop", async () => {
      await worksAcrossWorkerAndInline(pool);
    });
  });
});
