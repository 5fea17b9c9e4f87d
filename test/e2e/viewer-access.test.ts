// e2e: alone (it times how soon a silent viewer is dropped by the heartbeat)
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { CloseCode } from '../../src/protocol/index.js';
import type { Session } from '../../src/session/index.js';
import { WsViewer, startStack, streamUrl, waitFor, type Stack } from '../helpers/stack.js';

/**
 * Who may open a session's stream, and what a viewer may send: the real server and real sockets.
 * The sessions here are registered without a browser run (they stay queued), which is all the hub needs.
 */
function liveSession(stack: Stack): Session {
  return stack.server.deps.registry.create({
    workflowName: 'access',
    steps: [],
    visual: true,
    quality: 'standard',
    limits: { bufferEvents: 100 },
    metrics: stack.server.deps.metrics,
  });
}

function open(url: string, options: WebSocket.ClientOptions = {}): Promise<WsViewer> {
  return WsViewer.open(url, options);
}

async function closedWith(url: string, options: WebSocket.ClientOptions = {}): Promise<{ code: number; reason: string; frames: number }> {
  const viewer = await open(url, options);
  const closed = await viewer.closed;
  return { ...closed, frames: viewer.frames.length };
}

describe('viewer access to the stream', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ VIEWER_ORIGINS: 'https://dashboard.example.com' });
  });
  after(() => stack.close());

  test('without a token the stream is refused with 4401 before anything is sent', async () => {
    const session = liveSession(stack);
    const url = (await streamUrl(stack, session.id)).replace(/\?token=.*/, '');
    const { code, reason, frames } = await closedWith(url);
    assert.equal(code, CloseCode.unauthorized);
    assert.match(reason, /viewer token is required/);
    assert.equal(frames, 0, 'no hello, no events');
  });

  test("a token for one session never opens another, and a forged one opens none", async () => {
    const mine = liveSession(stack);
    const theirs = liveSession(stack);
    const token = new URL(await streamUrl(stack, mine.id)).searchParams.get('token')!;
    const other = (await streamUrl(stack, theirs.id)).replace(/token=.*/, `token=${token}`);
    const refused = await closedWith(other);
    assert.equal(refused.code, CloseCode.unauthorized);
    assert.match(refused.reason, /another session/);
    assert.equal(refused.frames, 0);
    const forged = (await streamUrl(stack, mine.id)).replace(/\.[\w-]+$/, '.AAAA');
    assert.equal((await closedWith(forged)).code, CloseCode.unauthorized);
    // Unknown sessions are not told apart from forbidden ones without a valid token.
    const unknown = `${stack.base.replace('http', 'ws')}/workflows/visual/no-such-session?token=${token}`;
    assert.equal((await closedWith(unknown)).code, CloseCode.unauthorized);
  });

  test('with its token, from the same origin, a listed origin or no browser at all, the stream opens', async () => {
    const session = liveSession(stack);
    const url = await streamUrl(stack, session.id);
    for (const origin of [stack.base, 'https://dashboard.example.com', undefined]) {
      const viewer = await open(url, origin ? { origin } : {});
      await waitFor(`hello (origin ${origin})`, () => viewer.hello());
      await viewer.close();
    }
  });

  test('a page on another origin is refused with 4403, even with a valid token', async () => {
    const session = liveSession(stack);
    const url = await streamUrl(stack, session.id);
    for (const origin of ['http://evil.example', 'null', stack.base.replace(/:\d+$/, ':1')]) {
      const { code, reason, frames } = await closedWith(url, { origin });
      assert.equal(code, CloseCode.forbiddenOrigin, origin);
      assert.match(reason, /VIEWER_ORIGINS/);
      assert.equal(frames, 0);
    }
  });

  test('a viewer may ping (and gets the server clock back); anything else closes it with a reason', async () => {
    const session = liveSession(stack);
    const url = await streamUrl(stack, session.id);

    const pinger = await open(url);
    await waitFor('hello', () => pinger.hello());
    pinger.ws.send(JSON.stringify({ t: 'ping' }));
    await waitFor('the answer', () => pinger.frames.some((f) => f.t === 'ping'));
    await pinger.close();

    const cases: [string, (ws: WebSocket) => void, number, RegExp][] = [
      ['binary', (ws) => ws.send(Buffer.from([1, 2, 3])), CloseCode.badRequest, /binary/],
      ['not JSON', (ws) => ws.send('hello?'), CloseCode.badRequest, /JSON/],
      ['unknown', (ws) => ws.send('{"t":"subscribe","session":"*"}'), CloseCode.badRequest, /unknown message/],
      ['too big', (ws) => ws.send(JSON.stringify({ t: 'ping', pad: 'x'.repeat(5000) })), CloseCode.messageTooBig, /at most 4096 bytes/],
      ['too many', (ws) => { for (let i = 0; i < 25; i++) ws.send('{"t":"ping"}'); }, CloseCode.policy, /too many messages/],
    ];
    for (const [name, send, code, reason] of cases) {
      const viewer = await open(url);
      await waitFor('hello', () => viewer.hello());
      send(viewer.ws);
      const closed = await viewer.closed;
      assert.equal(closed.code, code, name);
      assert.match(closed.reason, reason, name);
    }
    await waitFor('every refused socket to be released', () => stack.server.deps.hub.connectionCount === 0);
  });
});

describe('connection limits and heartbeats', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ VISUAL_MAX_CONNECTIONS_PER_IP: '3', VISUAL_HEARTBEAT_MS: '200' });
  });
  after(() => stack.close());

  test('past VISUAL_MAX_CONNECTIONS_PER_IP one address is refused with 4429; a freed slot can be used again', async () => {
    const session = liveSession(stack);
    const url = await streamUrl(stack, session.id);
    const viewers = await Promise.all([1, 2, 3].map(() => open(url)));
    await Promise.all(viewers.map((v) => waitFor('hello', () => v.hello())));
    const fourth = await closedWith(url);
    assert.equal(fourth.code, CloseCode.tooManyFromAddress);
    assert.match(fourth.reason, /limit 3/);
    await viewers[0]!.close();
    await waitFor('the slot to free', () => stack.server.deps.hub.connectionCount === 2);
    const again = await open(url);
    await waitFor('hello', () => again.hello());
    await Promise.all([again, ...viewers.slice(1)].map((v) => v.close()));
  });

  test('a viewer that stops answering pings is dropped within two heartbeats; a live one stays', async () => {
    const session = liveSession(stack);
    const url = await streamUrl(stack, session.id);
    const alive = await open(url);
    const dead = await open(url);
    await waitFor('both joined', () => alive.hello() && dead.hello());
    // A frozen peer: its socket stops reading, so pings are never answered.
    (dead.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const started = Date.now();
    await waitFor('the dead viewer to be dropped', () => stack.server.deps.hub.connectionCount === 1, 5_000, 20);
    const tookMs = Date.now() - started;
    assert.ok(tookMs <= 3 * 200 + 300, `dropped after ${tookMs} ms`);
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(alive.ws.readyState, WebSocket.OPEN, 'the live viewer answered its pings and stays');
    await alive.close();
  });
});
