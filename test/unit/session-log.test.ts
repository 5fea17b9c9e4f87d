import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RrwebEventType, type WireEvent } from '../../src/protocol/index.js';
import { SessionLog, type Batch } from '../../src/session/log.js';
import { toEntry } from '../../src/session/prepare.js';
import { eventsFrames, MAX_FRAME_CHARS } from '../../src/stream/frames.js';

const { Meta, FullSnapshot, IncrementalSnapshot } = RrwebEventType;

let clock = 1_000;
function ev(type: number, data?: unknown): WireEvent {
  clock += 1;
  return data === undefined ? { type, timestamp: clock } : { type, timestamp: clock, data };
}
const incremental = (n: number): WireEvent[] => Array.from({ length: n }, (_, i) => ev(IncrementalSnapshot, { i }));
const checkpoint = (): WireEvent[] => [ev(Meta, { href: 'https://example.test/' }), ev(FullSnapshot, { node: {} })];
const types = (events: readonly string[]): number[] => events.map((j) => (JSON.parse(j) as WireEvent).type);

describe('SessionLog seqs', () => {
  test('an empty log has lastSeq 0 and nothing retained', () => {
    const log = new SessionLog(100);
    assert.equal(log.lastSeq, 0);
    assert.equal(log.retained, 0);
    assert.equal(log.checkpointSeq, 0);
  });

  test('the first event gets seq 1', () => {
    const log = new SessionLog(100);
    const batch = log.append(incremental(3));
    assert.equal(batch?.from, 1);
    assert.equal(log.lastSeq, 3);
  });

  test('seqs continue without gaps across appends', () => {
    const log = new SessionLog(100);
    log.append(incremental(3));
    const second = log.append(incremental(2));
    const third = log.append(incremental(1));
    assert.equal(second?.from, 4);
    assert.equal(third?.from, 6);
    assert.equal(log.lastSeq, 6);
    assert.equal(log.totalEvents, 6);
  });

  test('appending nothing returns null, uses no seq and tells no listener', () => {
    const log = new SessionLog(100);
    let calls = 0;
    log.subscribe(() => calls++);
    log.append(incremental(2));
    assert.equal(log.append([]), null);
    assert.equal(log.lastSeq, 2);
    assert.equal(calls, 1);
    assert.equal(log.append(incremental(1))?.from, 3);
  });

  test('each event is kept as its JSON text and its bytes are counted', () => {
    const log = new SessionLog(100);
    const events = incremental(2);
    const batch = log.append(events);
    assert.deepEqual(batch?.events, events.map((e) => JSON.stringify(e)));
    assert.deepEqual(batch?.timestamps, events.map((e) => e.timestamp));
    assert.equal(log.totalBytes, events.reduce((n, e) => n + JSON.stringify(e).length, 0));
  });
});

