// e2e: alone (it times when the hub cuts slow viewers off)
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger } from '../../src/common/index.js';
import { SessionRegistry, StreamMetrics, type Session } from '../../src/session/index.js';
import { StreamHub } from '../../src/stream/index.js';
import { SeqViewer } from '../helpers/seq-viewer.js';
import { startStack, streamUrl, waitFor, type Stack } from '../helpers/stack.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A session fed from the test as a page would feed it: checkpoints now and then, bulky incremental events. */
function feeder(session: Session) {
  let t = Date.now();
  return {
    checkpoint() {
      session.ingest(JSON.stringify([{ type: 4, timestamp: t++, data: { href: 'http://page/', width: 800, height: 600 } }, { type: 2, timestamp: t++, data: { node: { id: 1 } } }]));
    },
    /** One batch of `count` events of about `size` bytes each (random, so deflate cannot shrink them). */
    batch(count: number, size: number) {
      const events = Array.from({ length: count }, () => ({ type: 3, timestamp: t++, data: { source: 0, blob: randomBytes(size * 0.75).toString('base64') } }));
      session.ingest(JSON.stringify(events));
    },
  };
}

describe('a viewer that stops reading', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ VISUAL_EVENT_BUFFER_SIZE: '2000' });
  });
  after(() => stack.close());

  test('is held to a bounded backlog, does not delay the others, and catches up from a checkpoint with a reset once it reads again', async () => {
    const hub = stack.server.deps.hub;
    const session = stack.server.deps.registry.create({ workflowName: 'slow', steps: [], visual: true, quality: 'standard', limits: { bufferEvents: 2000 }, metrics: stack.server.deps.metrics });
    const feed = feeder(session);
    feed.checkpoint();
    const url = await streamUrl(stack, session.id);
    const normal = new SeqViewer(url);
    const slow = new SeqViewer(url);
    await Promise.all([normal.opened(), slow.opened()]);
    await waitFor('both joined', () => normal.resets === 1 && slow.resets === 1);
    slow.stall();

    // ~48 MB in 240 batches: far past what the kernel's socket buffers and the 8 MiB bound can hold.
    let maxBuffered = 0;
    for (let i = 1; i <= 240; i++) {
      feed.batch(50, 4000);
      if (i % 60 === 0) feed.checkpoint();
      await sleep(5);
      maxBuffered = Math.max(maxBuffered, hub.backlog.bufferedBytes);
    }
    await waitFor('the normal viewer to have everything', () => normal.lastSeq === session.log.lastSeq, 10_000);
    assert.equal(normal.resets, 1, 'the normal viewer was never reset');
    assert.equal(normal.gaps + normal.duplicates, 0, 'the normal viewer saw every seq once, in order');

    await waitFor('the stalled viewer to be marked lagging', () => hub.backlog.lagging === 1, 5_000);
    const frameBytes = 50 * 4100;
    assert.ok(maxBuffered <= hub.maxBufferedBytes + 2 * frameBytes, `at most the bound plus a frame was queued (peak ${maxBuffered} bytes)`);
    const health = (await (await fetch(`${stack.base}/health/visual`)).json()) as { viewers_lagging: number; viewer_buffered_bytes: number };
    assert.equal(health.viewers_lagging, 1);

    slow.resume();
    await waitFor('the stalled viewer to get a reset once drained', () => slow.resets === 2, 15_000);
    feed.batch(5, 100);
    await waitFor('the stalled viewer to be live again', () => slow.lastSeq === session.log.lastSeq, 10_000);
    assert.equal(slow.gaps + slow.duplicates, 0, 'after the reset it continued without gaps or duplicates');
    assert.equal(hub.backlog.lagging, 0);
    normal.ws.close();
    slow.ws.close();
  });
});

describe('many viewers that stop reading', () => {
  test('together stay within the hub-wide budget: under pressure each is cut off at the lower bound', async () => {
    const registry = new SessionRegistry();
    const metrics = new StreamMetrics();
    const MiB = 1024 * 1024;
    const hub = new StreamHub({
      registry,
      authorize: async () => null,
      maxConnections: 100,
      maxConnectionsPerIp: 100,
      enabled: true,
      recordings: false,
      log: createLogger('silent'),
      maxBufferedBytes: 8 * MiB,
      maxTotalBufferedBytes: 4 * MiB,
      pressureBufferedBytes: 256 * 1024,
    });
    const http = createServer();
    http.on('upgrade', (req, socket, head) => hub.handleUpgrade(req, socket, head));
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    const session = registry.create({ workflowName: 'budget', steps: [], visual: true, quality: 'standard', limits: { bufferEvents: 2000 }, metrics });
    const feed = feeder(session);
    feed.checkpoint();
    const url = `ws://127.0.0.1:${(http.address() as AddressInfo).port}/workflows/visual/${session.id}`;
    const slow = Array.from({ length: 6 }, () => new SeqViewer(url));
    await Promise.all(slow.map((v) => v.opened()));
    await waitFor('all joined', () => slow.every((v) => v.resets === 1));
    slow.forEach((v) => v.stall());

    let peak = 0;
    for (let i = 1; i <= 200; i++) {
      feed.batch(50, 4000);
      await sleep(5);
      peak = Math.max(peak, hub.backlog.bufferedBytes);
    }
    await waitFor('all six lagging', () => hub.backlog.lagging === 6, 5_000);
    // Without the budget six viewers could hold 6 × 8 MiB; with it, the total stops near the budget.
    const frameBytes = 50 * 4100;
    assert.ok(peak <= 4 * MiB + 6 * (256 * 1024 + 2 * frameBytes), `peak ${peak} bytes queued for six stalled viewers`);

    slow.forEach((v) => v.resume());
    await waitFor('all reset and live', () => slow.every((v) => v.resets === 2), 15_000);
    slow.forEach((v) => v.ws.close());
    hub.close();
    await new Promise((r) => http.close(r));
  });
});
