import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CustomTag, RrwebEventType, type WireEvent } from '../../src/protocol/index.js';
import { StreamMetrics } from '../../src/session/metrics.js';
import { prepareBatch, type BatchLimits } from '../../src/session/prepare.js';
import { Session } from '../../src/session/session.js';
import { PageIngest } from '../../src/session/ingest.js';
import type { IngestPool } from '../../src/session/ingest-pool.js';
import { DEFAULT_LIMITS } from '../../src/session/limits.js';

const LIMITS: BatchLimits = { maxBatchChars: 1000, maxEventChars: 1000, maxBatchEvents: 50, maxDepth: 20 };
/** prepareBatch with small limits, its entries parsed back. */
function parseBatch(json: string, limits: BatchLimits = LIMITS): { events: WireEvent[]; rejected: number; refused?: string } {
  const { entries, ...rest } = prepareBatch(json, limits);
  return { events: entries.map((e) => JSON.parse(e.json) as WireEvent), ...rest };
}

interface CustomData {
  tag: string;
  payload: Record<string, unknown>;
}

function newSession(overrides: { visual?: boolean; bufferSize?: number; metrics?: StreamMetrics } = {}): Session {
  return new Session({
    id: 'session-1',
    workflowName: 'test workflow',
    steps: [
      { type: 'navigation', description: 'open' },
      { type: 'click', description: null },
      { type: 'input', description: 'type' },
    ],
    visual: overrides.visual ?? true,
    quality: 'standard',
    limits: { bufferEvents: overrides.bufferSize ?? 1000 },
    metrics: overrides.metrics ?? new StreamMetrics(),
  });
}

function loggedEvents(session: Session): WireEvent[] {
  return session.log.fromCheckpoint().events.map((j) => JSON.parse(j) as WireEvent);
}

function customEvents(session: Session): CustomData[] {
  return loggedEvents(session)
    .filter((e) => e.type === RrwebEventType.Custom)
    .map((e) => e.data as CustomData);
}

const pageEvents = (timestamps: number[]): string =>
  JSON.stringify(timestamps.map((timestamp) => ({ type: RrwebEventType.IncrementalSnapshot, timestamp, data: { source: 0 } })));