describe('SessionLog checkpoints', () => {
  test('a Meta followed by a FullSnapshot sets checkpointSeq to the Meta seq', () => {
    const log = new SessionLog(100);
    log.append(incremental(4)); // seqs 1-4
    log.append([...checkpoint(), ...incremental(1)]); // Meta is seq 5
    assert.equal(log.checkpointSeq, 5);
  });

  test('a checkpoint drops older entries, so fromCheckpoint starts at the Meta', () => {
    const log = new SessionLog(100);
    log.append(incremental(4));
    log.append([...checkpoint(), ...incremental(2)]);
    const slice = log.fromCheckpoint();
    assert.equal(slice.from, 5);
    assert.deepEqual(types(slice.events), [Meta, FullSnapshot, IncrementalSnapshot, IncrementalSnapshot]);
    assert.equal(log.retained, 4);
    assert.equal(log.lastSeq, 8);
    assert.equal(log.totalEvents, 8);
  });

  test('a Meta and a FullSnapshot split across two appends still form a checkpoint', () => {
    const log = new SessionLog(100);
    log.append(incremental(3));
    const [meta, full] = checkpoint();
    assert.ok(meta && full);
    log.append([meta]); // seq 4
    assert.equal(log.checkpointSeq, 0);
    log.append([full]);
    assert.equal(log.checkpointSeq, 4);
    assert.equal(log.fromCheckpoint().from, 4);
    assert.deepEqual(types(log.fromCheckpoint().events), [Meta, FullSnapshot]);
  });

  test('a FullSnapshot with no Meta before it is not a checkpoint', () => {
    const log = new SessionLog(100);
    log.append(incremental(2));
    log.append([ev(FullSnapshot)]);
    assert.equal(log.checkpointSeq, 0);
    assert.equal(log.fromCheckpoint().from, 1);
    assert.equal(log.retained, 3);
  });

  test('a later checkpoint replaces the earlier one', () => {
    const log = new SessionLog(100);
    log.append(checkpoint()); // 1-2
    log.append(incremental(3)); // 3-5
    log.append(checkpoint()); // 6-7
    assert.equal(log.checkpointSeq, 6);
    assert.equal(log.fromCheckpoint().from, 6);
    assert.equal(log.retained, 2);
  });

  test('before any checkpoint fromCheckpoint gives everything from seq 1', () => {
    const log = new SessionLog(100);
    log.append(incremental(3));
    const slice = log.fromCheckpoint();
    assert.equal(slice.from, 1);
    assert.equal(slice.events.length, 3);
  });
});

describe('SessionLog.since', () => {
  test('returns exactly the events after the given seq', () => {
    const log = new SessionLog(100);
    const events = incremental(5);
    log.append(events);
    const slice = log.since(2);
    assert.equal(slice?.from, 3);
    assert.deepEqual(slice?.events, events.slice(2).map((e) => JSON.stringify(e)));
  });

  test('since 0 on a log without a checkpoint returns everything', () => {
    const log = new SessionLog(100);
    log.append(incremental(3));
    assert.equal(log.since(0)?.events.length, 3);
  });

  test('a since equal to lastSeq gets an empty slice, not null', () => {
    const log = new SessionLog(100);
    log.append(incremental(3));
    assert.deepEqual(log.since(3), { from: 4, events: [] });
  });

  test('a since just before the checkpoint gets everything from the checkpoint', () => {
    const log = new SessionLog(100);
    log.append(incremental(4));
    log.append(checkpoint()); // Meta is seq 5
    const slice = log.since(4);
    assert.equal(slice?.from, 5);
    assert.deepEqual(types(slice?.events ?? []), [Meta, FullSnapshot]);
  });

  test('a since older than the checkpoint gets null so the viewer is reset', () => {
    const log = new SessionLog(100);
    log.append(incremental(4));
    log.append(checkpoint());
    assert.equal(log.since(3), null);
    assert.equal(log.since(0), null);
  });

  test('a since in the future gets null', () => {
    const log = new SessionLog(100);
    log.append(incremental(3));
    assert.equal(log.since(4), null);
    assert.equal(log.since(1000), null);
  });

  test('a negative since gets null', () => {
    const log = new SessionLog(100);
    log.append(incremental(3));
    assert.equal(log.since(-1), null);
  });
});

describe('SessionLog listeners', () => {
  test('listeners get each batch synchronously, with its first seq and JSON text', () => {
    const log = new SessionLog(100);
    const seen: Batch[] = [];
    log.subscribe((b) => seen.push(b));
    log.append(incremental(2));
    const events = incremental(3);
    log.append(events);
    // No await in between: delivery happened inside append.
    assert.equal(seen.length, 2);
    assert.equal(seen[0]?.from, 1);
    assert.equal(seen[1]?.from, 3);
    assert.deepEqual(seen[1]?.events, events.map((e) => JSON.stringify(e)));
  });

  test('every subscribed listener gets the same batch', () => {
    const log = new SessionLog(100);
    const a: Batch[] = [];
    const b: Batch[] = [];
    log.subscribe((x) => a.push(x));
    log.subscribe((x) => b.push(x));
    const returned = log.append(incremental(1));
    assert.equal(a[0], returned);
    assert.equal(b[0], returned);
  });

  test('a listener sees the log already updated (since works inside it)', () => {
    const log = new SessionLog(100);
    let lastSeqSeen = -1;
    log.subscribe((b) => {
      lastSeqSeen = log.lastSeq;
      assert.deepEqual(log.since(b.from - 1)?.events, b.events);
    });
    log.append(incremental(2));
    assert.equal(lastSeqSeen, 2);
  });

  test('an unsubscribed listener gets nothing more', () => {
    const log = new SessionLog(100);
    let calls = 0;
    const unsubscribe = log.subscribe(() => calls++);
    log.append(incremental(1));
    unsubscribe();
    log.append(incremental(1));
    assert.equal(calls, 1);
  });
});

