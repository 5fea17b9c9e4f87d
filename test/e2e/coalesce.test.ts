// e2e: alone (it times how events are coalesced)
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Session } from '../../src/session/index.js';
import { SeqViewer } from '../helpers/seq-viewer.js';
import { startStack, streamUrl, waitFor, type Stack } from '../helpers/stack.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a crowd of viewers', () => {
  let stack: Stack;
  let session: Session;
  let t = Date.now();
  const batch = (n: number) => session.ingest(JSON.stringify(Array.from({ length: n }, () => ({ type: 3, timestamp: t++, data: { source: 1 } }))));

  before(async () => {
    stack = await startStack({ VISUAL_MAX_CONNECTIONS_PER_IP: '500', VISUAL_WEBSOCKET_MAX_CONNECTIONS: '500' });
    session = stack.server.deps.registry.create({ workflowName: 'crowd', steps: [], visual: true, quality: 'standard', limits: { bufferEvents: 5000 }, metrics: stack.server.deps.metrics });
    session.ingest(JSON.stringify([{ type: 4, timestamp: t++, data: { href: 'http://page/', width: 800, height: 600 } }, { type: 2, timestamp: t++, data: {} }]));
  });
  after(() => stack.close());

  test('sends a batch on a quiet channel at once, gets batches that arrive close together as one frame, and every viewer, early or joining mid-window, every seq once', async () => {
    const url = await streamUrl(stack, session.id);
    const crowd = Array.from({ length: 260 }, () => new SeqViewer(url));
    await Promise.all(crowd.map((v) => v.opened()));
    await waitFor('all joined', () => crowd.every((v) => v.resets === 1));

    // A batch that finds the channel quiet goes out at once, as its own frame; the two that follow
    // within the window wait for it to close and go out together.
    await sleep(100);
    const before = crowd.map((v) => v.frames);
    // The latency counted for each event (page timestamp → handed to every socket), as it is counted.
    const counted: number[] = [];
    const delivered = session.delivered.bind(session);
    session.delivered = (timestamps) => {
      counted.push(...timestamps.map((ts) => Date.now() - ts));
      delivered(timestamps);
    };
    t = Date.now();
    batch(2);
    batch(2);
    batch(2);
    const burstEnd = session.log.lastSeq;
    await waitFor('the burst delivered', () => crowd.every((v) => v.lastSeq === burstEnd));
    crowd.forEach((v, i) => assert.equal(v.frames - before[i]!, 2, 'three batches: the first at once, the other two in one frame'));
    session.delivered = delivered;
    assert.equal(counted.length, 6, 'each event counted once');
    assert.ok(counted.slice(2).every((ms) => ms >= 25), `the held-back events count their wait in the window: ${counted.join(', ')} ms`);

    const late: SeqViewer[] = [];
    for (let i = 0; i < 60; i++) {
      batch(3);
      // Batches 2 ms apart fall into one 40 ms window; every 10th batch a viewer joins while events wait in it.
      if (i % 10 === 5) late.push(new SeqViewer(url));
      await sleep(2);
    }
    await Promise.all(late.map((v) => v.opened()));
    await sleep(50);
    batch(1);
    const last = session.log.lastSeq;
    const everyone = [...crowd, ...late];
    await waitFor('everyone at the last seq', () => everyone.every((v) => v.lastSeq === last), 10_000);
    for (const v of everyone) {
      assert.equal(v.gaps + v.duplicates, 0, `viewer from seq ${v.firstSeq}: ${v.gaps} gaps, ${v.duplicates} duplicates`);
      assert.equal(v.resets, 1);
    }
    const frames = crowd[0]!.frames - 1; // minus its first reset
    assert.ok(frames < 40, `61 batches reached an early viewer in ${frames} frames`);

    session.setStatus('succeeded');
    await waitFor('everyone closed', () => everyone.every((v) => v.ws.readyState === v.ws.CLOSED));
  });

  test('a small audience gets each batch at once, as its own frame', async () => {
    const small = stack.server.deps.registry.create({ workflowName: 'small', steps: [], visual: true, quality: 'standard', limits: { bufferEvents: 5000 }, metrics: stack.server.deps.metrics });
    small.ingest(JSON.stringify([{ type: 4, timestamp: t++, data: { href: 'http://page/', width: 800, height: 600 } }, { type: 2, timestamp: t++, data: {} }]));
    const viewer = new SeqViewer(await streamUrl(stack, small.id));
    await viewer.opened();
    await waitFor('joined', () => viewer.resets === 1);
    for (let i = 0; i < 10; i++) small.ingest(JSON.stringify([{ type: 3, timestamp: t++, data: { source: 1 } }]));
    await waitFor('all ten', () => viewer.lastSeq === small.log.lastSeq);
    assert.equal(viewer.frames, 11, 'a reset and ten frames');
    viewer.ws.close();
  });
});
