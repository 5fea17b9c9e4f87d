// e2e: alone (hostile pages load the machine on purpose)
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { projectRoot } from '../../src/common/index.js';
import { serveStatic, type StaticSite } from '../../src/cli/static-site.js';
import type { WireEvent } from '../../src/protocol/index.js';
import type { Session } from '../../src/session/index.js';
import { MAX_FRAME_CHARS } from '../../src/stream/frames.js';
import { demoWorkflow, execute, startStack, streamUrl, WsViewer, type Stack } from '../helpers/stack.js';

/**
 * The hostile corpus (test/fixtures/pages/hostile-corpus/) recorded for real, each page beside an
 * ordinary run with a viewer. Bounds are set small so the pages reach them in a few seconds.
 */
const MIB = 1024 * 1024;
const SESSION_MAX_MB = 8;
const EVENT_MAX_MB = 2;
const BUFFER_EVENTS = 50;

let stack: Stack;
let corpus: StaticSite;

before(async () => {
  stack = await startStack({
    BROWSER_ISOLATION: 'run',
    ALLOWED_HOSTS: '127.0.0.1',
    VISUAL_SESSION_MAX_MB: String(SESSION_MAX_MB),
    VISUAL_MAX_EVENT_MB: String(EVENT_MAX_MB),
    VISUAL_EVENT_BUFFER_SIZE: String(BUFFER_EVENTS),
    MAX_CONCURRENT_SESSIONS: '2',
  });
  corpus = await serveStatic(join(projectRoot, 'test', 'fixtures', 'pages', 'hostile-corpus'));
});

after(async () => {
  await stack.close();
  await corpus.close();
});

interface Watch {
  session: Session;
  viewer: WsViewer;
  /** Largest memory the session's log held, sampled every 10 ms while the run went. */
  peak: { chars: number; events: number };
  checkpoints: Set<number>;
  done: Promise<void>;
}