describe('prepareBatch', () => {
  test('keeps well-formed events in order with none rejected', () => {
    const result = parseBatch('[{"type":4,"timestamp":1,"data":{}},{"type":2,"timestamp":2}]');
    assert.deepEqual(result.events, [{ type: 4, timestamp: 1, data: {} }, { type: 2, timestamp: 2 }]);
    assert.equal(result.rejected, 0);
  });

  test('drops entries that are not rrweb events and counts them', () => {
    const result = parseBatch(
      JSON.stringify([
        { type: 3, timestamp: 10 },
        null,
        42,
        'event',
        [3, 10],
        { type: '3', timestamp: 10 },
        { type: 3 },
        { type: 3, timestamp: '10' },
        { timestamp: 10 },
        { type: 5, timestamp: 11 },
      ]),
    );
    assert.deepEqual(result.events, [{ type: 3, timestamp: 10 }, { type: 5, timestamp: 11 }]);
    assert.equal(result.rejected, 8);
  });

  test('bad JSON yields no events and one rejection instead of throwing', () => {
    assert.deepEqual(parseBatch('[{"type":3,'), { events: [], rejected: 1 });
  });

  test('JSON that is not an array yields no events and one rejection', () => {
    assert.deepEqual(parseBatch('{"type":3,"timestamp":1}'), { events: [], rejected: 1 });
    assert.deepEqual(parseBatch('null'), { events: [], rejected: 1 });
  });

  test('an empty array is no events and no rejections', () => {
    assert.deepEqual(parseBatch('[]'), { events: [], rejected: 0 });
  });

  test('a page cannot forge domcast.* custom events: they are refused and counted, other custom tags pass', () => {
    const result = parseBatch(
      JSON.stringify([
        { type: RrwebEventType.Custom, timestamp: 1, data: { tag: CustomTag.status, payload: { status: 'succeeded' } } },
        { type: RrwebEventType.Custom, timestamp: 2, data: { tag: CustomTag.step, payload: { phase: 'fail', index: 0 } } },
        { type: RrwebEventType.Custom, timestamp: 3, data: { tag: 'domcast.anything-else', payload: {} } },
        { type: RrwebEventType.Custom, timestamp: 4, data: { tag: 'app.checkout', payload: { ok: true } } },
        { type: RrwebEventType.Custom, timestamp: 5, data: null },
        { type: RrwebEventType.IncrementalSnapshot, timestamp: 6, data: { tag: 'domcast.step' } },
      ]),
    );
    assert.deepEqual(result.events.map((e) => e.timestamp), [4, 5, 6]);
    assert.equal(result.rejected, 3);
    assert.match(result.refused ?? '', /3 page-sent custom event\(s\) with a reserved domcast\.\* tag/);
  });

  test('a batch over maxBatchChars is refused without being parsed', () => {
    const result = parseBatch(`[${' '.repeat(LIMITS.maxBatchChars)}]`);
    assert.deepEqual(result.events, []);
    assert.equal(result.rejected, 1);
    assert.match(result.refused ?? '', /over 1000/);
    assert.equal(parseBatch(`[${' '.repeat(LIMITS.maxBatchChars - 2)}]`).refused, undefined, 'the bound itself is accepted');
  });

  test('an event that grows past maxEventChars once written out refuses the whole batch (1e20 is 21 digits)', () => {
    const numbers = Array(60).fill('1e20').join(',');
    const json = `[{"type":3,"timestamp":1},{"type":3,"timestamp":2,"data":[${numbers}]}]`;
    assert.ok(json.length < LIMITS.maxEventChars, 'small as sent');
    const result = parseBatch(json);
    assert.deepEqual(result.events, [], 'not even the valid first event');
    assert.match(result.refused ?? '', /event 1 is over 1000 chars once written out/);
    assert.equal(parseBatch(`[{"type":3,"timestamp":2,"data":[${Array(30).fill('1e20').join(',')}]}]`).events.length, 1, '30 of them fit');
  });

  test('an event nested deeper than maxDepth refuses the whole batch instead of overflowing the stack', () => {
    const deep = (n: number): string => `${'['.repeat(n)}${']'.repeat(n)}`;
    const result = parseBatch(`[{"type":3,"timestamp":1},{"type":3,"timestamp":2,"data":${deep(30)}}]`);
    assert.deepEqual(result.events, []);
    assert.match(result.refused ?? '', /event 1 nests deeper than 20/);
    assert.equal(parseBatch(`[{"type":3,"timestamp":2,"data":${deep(15)}}]`).events.length, 1);
    const huge = parseBatch(`[{"type":3,"timestamp":1},{"type":3,"timestamp":2,"data":${deep(20_000)}}]`, { ...LIMITS, maxBatchChars: 100_000, maxEventChars: 100_000, maxDepth: 2000 });
    assert.match(huge.refused ?? '', /nests deeper than 2000/);
  });

  test('a batch with more entries than maxBatchEvents is refused whole', () => {
    const result = parseBatch(JSON.stringify(Array.from({ length: 51 }, (_, i) => ({ type: 3, timestamp: i }))), { ...LIMITS, maxBatchChars: 10_000 });
    assert.deepEqual(result.events, []);
    assert.match(result.refused ?? '', /51 entries is over 50/);
  });

  test('a lone surrogate the page sends raw counts the six characters it is written as', () => {
    const text = '\ud800'.repeat(200);
    const json = `[{"type":3,"timestamp":1,"data":"${text}"}]`;
    assert.match(parseBatch(json, { ...LIMITS, maxBatchChars: 2000 }).refused ?? '', /over 1000 chars once written out/);
  });
});

