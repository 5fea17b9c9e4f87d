import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { IDLE_MS, SessionMirrors, sessionView, StreamPublisher, streamKeys, StreamTail } from '../../src/cluster/index.js';
import { createLogger } from '../../src/common/index.js';
import { CloseCode, RrwebEventType, type WireEvent } from '../../src/protocol/index.js';
import { SessionRegistry, StreamMetrics, type Session } from '../../src/session/index.js';
import { StreamHub } from '../../src/stream/hub.js';
import { waitFor, WsViewer } from '../helpers/stack.js';

// A real Redis on 127.0.0.1 (.ci/run starts one if none is running); keys under a prefix of this test's own.
const REDIS_URL = process.env.DOMCAST_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const { Meta, FullSnapshot, IncrementalSnapshot } = RrwebEventType;
const silent = createLogger('silent');

let clock = 1_000;
const ev = (type: number, data: unknown): WireEvent => ({ type, timestamp: ++clock, data });
const checkpoint = (n: number): WireEvent[] => [ev(Meta, { href: `https://example.test/${n}` }), ev(FullSnapshot, { node: { id: 1, page: n } })];
const incremental = (n: number): WireEvent[] => Array.from({ length: n }, (_, i) => ev(IncrementalSnapshot, { i }));

/** An API node: its registry, the tail and copies of sessions run elsewhere, the viewers' hub, on a port of its own. */
class ApiNode {
  readonly registry = new SessionRegistry();
  readonly redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  readonly blocking = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  readonly tail: StreamTail;
  readonly mirrors: SessionMirrors;
  readonly hub: StreamHub;
  private readonly server: Server;
  url = '';

  constructor(prefix: string) {
    this.tail = new StreamTail(this.redis, this.blocking, prefix);
    this.mirrors = new SessionMirrors({
      tail: this.tail,
      registry: this.registry,
      metrics: new StreamMetrics(),
      viewers: (id) => this.hub.viewerCount(id),
      restarted: (id, reason) => this.hub.restart(id, reason),
      log: silent,
    });
    this.hub = new StreamHub({
      registry: this.registry,
      authorize: async () => null,
      prepare: (id) => this.mirrors.ensure(id),
      maxConnections: 100,
      maxConnectionsPerIp: 100,
      enabled: true,
      recordings: false,
      log: silent,
    });
    this.server = createServer((_req, res) => res.writeHead(404).end());
    this.server.on('upgrade', (req, socket, head) => this.hub.handleUpgrade(req, socket, head));
  }

