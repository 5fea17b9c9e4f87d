import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CloseCode, CustomTag, RrwebEventType } from '../../src/protocol/index.js';
import { PASSWORD, WsViewer, demoWorkflow, execute, startStack, streamUrl, waitFor, type Received, type Stack } from '../helpers/stack.js';

function assertContiguous(received: Received[], from: number): void {
  received.forEach((r, i) => assert.equal(r.seq, from + i, `seq ${r.seq} at position ${i} (expected ${from + i})`));
}

describe('the event stream', () => {
  let stack: Stack;

  before(async () => {
    stack = await startStack();
  });
  after(async () => {
    await stack?.close();
  });

  async function startRun(opts: { midWaitMs?: number; holdMs?: number } = {}) {
    const { status, body } = await execute(stack.base, { workflow: demoWorkflow(stack.site.url, opts), inputs: { user: 'linus' }, visual_enabled: true });
    assert.equal(status, 202, JSON.stringify(body));
    assert.match(body.visual_stream_url ?? '', /^ws:\/\/127\.0\.0\.1:\d+\/workflows\/visual\/[0-9a-f-]{36}\?token=[\w-]+\.[\w-]+\.[\w-]+$/);
    return body;
  }

  test('three viewers receive identical event sequences, each seq exactly once, and the stream continues across a navigation', async () => {
    const run = await startRun({ midWaitMs: 300, holdMs: 300 });
    const viewers = await Promise.all([1, 2, 3].map(() => WsViewer.open(run.visual_stream_url!)));
    const ends = await Promise.all(viewers.map((v) => v.closed));
    for (const end of ends) assert.deepEqual(end, { code: CloseCode.normal, reason: 'session ended' });
    const [a, b, c] = viewers as [WsViewer, WsViewer, WsViewer];
    assert.ok(a.received.length > 50, `only ${a.received.length} events`);
    assertContiguous(a.received, a.received[0]!.seq);
    assert.deepEqual(b.received, a.received);
    assert.deepEqual(c.received, a.received);
    assert.equal(a.frames.at(-1)?.t, 'end');
    assert.equal(a.hello()?.recorded, true);

    // Every document records afresh: a Meta + FullSnapshot per page, three pages (sign-in, todo, about).
    const metas = a.received.filter((r) => r.event.type === RrwebEventType.Meta).map((r) => (r.event.data as { href: string }).href);
    assert.deepEqual(metas.map((h) => new URL(h).pathname), ['/index.html', '/todo.html', '/about.html']);
    for (const r of a.received.filter((x) => x.event.type === RrwebEventType.Meta)) {
      assert.equal(a.received.find((x) => x.seq === r.seq + 1)?.event.type, RrwebEventType.FullSnapshot);
    }
    // Step and status facts travel in the same ordered stream.
    const tags = a.received.filter((r) => r.event.type === RrwebEventType.Custom).map((r) => (r.event.data as { tag: string }).tag);
    assert.ok(tags.includes(CustomTag.step) && tags.at(-1) === CustomTag.status);

    // The run's record counts what was streamed and how long it took to reach viewers.
    const result = (await (await fetch(`${stack.base}/workflows/${run.session_id}`)).json()) as {
      status: string;
      events: { total: number; last_seq: number };
      latency_ms: { average: number | null; p95: number | null };
    };
    assert.equal(result.status, 'succeeded');
    assert.equal(result.events.last_seq, a.lastSeq);
    assert.equal(result.events.total, a.lastSeq);
    assert.ok(typeof result.latency_ms.p95 === 'number' && result.latency_ms.p95 >= 0, JSON.stringify(result.latency_ms));
  });

  test('a viewer that disconnects mid-run and reconnects with since receives every event exactly once', async () => {
    const run = await startRun({ midWaitMs: 2500, holdMs: 300 });
    const first = await WsViewer.open(run.visual_stream_url!);
    const session = stack.server.deps.registry.get(run.session_id)!;
    await waitFor('the todo page', () => first.received.some((r) => r.event.type === RrwebEventType.Meta && String((r.event.data as { href: string }).href).includes('todo')));
    await first.close();
    const epoch = first.hello()!.epoch;
    const since = first.lastSeq;
    await waitFor('events while away', () => session.log.lastSeq > since + 5);

    // A since from another epoch (say, before a server restart) gets a full reset, never a silent mismatch.
    const stale = await WsViewer.open(`${run.visual_stream_url}&since=${since}&epoch=not-this-one`);
    await waitFor('the stale viewer\'s reset', () => stale.frames.length >= 2);
    assert.equal(stale.frames[1]?.t, 'reset');
    await stale.close();

    const second = await WsViewer.open(`${run.visual_stream_url}&since=${since}&epoch=${epoch}`);
    await second.closed;
    assert.ok(!second.frames.some((f) => f.t === 'reset'), 'a resume inside the log must not reset');
    assert.equal(second.received[0]?.seq, since + 1);
    const all = [...first.received, ...second.received];
    assertContiguous(all, first.received[0]!.seq);
    assert.equal(all.at(-1)?.seq, session.log.lastSeq);

    // Once the run ended and the store has it, its events leave memory: a late viewer is told where the log ends and reads the recording.
    await waitFor('the ended log released', () => session.log.released);
    assert.equal(session.log.retained, 0);
    const late = await WsViewer.open(`${run.visual_stream_url}&since=${since}&epoch=not-this-one`);
    await late.closed;
    assert.deepEqual(late.frames.map((f) => f.t), ['hello', 'end']);
    assert.equal(late.hello()?.recorded, true);
    assert.equal(late.frames[1]?.t === 'end' && late.frames[1].lastSeq, session.log.lastSeq);
  });

  test('a password typed into the page never appears in any frame sent to viewers', async () => {
    const run = await startRun({ midWaitMs: 100, holdMs: 100 });
    const viewer = await WsViewer.open(run.visual_stream_url!);
    await viewer.closed;
    const everything = viewer.raw.join('\n');
    const INPUT = 5;
    const typed = viewer.received.filter((r) => r.event.type === RrwebEventType.IncrementalSnapshot && (r.event.data as { source: number }).source === INPUT);
    assert.ok(typed.some((r) => (r.event.data as { text: string }).text === 'linus'), 'the user name typed in the same form is streamed');
    assert.ok(everything.includes('*'.repeat(PASSWORD.length)), 'the password field shows its mask');
    for (let len = 6; len <= PASSWORD.length; len++) {
      assert.ok(!everything.includes(PASSWORD.slice(0, len)), `a ${len}-character prefix of the password leaked`);
    }
  });

  test('an unknown session is refused with 4404 and a reason', async () => {
    const viewer = await WsViewer.open(await streamUrl(stack, '00000000-0000-0000-0000-000000000000'));
    const { code, reason } = await viewer.closed;
    assert.equal(code, CloseCode.notFound);
    assert.match(reason, /unknown session/);
  });

  test('a malformed since is refused with 4400 and a reason', async () => {
    const run = await startRun({ midWaitMs: 100, holdMs: 100 });
    for (const since of ['-1', 'abc', '1e9', '99999999999999999999']) {
      const viewer = await WsViewer.open(`${run.visual_stream_url}&since=${encodeURIComponent(since)}`);
      const { code, reason } = await viewer.closed;
      assert.equal(code, CloseCode.badRequest, `since=${since}`);
      assert.match(reason, /since/);
    }
    // The run was only there to have a stream: no need to wait for its steps.
    await fetch(`${stack.base}/workflows/${run.session_id}/cancel`, { method: 'POST' });
    await stack.server.deps.runs.idle();
  });

  test('a session without visual has no stream URLs and its stream is refused', async () => {
    const { status, body } = await execute(stack.base, {
      workflow: { name: 'plain', steps: [{ type: 'navigation', url: `${stack.site.url}/about.html` }] },
    });
    assert.equal(status, 202);
    assert.equal(body.visual_stream_url, null);
    assert.equal(body.viewer_url, null);
    const viewer = await WsViewer.open(await streamUrl(stack, body.session_id));
    assert.equal((await viewer.closed).code, CloseCode.visualOff);
    await waitFor('run to end', async () => ((await (await fetch(`${stack.base}/workflows/${body.session_id}`)).json()) as { status: string }).status === 'succeeded');
  });
});