async function watch(sessionId: string): Promise<Watch> {
  const session = stack.server.deps.registry.get(sessionId)!;
  const viewer = await WsViewer.open(await streamUrl(stack, sessionId));
  const peak = { chars: 0, events: 0 };
  const checkpoints = new Set<number>();
  const done = (async () => {
    while (!session.finished) {
      peak.chars = Math.max(peak.chars, session.log.retainedChars);
      peak.events = Math.max(peak.events, session.log.retained);
      checkpoints.add(session.log.checkpointSeq);
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  return { session, viewer, peak, checkpoints, done };
}

/** Runs a corpus page for `holdMs` beside the demo run, and checks the demo run and its viewer never noticed. */
async function runBeside(page: string, holdMs: number): Promise<Watch> {
  const hostile = await execute(stack.base, {
    workflow: { name: `hostile ${page}`, steps: [{ type: 'navigation', url: `${corpus.url}/${page}` }, { type: 'wait', ms: holdMs }] },
    visual_enabled: true,
  });
  assert.equal(hostile.status, 202, JSON.stringify(hostile.body));
  const ordinary = await execute(stack.base, { workflow: demoWorkflow(stack.site.url, { midWaitMs: 300, holdMs: 300 }), inputs: { user: 'o' }, visual_enabled: true });
  const [h, o] = await Promise.all([watch(hostile.body.session_id), watch(ordinary.body.session_id)]);
  await Promise.all([h.done, o.done]);
  await o.viewer.closed;
  assert.equal(o.session.status, 'succeeded', o.session.error ?? '');
  assert.ok(!o.session.recordingStopped, 'the ordinary run is recorded to its end');
  const seqs = o.viewer.received.map((r) => r.seq);
  assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => seqs[0]! + i), 'the ordinary viewer got every seq once, in order');
  assert.equal(seqs.at(-1), o.session.log.lastSeq);
  await h.viewer.closed;
  const health = await fetch(`${stack.base}/health`);
  assert.equal(health.status, 200, 'the server is up');
  return h;
}

function assertBounded(w: Watch): void {
  assert.ok(w.peak.chars <= SESSION_MAX_MB * MIB, `the hostile log held ${w.peak.chars} chars`);
  assert.ok(w.peak.events <= BUFFER_EVENTS * 10, `the hostile log held ${w.peak.events} events`);
  for (const raw of w.viewer.raw) assert.ok(raw.length <= MAX_FRAME_CHARS + EVENT_MAX_MB * MIB, `a frame of ${raw.length} chars`);
}

async function record(id: string): Promise<{ status: string; recording_stopped: string | null; events: { total: number; last_seq: number } }> {
  return (await (await fetch(`${stack.base}/workflows/${id}`)).json()) as never;
}

describe('hostile pages beside an ordinary run', () => {
  test('huge numbers (1e20 written out 21 digits long): refused by their size once written out; nothing grows past the bounds', async () => {
    const w = await runBeside('huge-numbers.html?mb=1.5&count=3&every=300', 4000);
    assertBounded(w);
    // The session's own count: other runs' refusals are no proof of this one's.
    assert.ok(w.session.rejectedEvents >= 3, `each huge batch was refused (${w.session.rejectedEvents} events refused)`);
    const huge = w.viewer.received.filter((r) => r.json.includes('100000000000000000000'));
    assert.deepEqual(huge, [], 'no viewer was sent a huge-number event');
  });

  test('deep nesting: the batch is refused whole, and the log, the counts, the store and the stream agree seq for seq', async () => {
    const w = await runBeside('deep-nesting.html?depth=20000&count=4&every=300', 2000);
    assertBounded(w);
    const id = w.session.id;
    await stack.server.deps.store.flush();
    const rec = await record(id);
    assert.equal(rec.events.total, rec.events.last_seq, 'every seq was used once: no hole');
    const stored = (await (await fetch(`${stack.base}/workflows/${id}/events`)).json()) as WireEvent[];
    assert.equal(stored.length, rec.events.last_seq, 'the store has every seq');
    const seqs = w.viewer.received.map((r) => r.seq);
    assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => seqs[0]! + i));
    assert.equal(seqs.at(-1), rec.events.last_seq, 'the viewer got up to the last seq');
  });

  test('tampered built-ins (push drops snapshots): the checkpoints the server asks for still arrive, and the log stays bounded', async () => {
    const w = await runBeside('proto-tamper.html?every=2&nodes=40', 6000);
    assertBounded(w);
    assert.ok(w.session.log.totalEvents > BUFFER_EVENTS * 3, `the page made ${w.session.log.totalEvents} events: enough to need checkpoints`);
    // The recorder's own buffer does not use the page's push: the checkpoints asked for arrive.
    assert.ok(w.checkpoints.size > 2 || w.session.recordingStopped !== null, `checkpoints ${[...w.checkpoints].join(',')}`);
  });

  test('tampered built-ins that break rrweb itself (push does nothing): still bounded, and the run ends', async () => {
    const w = await runBeside('proto-tamper.html?push=noop&arrays=wrong&skip=&every=2&nodes=40', 2500);
    assertBounded(w);
    assert.ok(w.session.finished);
  });

  test('a binding flood stops the recording with a clear status, viewers are told, and the run is ended so its traffic stops', async () => {
    // Held long enough for a slow, loaded machine to pass the budget; the flood ends the run well before.
    const w = await runBeside('binding-flood.html?rate=2000&kb=256&huge=0', 15_000);
    assertBounded(w);
    assert.match(w.session.recordingStopped ?? '', /^recording stopped: the page('s recording would hold| sent) more than/);
    const end = w.viewer.frames.find((f) => f.t === 'end');
    assert.ok(end && end.t === 'end' && (end.reason === w.session.recordingStopped || end.status === 'failed'), JSON.stringify(end));
    const rec = await record(w.session.id);
    assert.equal(rec.recording_stopped, w.session.recordingStopped);
    assert.equal(rec.status, 'failed', 'a page that keeps flooding ends its run');
    assert.match(String((rec as { error?: string }).error), /sent more than .*the run was ended/);
  });

  test('forged checkpoints with big payloads, many a second: bounded, then stopped and the run ended', async () => {
    const w = await runBeside('forged-checkpoints.html?kb=1024&every=20', 8000);
    assertBounded(w);
    assert.match(w.session.recordingStopped ?? '', /recording stopped/);
    assert.equal(w.session.status, 'failed', w.session.error ?? '');
  });
});