describe('SessionLog overflow', () => {
  test('a tail past twice its checkpoint (and 12 KiB) asks for a new one, well before the event bound: joiners replay less', () => {
    let calls = 0;
    const log = new SessionLog(1000, { onOverflow: () => calls++ });
    // A checkpoint of about 10 KB: its tail may grow to about 20 KB.
    log.append([ev(Meta, { href: 'https://example.test/' }), ev(FullSnapshot, { node: { text: 'x'.repeat(10_000) } })]);
    const line = (i: number): WireEvent => ev(IncrementalSnapshot, { source: 0, texts: [{ id: 5, value: String(1e12 + i) }] });
    let appended = 0;
    while (calls === 0 && appended < 1000) log.append([line(appended++)]);
    assert.equal(calls, 1);
    const tail = log.since(log.checkpointSeq)!.events.slice(2).join('').length;
    assert.ok(tail > 20_000 && tail < 20_200, `asked at a tail of ${tail} chars, after ${appended} events`);
    // The new checkpoint trims the log back to it; the next request waits for its own tail to grow.
    log.append(checkpoint());
    log.append(incremental(10));
    assert.equal(calls, 1);
    assert.equal(log.retained, 12);
  });

  test('a small checkpoint still lets its tail reach 12 KiB before asking', () => {
    let calls = 0;
    const log = new SessionLog(1000, { onOverflow: () => calls++ });
    log.append(checkpoint());
    const line = (i: number): WireEvent => ev(IncrementalSnapshot, { source: 0, texts: [{ id: 5, value: String(1e12 + i) }] });
    let chars = 0;
    for (let i = 0; chars + 200 < 12 * 1024; i++) chars += log.append([line(i)])!.events[0]!.length;
    assert.equal(calls, 0, `asked at ${chars} chars`);
    for (let i = 0; i < 10; i++) log.append([line(i)]);
    assert.equal(calls, 1);
  });

  test('reaching maxEvents exactly does not ask for a checkpoint', () => {
    let calls = 0;
    const log = new SessionLog(5, { onOverflow: () => calls++ });
    log.append(incremental(5));
    assert.equal(calls, 0);
  });

  test('going past maxEvents asks for a checkpoint once', () => {
    let calls = 0;
    const log = new SessionLog(5, { onOverflow: () => calls++ });
    log.append(incremental(6));
    assert.equal(calls, 1);
  });

  test('more events within 2 s do not ask again', (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: 50_000 });
    let calls = 0;
    const log = new SessionLog(5, { onOverflow: () => calls++ });
    log.append(incremental(6));
    t.mock.timers.tick(1999);
    log.append(incremental(1));
    log.append(incremental(1));
    assert.equal(calls, 1);
  });

  test('if no checkpoint came within 2 s, the next append asks again', (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: 50_000 });
    let calls = 0;
    const log = new SessionLog(5, { onOverflow: () => calls++ });
    log.append(incremental(6));
    t.mock.timers.tick(2000);
    log.append(incremental(1));
    assert.equal(calls, 2);
  });

  test('events keep being retained while the checkpoint is awaited', () => {
    const log = new SessionLog(5, { onOverflow: () => {} });
    log.append(incremental(9));
    assert.equal(log.retained, 9);
    assert.equal(log.since(0)?.events.length, 9);
  });

  test('the arrival of a new checkpoint trims memory back to it', () => {
    let calls = 0;
    const log = new SessionLog(5, { onOverflow: () => calls++ });
    log.append(incremental(8)); // 1-8
    assert.equal(calls, 1);
    log.append(checkpoint()); // 9-10
    assert.equal(log.retained, 2);
    assert.equal(log.checkpointSeq, 9);
    assert.equal(log.fromCheckpoint().from, 9);
    assert.equal(log.since(7), null);
  });

  test('after a checkpoint arrives, the next overflow is asked for at once', (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: 50_000 });
    let calls = 0;
    const log = new SessionLog(5, { onOverflow: () => calls++ });
    log.append(incremental(6));
    log.append(checkpoint());
    log.append(incremental(4)); // 2 + 4 = 6 retained > 5
    assert.equal(calls, 2);
  });
});