describe('connection limits', () => {
  test('viewers past VISUAL_WEBSOCKET_MAX_CONNECTIONS are refused with 1013 and a reason', async () => {
    const stack = await startStack({ VISUAL_WEBSOCKET_MAX_CONNECTIONS: '2' });
    try {
      const { body } = await execute(stack.base, { workflow: demoWorkflow(stack.site.url, { holdMs: 3000 }), inputs: { user: 'a' }, visual_enabled: true });
      const url = body.visual_stream_url!;
      const kept = [await WsViewer.open(url), await WsViewer.open(url)];
      await waitFor('both welcomed', () => kept.every((v) => v.hello()));
      const third = await WsViewer.open(url);
      const { code, reason } = await third.closed;
      assert.equal(code, CloseCode.tryAgainLater);
      assert.match(reason, /too many viewer connections \(limit 2\)/);
      // Nor does a viewer page opened now carry the stream's start (its socket will be refused too).
      const session = stack.server.deps.registry.get(body.session_id)!;
      await waitFor('the run to record its page', () => session.log.lastSeq > 2);
      const carries = async () => (await (await fetch(body.viewer_url!)).text()).includes('id="domcast-start"');
      assert.equal(await carries(), false, 'no start in a page whose socket would be refused');
      // A freed slot can be taken again.
      await kept[0]!.close();
      await waitFor('the slot to free', () => stack.server.deps.hub.connectionCount === 1);
      assert.equal(await carries(), true, 'the start, once a slot is free');
      const again = await WsViewer.open(url);
      await waitFor('welcomed after a slot freed', () => again.hello());
      await again.close();
      await kept[1]!.close();
      const health = (await (await fetch(`${stack.base}/health/visual`)).json()) as { viewers_refused: number };
      assert.equal(health.viewers_refused, 1);
    } finally {
      await stack.close();
    }
  });
});

describe('recordings off', () => {
  test('with DOMCAST_RECORDINGS=false a run streams live, is not kept, and viewers are told there is nothing to rewind', async () => {
    const stack = await startStack({ DOMCAST_RECORDINGS: 'false' });
    try {
      const { body } = await execute(stack.base, { workflow: demoWorkflow(stack.site.url, { midWaitMs: 100, holdMs: 100 }), inputs: { user: 'x' }, visual_enabled: true });
      const viewer = await WsViewer.open(body.visual_stream_url!);
      await viewer.closed;
      assert.equal(viewer.hello()?.recorded, false);
      assert.ok(viewer.received.length > 20);
      // Listed while the server remembers it (the dashboard shows it), but nothing of it is stored.
      const list = (await (await fetch(`${stack.base}/workflows/sessions`)).json()) as { sessions: { session_id: string }[] };
      assert.deepEqual(list.sessions.map((s) => s.session_id), [body.session_id]);
      const events = (await (await fetch(`${stack.base}/workflows/${body.session_id}/events`)).json()) as unknown[];
      assert.deepEqual(events, []);
    } finally {
      await stack.close();
    }
  });
});