  async listen(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `ws://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  streamUrl(sessionId: string, resume?: { since: number; epoch: string }): string {
    const query = resume ? `?since=${resume.since}&epoch=${resume.epoch}` : '';
    return `${this.url}/workflows/visual/${sessionId}${query}`;
  }

  async close(): Promise<void> {
    this.mirrors.close();
    this.hub.close();
    await this.tail.close();
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
    this.redis.disconnect();
    this.blocking.disconnect();
  }
}

/** The worker's side: a session of its own, copied to its stream. */
async function runOnWorker(redis: Redis, prefix: string): Promise<{ session: Session; publisher: StreamPublisher }> {
  const registry = new SessionRegistry();
  const session = registry.create({
    workflowName: 'cluster tour',
    steps: [
      { type: 'navigation', description: 'open' },
      { type: 'click', description: 'press' },
    ],
    visual: true,
    quality: 'standard',
    metrics: new StreamMetrics(),
  });
  const publisher = new StreamPublisher(redis, session.id, session.log, { prefix, view: () => JSON.stringify(sessionView(session)) });
  await publisher.start();
  return { session, publisher };
}

/** Seqs and events as the viewer holds them, from the latest reset on. */
function held(viewer: WsViewer): Map<number, string> {
  const out = new Map<number, string>();
  for (const f of viewer.frames) {
    if (f.t === 'reset') out.clear();
    if (f.t === 'reset' || f.t === 'events') f.events.forEach((e, i) => out.set(f.from + i, JSON.stringify(e)));
  }
  return out;
}

function logHolds(session: Session, from: number): Map<number, string> {
  const slice = session.log.fromCheckpoint();
  const out = new Map<number, string>();
  slice.events.forEach((e, i) => {
    if (slice.from + i >= from) out.set(slice.from + i, JSON.stringify(JSON.parse(e)));
  });
  return out;
}

describe('viewers on any API node, runs on a worker, over Redis streams', () => {
  const prefix = `domcast-test-${randomUUID().slice(0, 8)}`;
  let workerRedis: Redis;
  let nodeB: ApiNode;
  let nodeC: ApiNode;

  before(async () => {
    workerRedis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    nodeB = await new ApiNode(prefix).listen();
    nodeC = await new ApiNode(prefix).listen();
  });

  after(async () => {
    await nodeB.close();
    await nodeC.close();
    const keys = await workerRedis.keys(`${prefix}:*`);
    if (keys.length > 0) await workerRedis.del(...keys);
    workerRedis.disconnect();
  });

  test('a run on the worker is watched live from another node: hello, reset from the checkpoint, every event in order, late join, the end', async () => {
    const { session, publisher } = await runOnWorker(workerRedis, prefix);
    session.setStatus('running');
    session.stepStarted(0);
    session.log.append(checkpoint(1));
    session.log.append(incremental(4));

    const early = await WsViewer.open(nodeB.streamUrl(session.id));
    const hello = await waitFor('hello', () => early.hello());
    assert.equal(hello.epoch, publisher.epoch, 'the stream’s epoch, the same on every node');
    assert.equal(hello.status, 'running');
    assert.equal(hello.workflow, 'cluster tour');
    assert.deepEqual(hello.steps.map((s) => s.state), ['running', 'pending']);
    assert.equal(hello.lastSeq, session.log.lastSeq);
    await waitFor('the reset', () => early.lastSeq === session.log.lastSeq);

    session.stepEnded(0, { durationMs: 5 });
    session.stepStarted(1);
    session.log.append(checkpoint(2));
    session.log.append(incremental(3));
    await waitFor('the live events', () => early.lastSeq === session.log.lastSeq);
    const status = await waitFor('a status frame with the step', () =>
      early.frames.findLast((f) => f.t === 'status' && f.steps[1]?.state === 'running'),
    );
    assert.ok(status);

    const late = await WsViewer.open(nodeB.streamUrl(session.id));
    await waitFor('the late joiner', () => late.lastSeq === session.log.lastSeq);
    assert.deepEqual(held(late), logHolds(session, session.log.checkpointSeq), 'the late joiner rebuilds from the worker’s checkpoint');

    const seqs = early.received.map((r) => r.seq);
    assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => seqs[0]! + i), 'every seq once, in order');
    const cp = session.log.checkpointSeq;
    assert.deepEqual(new Map([...held(early)].filter(([seq]) => seq >= cp)), logHolds(session, cp), 'the early viewer holds what the worker holds');

    session.log.append(incremental(2));
    session.stepEnded(1, { durationMs: 5 });
    session.setStatus('succeeded');
    await publisher.end('succeeded', 5000);
    for (const v of [early, late]) {
      await waitFor('the end', () => v.ended());
      assert.equal((await v.closed).code, CloseCode.normal);
      assert.equal(v.lastSeq, session.log.lastSeq, 'every event before the end');
    }
    assert.equal(nodeB.registry.get(session.id)?.status, 'succeeded');
  });

  test('a viewer whose node went away resumes on another with since and epoch: no gap, no duplicate', async () => {
    const { session, publisher } = await runOnWorker(workerRedis, prefix);
    session.setStatus('running');
    session.log.append(checkpoint(1));
    session.log.append(incremental(5));
    const first = await WsViewer.open(nodeB.streamUrl(session.id));
    await waitFor('the first node’s events', () => first.lastSeq === session.log.lastSeq);
    const epoch = first.hello()!.epoch;
    const since = first.lastSeq;
    first.ws.terminate(); // as when node B dies
    session.log.append(incremental(3)); // while the viewer is away

    const resumed = await WsViewer.open(nodeC.streamUrl(session.id, { since, epoch }));
    session.log.append(incremental(2));
    await waitFor('the other node’s events', () => resumed.lastSeq === session.log.lastSeq);
    assert.equal(resumed.hello()!.epoch, epoch);
    assert.ok(!resumed.frames.some((f) => f.t === 'reset'), 'a resume, not a reset');
    assert.deepEqual(
      resumed.received.map((r) => r.seq),
      Array.from({ length: session.log.lastSeq - since }, (_, i) => since + 1 + i),
      'exactly the seqs after `since`',
    );
    resumed.ws.terminate();
    publisher.close();
  });

  test('a stream lost on Redis: the viewers are told (1012), and on reconnecting get a reset under the new epoch', async () => {
    const { session, publisher } = await runOnWorker(workerRedis, prefix);
    session.setStatus('running');
    session.log.append(checkpoint(1));
    session.log.append(incremental(2));
    const viewer = await WsViewer.open(nodeB.streamUrl(session.id));
    await waitFor('the events', () => viewer.lastSeq === session.log.lastSeq);
    const oldEpoch = viewer.hello()!.epoch;

    const keys = streamKeys(prefix, session.id);
    await workerRedis.del(keys.stream, keys.meta); // as after a Redis restart without persistence
    session.log.append(incremental(2));
    const closed = await viewer.closed;
    assert.equal(closed.code, CloseCode.restarted);
    assert.match(closed.reason, /started over/);

    const back = await WsViewer.open(nodeB.streamUrl(session.id, { since: viewer.lastSeq, epoch: oldEpoch }));
    await waitFor('the reset', () => back.lastSeq === session.log.lastSeq);
    assert.notEqual(back.hello()!.epoch, oldEpoch);
    assert.equal(back.hello()!.epoch, publisher.epoch);
    assert.ok(back.frames.some((f) => f.t === 'reset'), 'an explicit reset');
    assert.deepEqual(held(back), logHolds(session, 1));
    back.ws.terminate();
    publisher.close();
  });

  test('a copy nobody watches any more is dropped, and a later viewer gets a fresh one', async () => {
    const { session, publisher } = await runOnWorker(workerRedis, prefix);
    session.setStatus('running');
    session.log.append(checkpoint(1));
    const viewer = await WsViewer.open(nodeB.streamUrl(session.id));
    await waitFor('the events', () => viewer.lastSeq === session.log.lastSeq);
    const copy = nodeB.registry.get(session.id);
    const following = nodeB.mirrors.following;
    await viewer.close();
    await waitFor('the viewer gone', () => nodeB.hub.viewerCount(session.id) === 0);
    const now = Date.now();
    nodeB.mirrors.dropIdle(now);
    assert.equal(nodeB.mirrors.following, following, 'not at once');
    nodeB.mirrors.dropIdle(now + IDLE_MS);
    assert.equal(nodeB.mirrors.following, 0, 'this copy and those the earlier tests left unwatched');
    assert.equal(nodeB.tail.watched, 0);
    assert.equal(nodeB.registry.get(session.id), undefined);

    session.log.append(incremental(2));
    const later = await WsViewer.open(nodeB.streamUrl(session.id));
    await waitFor('the later viewer', () => later.lastSeq === session.log.lastSeq);
    assert.notEqual(nodeB.registry.get(session.id), copy, 'a new copy');
    later.ws.terminate();
    publisher.close();
  });

  test('a session no node runs is refused as unknown', async () => {
    const viewer = await WsViewer.open(nodeB.streamUrl(randomUUID()));
    assert.equal((await viewer.closed).code, CloseCode.notFound);
  });
});