describe('SessionLog bounds in characters', () => {
  const page = (events: WireEvent[]) => events.map(toEntry);
  const text = (chars: number): WireEvent[] => [ev(IncrementalSnapshot, { t: 'x'.repeat(chars) })];

  test('characters held are counted and given back when a checkpoint trims the log', () => {
    const log = new SessionLog({ bufferEvents: 100, maxSessionChars: 100_000 });
    log.appendPage(page(text(1000)));
    assert.ok(log.retainedChars > 1000 && log.retainedChars < 1100, String(log.retainedChars));
    log.appendPage(page(checkpoint()));
    assert.equal(log.retainedChars, checkpoint().reduce((n, e) => n + JSON.stringify(e).length, 0));
  });

  test('past half the bound after the checkpoint, a fresh checkpoint is asked for, however few the events', () => {
    let asked = 0;
    const log = new SessionLog({ bufferEvents: 100, maxSessionChars: 10_000 }, { onOverflow: () => asked++ });
    log.appendPage(page(checkpoint()));
    log.appendPage(page(text(4000)));
    assert.equal(asked, 0);
    log.appendPage(page(text(2000)));
    assert.equal(asked, 1);
  });

  test('a page batch that would pass the bound is refused whole and recording is told to stop; memory stays within it', () => {
    const reasons: string[] = [];
    const log = new SessionLog({ bufferEvents: 100, maxSessionChars: 10_000 }, { onLimit: (r) => reasons.push(r) });
    log.appendPage(page(text(6000)));
    const before = log.lastSeq;
    assert.equal(log.appendPage(page([...incremental(2), ...text(5000)])), null);
    assert.equal(log.lastSeq, before, 'no seq was used: not even the small events in front');
    assert.ok(log.retainedChars <= 10_000);
    assert.match(reasons[0] ?? '', /more than 10000 chars in memory without a new checkpoint/);
  });

  test('a page that never sends a checkpoint stops being recorded at ten times the buffer, not a million events later', () => {
    const reasons: string[] = [];
    const log = new SessionLog({ bufferEvents: 10 }, { onLimit: (r) => reasons.push(r) });
    for (let i = 0; i < 1000 && reasons.length === 0; i++) log.appendPage(page(incremental(7)));
    assert.ok(log.retained <= 100, `retained ${log.retained}`);
    assert.match(reasons[0] ?? '', /more than 100 events/);
  });

  test('server events are never refused by the bound', () => {
    const log = new SessionLog({ bufferEvents: 10, maxSessionChars: 10_000 }, { onLimit: () => {} });
    log.appendPage(page(text(9000)));
    assert.ok(log.append(text(2000)));
  });
});