describe('Session.ingest', () => {
  test('appends the page events to the log', () => {
    const session = newSession();
    session.ingest(pageEvents([1, 2, 3]));
    assert.equal(session.log.lastSeq, 3);
    assert.deepEqual(loggedEvents(session).map((e) => e.timestamp), [1, 2, 3]);
  });

  test('records one latency sample per event, measured from its page timestamp', (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: 10_000 });
    const metrics = new StreamMetrics();
    const session = newSession({ metrics });
    session.ingest(pageEvents([9_000, 9_500]));
    assert.equal(metrics.latency.size, 2);
    assert.equal(metrics.latency.average(), 750);
  });

  test('a page timestamp in the future counts as zero latency, not negative', (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: 10_000 });
    const metrics = new StreamMetrics();
    newSession({ metrics }).ingest(pageEvents([12_000]));
    assert.equal(metrics.latency.average(), 0);
  });

  test('counts processed events, batches and rejected entries', () => {
    const metrics = new StreamMetrics();
    const session = newSession({ metrics });
    session.ingest(pageEvents([1, 2]));
    session.ingest('[{"type":3,"timestamp":3},{"nope":true}]');
    session.ingest('not json');
    assert.equal(metrics.totalEventsProcessed, 3);
    assert.equal(metrics.totalBatches, 2);
    assert.equal(metrics.rejectedEvents, 2);
  });

  test('a batch with no valid event appends nothing and is not counted as a batch', () => {
    const metrics = new StreamMetrics();
    const session = newSession({ metrics });
    session.ingest('[{"nope":1}]');
    assert.equal(session.log.lastSeq, 0);
    assert.equal(metrics.totalBatches, 0);
    assert.equal(metrics.latency.size, 0);
  });

  test('several sessions share one StreamMetrics', () => {
    const metrics = new StreamMetrics();
    newSession({ metrics }).ingest(pageEvents([1]));
    newSession({ metrics }).ingest(pageEvents([1, 2]));
    assert.equal(metrics.totalEventsProcessed, 3);
  });

  test('says why part of a batch was refused, keeps the rest, and counts the refused events as rejected', async () => {
    const metrics = new StreamMetrics();
    const session = newSession({ metrics });
    const forged = { type: RrwebEventType.Custom, timestamp: 2, data: { tag: CustomTag.status, payload: { status: 'failed', error: 'forged' } } };
    const refused = await session.ingest(JSON.stringify([{ type: RrwebEventType.IncrementalSnapshot, timestamp: 1, data: { source: 0 } }, forged]));
    assert.match(refused ?? '', /reserved domcast/);
    assert.equal(session.log.lastSeq, 1);
    assert.deepEqual(customEvents(session), []);
    assert.equal(session.status, 'queued');
    assert.equal(metrics.rejectedEvents, 1);
    assert.equal(await session.ingest(pageEvents([3])), null, 'an ordinary batch is not refused');
  });

  test('a log past its buffer size asks the session for a snapshot', () => {
    const session = newSession({ bufferSize: 3 });
    let requests = 0;
    session.requestSnapshot = () => requests++;
    session.ingest(pageEvents([1, 2, 3, 4]));
    assert.equal(requests, 1);
  });
});

describe('Session step hooks', () => {
  test('steps start pending, in the order and with the types given', () => {
    const session = newSession();
    assert.deepEqual(
      session.steps.map((s) => [s.index, s.type, s.description, s.state]),
      [
        [0, 'navigation', 'open', 'pending'],
        [1, 'click', null, 'pending'],
        [2, 'input', 'type', 'pending'],
      ],
    );
  });

  test('stepStarted marks the step running and makes it the current step', () => {
    const session = newSession();
    session.stepStarted(1);
    assert.equal(session.steps[1]?.state, 'running');
    assert.equal(session.currentStep, 1);
  });

  test('stepStarted appends a domcast.step custom event with phase start', () => {
    const session = newSession();
    session.stepStarted(0);
    const events = loggedEvents(session);
    assert.equal(events.length, 1);
    assert.equal(events[0]?.type, RrwebEventType.Custom);
    assert.deepEqual(events[0]?.data, {
      tag: CustomTag.step,
      payload: { phase: 'start', index: 0, type: 'navigation', description: 'open' },
    });
    assert.equal(CustomTag.step, 'domcast.step');
  });

  test('stepEnded marks the step succeeded with its duration and match', () => {
    const session = newSession();
    session.stepStarted(1);
    session.stepEnded(1, { durationMs: 42, matched: '#go' });
    assert.equal(session.steps[1]?.state, 'succeeded');
    assert.equal(session.steps[1]?.durationMs, 42);
    assert.equal(session.steps[1]?.matched, '#go');
  });

  test('stepEnded appends a domcast.step custom event with phase end and the duration', () => {
    const session = newSession();
    session.stepStarted(1);
    session.stepEnded(1, { durationMs: 42 });
    const last = customEvents(session).at(-1);
    assert.deepEqual(last, { tag: 'domcast.step', payload: { phase: 'end', index: 1, type: 'click', description: null, durationMs: 42 } });
  });

  test('stepFailed marks the step failed with error, selector and screenshot', () => {
    const session = newSession();
    const png = Buffer.from('png');
    session.stepStarted(2);
    session.stepFailed(2, { durationMs: 7, error: 'no such element', selector: '#name', screenshot: png });
    const step = session.steps[2];
    assert.equal(step?.state, 'failed');
    assert.equal(step?.error, 'no such element');
    assert.equal(step?.selector, '#name');
    assert.equal(step?.screenshotAvailable, true);
    assert.equal(session.failedStep, 2);
    assert.equal(session.screenshots.get(2), png);
  });

  test('a failure without a screenshot says none is available', () => {
    const session = newSession();
    session.stepFailed(0, { durationMs: 1, error: 'x', selector: null, screenshot: null });
    assert.equal(session.steps[0]?.screenshotAvailable, false);
    assert.equal(session.screenshots.size, 0);
  });

  test('stepFailed appends a domcast.step custom event with phase fail, error and selector', () => {
    const session = newSession();
    session.stepFailed(2, { durationMs: 7, error: 'no such element', selector: '#name', screenshot: null });
    assert.deepEqual(customEvents(session).at(-1), {
      tag: 'domcast.step',
      payload: { phase: 'fail', index: 2, type: 'input', description: 'type', durationMs: 7, error: 'no such element', selector: '#name' },
    });
  });

  test('step custom events take seqs between the page events around them', () => {
    const session = newSession();
    session.ingest(pageEvents([1, 2]));
    session.stepStarted(0);
    session.ingest(pageEvents([3]));
    assert.deepEqual(loggedEvents(session).map((e) => e.type), [3, 3, RrwebEventType.Custom, 3]);
  });

  test('hooks for a step index that does not exist change nothing', () => {
    const session = newSession();
    session.stepStarted(7);
    session.stepEnded(-1, { durationMs: 1 });
    session.stepFailed(3, { durationMs: 1, error: 'x', selector: null, screenshot: null });
    assert.equal(session.currentStep, null);
    assert.equal(session.log.lastSeq, 0);
    assert.ok(session.steps.every((s) => s.state === 'pending'));
  });

  test('each hook emits status for listeners', () => {
    const session = newSession();
    let emitted = 0;
    session.on('status', () => emitted++);
    session.stepStarted(0);
    session.stepEnded(0, { durationMs: 1 });
    session.stepFailed(1, { durationMs: 1, error: 'x', selector: null, screenshot: null });
    assert.equal(emitted, 3);
  });
});

