import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { openStream, StreamPublisher, streamKeys, StreamTail, type StreamEntry, type StreamState, type TailHandler } from '../../src/cluster/index.js';
import { withStreamCommands } from '../../src/cluster/stream-keys.js';
import { RrwebEventType, type WireEvent } from '../../src/protocol/index.js';
import { SessionLog } from '../../src/session/log.js';

// A real Redis on 127.0.0.1 (.ci/run starts one if none is running); each test has keys of its own.
const REDIS_URL = process.env.DOMCAST_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const { Meta, FullSnapshot, IncrementalSnapshot } = RrwebEventType;

let clock = 1_000;
const ev = (type: number, data: unknown): WireEvent => ({ type, timestamp: ++clock, data });
const incremental = (n: number): WireEvent[] => Array.from({ length: n }, (_, i) => ev(IncrementalSnapshot, { i, text: 'x'.repeat(40) }));
const checkpoint = (): WireEvent[] => [ev(Meta, { href: 'https://example.test/' }), ev(FullSnapshot, { node: { id: 1, pad: 'y'.repeat(200) } })];

/** What a viewer would hold: the events by seq, rebuilt on each reset. */
class Viewer implements TailHandler {
  events = new Map<number, string>();
  resets: StreamState[] = [];
  delivered: number[] = [];
  ended: string | null = null;
  private waiters: (() => void)[] = [];
  reset(state: StreamState): void {
    this.resets.push(state);
    this.events = new Map(state.events.map((e, i) => [state.from + i, e]));
    this.poke();
  }
  batch({ seq: from, events }: StreamEntry): void {
    events.forEach((e, i) => {
      assert.equal(this.events.has(from + i), false, `seq ${from + i} delivered twice`);
      this.events.set(from + i, e);
      this.delivered.push(from + i);
    });
    this.poke();
  }
  end(status: string): void {
    this.ended = status;
    this.poke();
  }
  get lastSeq(): number {
    return Math.max(0, ...this.events.keys());
  }
  async until(check: () => boolean, what: string, ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!check()) {
      const left = deadline - Date.now();
      if (left <= 0) assert.fail(`timed out waiting for ${what}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, Math.min(left, 50));
      });
    }
  }
  private poke(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

/** The log's events from `from` on, as the log holds them. */
function logFrom(log: SessionLog, from: number): Map<number, string> {
  const slice = log.fromCheckpoint();
  return new Map(slice.events.map((e, i) => [slice.from + i, e] as const).filter(([seq]) => seq >= from));
}

describe('session logs on Redis streams', () => {
  let redis: Redis;
  let blocking: Redis;
  let tail: StreamTail;
  const prefix = `domcast-test-${randomUUID().slice(0, 8)}`;
  const errors: unknown[] = [];

  before(() => {
    redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    blocking = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    tail = new StreamTail(redis, blocking, prefix, (err) => errors.push(err));
  });

  after(async () => {
    await tail.close();
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
    blocking.disconnect();
  });

  test('a tail on another connection gets every batch in log order, none twice, across checkpoints', async () => {
    const log = new SessionLog({ bufferEvents: 10_000 });
    const publisher = new StreamPublisher(redis, 's1', log, { prefix });
    await publisher.start();
    log.append(checkpoint());
    log.append(incremental(5));
    const viewer = new Viewer();
    assert.equal(await tail.watch('s1', viewer), true);
    assert.equal(viewer.resets.length, 1);
    assert.equal(viewer.resets[0]!.from, 1);
    for (let round = 0; round < 20; round++) {
      log.append(incremental(1 + (round % 4)));
      if (round % 7 === 6) log.append(checkpoint());
      // As live: the tail keeps up. One that falls two checkpoints behind is trimmed past and gets a reset.
      await viewer.until(() => viewer.lastSeq === log.lastSeq, `round ${round}`);
    }
    await viewer.until(() => viewer.lastSeq === log.lastSeq, 'the last seq');
    assert.deepEqual([...viewer.events.entries()].filter(([seq]) => seq >= log.checkpointSeq), [...logFrom(log, log.checkpointSeq).entries()]);
    const delivered = viewer.delivered;
    assert.deepEqual(delivered, Array.from({ length: delivered.length }, (_, i) => delivered[0]! + i), 'in order, without a gap');
    assert.equal(viewer.resets.length, 1, 'no reset while nothing went wrong');
    tail.unwatch('s1');
    publisher.close();
  });

  test('a late joiner reads from the latest checkpoint; the stream keeps one checkpoint before it, no more', async () => {
    const log = new SessionLog({ bufferEvents: 10_000 });
    const publisher = new StreamPublisher(redis, 's2', log, { prefix });
    await publisher.start();
    const checkpoints: number[] = [];
    for (let i = 0; i < 5; i++) {
      log.append([checkpoint()[0]!]);
      // The Meta and its FullSnapshot in separate batches: the entry holding the Meta is kept.
      log.append([checkpoint()[1]!, ...incremental(3)]);
      checkpoints.push(log.checkpointSeq);
      log.append(incremental(4));
    }
    await redis.ping(); // every append before it has been applied
    const state = await openStream(redis, prefix, 's2');
    assert.ok(state);
    assert.equal(state.from, log.checkpointSeq);
    assert.equal(state.checkpoint, log.checkpointSeq);
    assert.equal(state.lastSeq, log.lastSeq);
    assert.deepEqual(state.events, log.fromCheckpoint().events);
    assert.equal(state.ended, null);
    const entries = await redis.xrange(streamKeys(prefix, 's2').stream, '-', '+');
    const firstKept = Number.parseInt(entries[0]![0], 10);
    assert.equal(firstKept, checkpoints.at(-2), 'trimmed (MINID) at the previous checkpoint');
    publisher.close();
  });

  test('a stream lost while the run goes on starts over under a new epoch, and the tail gets a reset', async () => {
    const log = new SessionLog({ bufferEvents: 10_000 });
    const resyncs: string[] = [];
    const publisher = new StreamPublisher(redis, 's3', log, { prefix, onResync: (why) => resyncs.push(why) });
    await publisher.start();
    log.append(checkpoint());
    log.append(incremental(3));
    const viewer = new Viewer();
    await tail.watch('s3', viewer);
    const firstEpoch = publisher.epoch;
    await viewer.until(() => viewer.lastSeq === log.lastSeq, 'the first batches');

    const keys = streamKeys(prefix, 's3');
    await redis.del(keys.stream, keys.meta); // as after a Redis restart without persistence
    log.append(incremental(2));
    log.append(incremental(2));
    await viewer.until(() => viewer.resets.length === 2 && viewer.lastSeq === log.lastSeq, 'a reset with every event');
    assert.notEqual(publisher.epoch, firstEpoch);
    assert.equal(viewer.resets[1]!.epoch, publisher.epoch);
    assert.deepEqual([...viewer.events.entries()], [...logFrom(log, 1).entries()]);
    assert.match(resyncs[0]!, /gone/);

    // Lost while the page is quiet: the worker checks when Redis comes back (verify), the tail is told.
    await redis.del(keys.stream, keys.meta);
    await publisher.verify();
    await viewer.until(() => viewer.resets.length === 3, 'a reset after verify');
    log.append(incremental(1));
    await viewer.until(() => viewer.lastSeq === log.lastSeq, 'the batch after');
    assert.deepEqual([...viewer.events.entries()], [...logFrom(log, 1).entries()]);
    tail.unwatch('s3');
    publisher.close();
  });

  test('while Redis does not answer, the publisher holds a bounded amount and sends the checkpoint again after', async () => {
    const log = new SessionLog({ bufferEvents: 10_000 });
    const publisher = new StreamPublisher(redis, 's4', log, { prefix, maxInFlightChars: 4_000 });
    await publisher.start();
    log.append(checkpoint());
    const viewer = new Viewer();
    await tail.watch('s4', viewer);
    const pauser = new Redis(REDIS_URL);
    await pauser.call('CLIENT', 'PAUSE', '300', 'WRITE');
    for (let i = 0; i < 40; i++) log.append(incremental(2)); // ~8 KB: past the bound while Redis is paused
    await viewer.until(() => viewer.lastSeq === log.lastSeq && viewer.resets.length === 2, 'everything, through a reset');
    assert.ok(publisher.resyncs >= 1);
    assert.deepEqual([...viewer.events.entries()], [...logFrom(log, 1).entries()]);
    pauser.disconnect();
    tail.unwatch('s4');
    publisher.close();
  });

  test('a session watched while the tail blocks on another is followed at once, not after the block', async () => {
    const quiet = new SessionLog({ bufferEvents: 10_000 });
    const quietPublisher = new StreamPublisher(redis, 's5a', quiet, { prefix });
    await quietPublisher.start();
    quiet.append(checkpoint());
    await tail.watch('s5a', new Viewer());
    await new Promise((r) => setTimeout(r, 100)); // the tail is now blocked on s5a alone

    const log = new SessionLog({ bufferEvents: 10_000 });
    const publisher = new StreamPublisher(redis, 's5b', log, { prefix });
    await publisher.start();
    log.append(checkpoint());
    const viewer = new Viewer();
    await tail.watch('s5b', viewer);
    log.append(incremental(1));
    // The tail blocks for 5 s at a time: 2 s is only met if it was woken for the new watch.
    await viewer.until(() => viewer.lastSeq === log.lastSeq, 'the batch after the watch', 2000);
    tail.unwatch('s5a');
    tail.unwatch('s5b');
    quietPublisher.close();
    publisher.close();
  });

  test('the end reaches the tail and a late joiner, then the stream expires', async () => {
    const log = new SessionLog({ bufferEvents: 10_000 });
    const publisher = new StreamPublisher(redis, 's6', log, { prefix });
    await publisher.start();
    log.append(checkpoint());
    log.append(incremental(3));
    const viewer = new Viewer();
    await tail.watch('s6', viewer);
    log.append(incremental(1));
    await publisher.end('succeeded', 400);
    await viewer.until(() => viewer.ended === 'succeeded', 'the end');
    assert.equal(viewer.lastSeq, log.lastSeq, 'every event before the end');
    const late = new Viewer();
    assert.equal(await tail.watch('s6', late), true);
    assert.equal(late.ended, 'succeeded');
    assert.equal(late.lastSeq, log.lastSeq);
    assert.equal(tail.watched, 0);
    const keys = streamKeys(prefix, 's6');
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(await redis.exists(keys.stream, keys.meta), 0, 'expired');
    assert.equal(await tail.watch('s6', new Viewer()), false, 'an expired stream is not watched');
  });

  test('a batch sent again after a dropped connection is acknowledged, not refused; an ended stream is never seeded again', async () => {
    const log = new SessionLog({ bufferEvents: 10_000 });
    const publisher = new StreamPublisher(redis, 's7', log, { prefix });
    await publisher.start();
    log.append(checkpoint());
    await redis.ping();
    const keys = streamKeys(prefix, 's7');
    const commands = withStreamCommands(redis);
    const again = await commands.domcastLogAppend(keys.stream, keys.meta, '1', 2, log.fromCheckpoint().events.join('\n'), '', 0, 0, publisher.epoch, '');
    assert.deepEqual(again, ['ok', '1'], 'the same batch again is done already');
    const ahead = await commands.domcastLogAppend(keys.stream, keys.meta, '9', 1, '{}', '', 0, 0, publisher.epoch, '');
    assert.deepEqual(ahead, ['gap', '2']);
    assert.ok((await redis.pttl(keys.stream)) > 3_600_000, 'a live stream expires only a day after its last write');

    await publisher.end('succeeded', 60_000);
    assert.equal(await commands.domcastLogSeed(keys.stream, keys.meta, 'another-epoch', 1, 0, '', '', 1, Date.now(), ''), 'ended');
    assert.equal(await redis.hget(keys.meta, 'ended'), 'succeeded', 'the end stays');
    assert.ok((await redis.pttl(keys.meta)) <= 60_000, 'and so does its expiry');
  });

  test('Redis back from an older snapshot (same epoch, fewer events): verify starts the stream over', async () => {
    const log = new SessionLog({ bufferEvents: 10_000 });
    const publisher = new StreamPublisher(redis, 's8', log, { prefix });
    await publisher.start();
    log.append(checkpoint());
    log.append(incremental(2));
    const viewer = new Viewer();
    await tail.watch('s8', viewer);
    log.append(incremental(2));
    await viewer.until(() => viewer.lastSeq === log.lastSeq, 'every event');
    const keys = streamKeys(prefix, 's8');
    // As a snapshot taken before the last batch: its entry and its seq are not there.
    const entries = await redis.xrange(keys.stream, '-', '+');
    await redis.xdel(keys.stream, entries.at(-1)![0]);
    await redis.hset(keys.meta, 'seq', String(log.lastSeq - 2));
    await publisher.verify();
    await viewer.until(() => viewer.resets.length === 2, 'a reset');
    assert.equal(viewer.resets[1]!.lastSeq, log.lastSeq);
    assert.deepEqual([...viewer.events.entries()], [...logFrom(log, 1).entries()]);
    tail.unwatch('s8');
    publisher.close();
  });

  test('tails saw no Redis errors', () => {
    assert.deepEqual(errors, []);
  });
});