describe('SessionLog listeners and release', () => {
  test('a listener that throws does not keep the batch from the log or from the other listeners', () => {
    const errors: unknown[] = [];
    const log = new SessionLog(100, { onListenerError: (e) => errors.push(e) });
    const seen: number[] = [];
    log.subscribe(() => {
      throw new RangeError('Invalid string length');
    });
    log.subscribe((b) => seen.push(b.from));
    log.append(incremental(2));
    log.append(incremental(1));
    assert.deepEqual(seen, [1, 3]);
    assert.equal(log.lastSeq, 3);
    assert.equal(errors.length, 2);
  });

  test('release drops the events but keeps seqs and counts; later server events go on from there', () => {
    const log = new SessionLog(100);
    log.append([...checkpoint(), ...incremental(3)]);
    const { totalEvents, totalBytes } = log;
    log.release();
    assert.equal(log.retained, 0);
    assert.equal(log.retainedChars, 0);
    assert.equal(log.lastSeq, 5);
    assert.equal(log.since(2), null);
    assert.equal(log.totalEvents, totalEvents);
    assert.equal(log.totalBytes, totalBytes);
    assert.equal(log.append(incremental(1))?.from, 6);
    assert.equal(log.lastSeq, 6);
    assert.equal(log.appendPage(incremental(1).map(toEntry)), null, 'a released log takes nothing more from the page');
  });

  test('derive builds once until the log changes, and forgets on release', () => {
    const log = new SessionLog(100);
    log.append(incremental(2));
    let builds = 0;
    const build = () => ++builds;
    log.derive('k', build);
    log.derive('k', build);
    assert.equal(builds, 1);
    log.append(incremental(1));
    log.derive('k', build);
    assert.equal(builds, 2);
    log.release();
    log.derive('k', build);
    assert.equal(builds, 3);
  });
});

describe('frames from the log', () => {
  test('a reset larger than a frame is a reset then events frames, contiguous, none over the bound unless one event alone is', () => {
    const third = Math.floor(MAX_FRAME_CHARS / 3);
    const events = [JSON.stringify({ t: 'a'.repeat(third) }), JSON.stringify({ t: 'b'.repeat(third) }), JSON.stringify({ t: 'c'.repeat(MAX_FRAME_CHARS + 10) }), '{"t":"d"}'];
    const frames = eventsFrames('reset', { from: 7, events }).map((b) => JSON.parse(b.toString()) as { t: string; from: number; events: unknown[] });
    assert.deepEqual(frames.map((f) => [f.t, f.from, f.events.length]), [['reset', 7, 2], ['events', 9, 1], ['events', 10, 1]]);
    assert.deepEqual(eventsFrames('reset', { from: 3, events: [] }).map((b) => b.toString()), ['{"t":"reset","from":3,"events":[]}']);
  });
});

describe('SessionLog as a copy of another node’s log (cluster mode)', () => {
  const texts = (events: WireEvent[]): string[] => events.map((e) => JSON.stringify(e));

  test('starts at the seq the first batch has, keeps that log’s numbering and its checkpoints, and tells listeners', () => {
    const log = new SessionLog(100);
    const told: Batch[] = [];
    log.subscribe((b) => told.push(b));
    log.mirror(40, texts([...checkpoint(), ...incremental(3)]), [1, 2, 3, 4, 5], 40);
    assert.equal(log.lastSeq, 44);
    assert.equal(log.checkpointSeq, 40);
    log.mirror(45, texts([...checkpoint(), ...incremental(1)]), [], 45);
    assert.equal(log.checkpointSeq, 45);
    assert.deepEqual(log.fromCheckpoint().from, 45, 'what preceded the new checkpoint is dropped');
    assert.deepEqual(types(log.fromCheckpoint().events), [Meta, FullSnapshot, IncrementalSnapshot]);
    assert.deepEqual(
      told.map((b) => b.from),
      [40, 45],
    );
    assert.deepEqual(log.since(45)?.events.length, 2);
  });

  test('a batch that does not follow the last seq is refused: a copy never holds a gap', () => {
    const log = new SessionLog(100);
    log.mirror(1, texts(incremental(2)), [], null);
    assert.throws(() => log.mirror(5, texts(incremental(1)), [], null), /does not follow seq 2/);
    assert.equal(log.lastSeq, 2);
  });
});