describe('Session.setStatus', () => {
  test('running records the start time and appends a domcast.status custom event', () => {
    const session = newSession();
    session.setStatus('running');
    assert.equal(session.status, 'running');
    assert.notEqual(session.startedAt, null);
    assert.deepEqual(customEvents(session), [{ tag: 'domcast.status', payload: { status: 'running', error: null } }]);
  });

  test('setting the same status twice appends only one event', () => {
    const session = newSession();
    session.setStatus('running');
    session.setStatus('running');
    assert.equal(customEvents(session).length, 1);
  });

  test('a terminal status marks the steps still pending as skipped and keeps the others', () => {
    const session = newSession();
    session.setStatus('running');
    session.stepStarted(0);
    session.stepEnded(0, { durationMs: 1 });
    session.stepStarted(1);
    session.stepFailed(1, { durationMs: 1, error: 'boom', selector: null, screenshot: null });
    session.setStatus('failed', 'boom');
    assert.deepEqual(session.steps.map((s) => s.state), ['succeeded', 'failed', 'skipped']);
  });

  test('a terminal status records the end, clears the current step and keeps the error', () => {
    const session = newSession();
    session.setStatus('running');
    session.stepStarted(0);
    session.setStatus('failed', 'browser went away');
    assert.equal(session.finished, true);
    assert.notEqual(session.endedAt, null);
    assert.equal(session.currentStep, null);
    assert.equal(session.error, 'browser went away');
  });

  test('a terminal status appends a domcast.status custom event with the error', () => {
    const session = newSession();
    session.setStatus('failed', 'boom');
    assert.deepEqual(customEvents(session).at(-1), { tag: 'domcast.status', payload: { status: 'failed', error: 'boom' } });
  });

  for (const status of ['succeeded', 'failed', 'cancelled'] as const) {
    test(`${status} is terminal`, () => {
      const session = newSession();
      session.setStatus(status);
      assert.equal(session.finished, true);
      assert.deepEqual(session.steps.map((s) => s.state), ['skipped', 'skipped', 'skipped']);
    });
  }

  test('page events ingested after the session finished are dropped', () => {
    const metrics = new StreamMetrics();
    const session = newSession({ metrics });
    session.ingest(pageEvents([1]));
    session.setStatus('succeeded');
    const lastSeq = session.log.lastSeq;
    session.ingest(pageEvents([2, 3]));
    assert.equal(session.log.lastSeq, lastSeq);
    assert.equal(metrics.totalEventsProcessed, 1);
    assert.equal(metrics.totalBatches, 1);
  });

  test('a status change after the session finished is ignored', () => {
    const session = newSession();
    session.setStatus('succeeded');
    const lastSeq = session.log.lastSeq;
    let emitted = 0;
    session.on('status', () => emitted++);
    session.setStatus('failed', 'too late');
    session.setStatus('running');
    assert.equal(session.status, 'succeeded');
    assert.equal(session.error, null);
    assert.equal(session.log.lastSeq, lastSeq);
    assert.equal(emitted, 0);
  });

  test('setStatus emits status for listeners', () => {
    const session = newSession();
    let emitted = 0;
    session.on('status', () => emitted++);
    session.setStatus('running');
    session.setStatus('succeeded');
    assert.equal(emitted, 2);
  });
});

describe('a session without visual', () => {
  test('appends no custom events for steps or status changes', () => {
    const session = newSession({ visual: false });
    session.setStatus('running');
    session.stepStarted(0);
    session.stepEnded(0, { durationMs: 1 });
    session.stepStarted(1);
    session.stepFailed(1, { durationMs: 1, error: 'x', selector: null, screenshot: null });
    session.setStatus('failed', 'x');
    assert.equal(session.log.lastSeq, 0);
    assert.equal(session.log.totalEvents, 0);
  });

  test('still tracks step states and status', () => {
    const session = newSession({ visual: false });
    session.stepStarted(0);
    session.stepEnded(0, { durationMs: 3 });
    session.setStatus('succeeded');
    assert.deepEqual(session.steps.map((s) => s.state), ['succeeded', 'skipped', 'skipped']);
    assert.equal(session.status, 'succeeded');
  });
});

describe('PageIngest', () => {
  const big = (ts: number, chars: number): string => JSON.stringify([{ type: RrwebEventType.IncrementalSnapshot, timestamp: ts, data: { t: 'x'.repeat(chars) } }]);

  test('a large batch goes to the worker and the small one sent after it still lands after it', async () => {
    const session = newSession();
    const first = session.ingest(big(1, 100_000));
    const second = session.ingest(pageEvents([2]));
    assert.equal(session.log.lastSeq, 0, 'the small one waits for the large one');
    await Promise.all([first, second]);
    assert.deepEqual(loggedEvents(session).map((e) => e.timestamp), [1, 2]);
  });

  test('the worker refuses an event that grows past the bound once written out, and nothing of its batch is kept', async () => {
    const session = new Session({
      id: 's', workflowName: 'w', steps: [], visual: true, quality: 'standard', metrics: new StreamMetrics(),
      limits: { maxEventChars: 100_000, maxSessionChars: 1_000_000 },
    });
    const numbers = Array(15_000).fill('1e20').join(',');
    const refused = await session.ingest(`[{"type":3,"timestamp":1},{"type":3,"timestamp":2,"data":[${numbers}]}]`);
    assert.match(refused ?? '', /event 1 is over 100000 chars once written out/);
    assert.equal(session.log.lastSeq, 0);
    assert.equal(await session.ingest(pageEvents([3])), null);
    assert.equal(session.log.lastSeq, 1, 'the next batch gets the next seq: no hole');
  });

  test('a page that sends more than its budget of characters stops being recorded, with the reason in its status, and its run is told to end', async () => {
    const session = new Session({
      id: 's', workflowName: 'w', steps: [], visual: true, quality: 'standard', metrics: new StreamMetrics(),
      limits: { maxEventChars: 200_000, maxSessionChars: 1_000_000 },
    });
    let statuses = 0;
    const floods: string[] = [];
    session.on('status', () => statuses++);
    session.on('flood', (r) => floods.push(r));
    const calls = Array.from({ length: 12 }, (_, i) => session.ingest(big(i, 150_000)));
    await Promise.all(calls);
    assert.deepEqual(floods, [session.recordingStopped], 'whoever drives the run is told, once');
    assert.match(session.recordingStopped ?? '', /^recording stopped: the page sent more than 1000000 chars at once/);
    assert.ok(session.log.retainedChars <= 1_000_000);
    assert.equal(statuses, 1);
    const last = session.log.lastSeq;
    assert.equal(await session.ingest(pageEvents([99])), null);
    assert.equal(session.log.lastSeq, last, 'later batches are dropped unread');
    assert.deepEqual(customEvents(session).at(-1), { tag: CustomTag.recording, payload: { state: 'stopped', reason: session.recordingStopped } });
  });

  test('a page whose batches take more than the preparation budget stops being recorded', async () => {
    const fakePool = { prepare: async () => ({ batch: { entries: [], rejected: 0 }, ms: 4000 }) } as unknown as IngestPool;
    let flooded = '';
    const target = { accept: () => null, stop: () => assert.fail('a flood, not a full log'), flood: (r: string) => (flooded = r), isFinished: () => false, isStopped: () => false };
    const ingest = new PageIngest(DEFAULT_LIMITS, target, fakePool);
    await ingest.ingest(big(1, 100_000));
    assert.match(flooded, /preparing the page's batches took more than 3000 ms/);
  });
});
