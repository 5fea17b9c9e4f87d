import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { constants as zlibConstants, inflateRawSync } from 'node:zlib';
import WebSocket from 'ws';
import type { ServerFrame } from '../../src/protocol/index.js';
import { createLogger } from '../../src/common/index.js';
import { SessionRegistry, StreamMetrics, type Session } from '../../src/session/index.js';
import { StreamHub } from '../../src/stream/index.js';
import { senderProblem, SHARED_DEFLATE_PROBLEM } from '../../src/stream/shared-deflate.js';
import { startStack, streamUrl, waitFor, type Stack } from '../helpers/stack.js';

interface RawFrame {
  rsv1: boolean;
  opcode: number;
  payload: Buffer;
}

/** A bare WebSocket client that keeps frames as they came off the wire (server frames are unmasked). */
async function rawClient(url: string, deflate: boolean | 'no-context'): Promise<{ frames: RawFrame[]; socket: Socket }> {
  const u = new URL(url);
  const socket = connect(Number(u.port), u.hostname);
  await new Promise((r) => socket.once('connect', r));
  socket.write(
    [
      `GET ${u.pathname}${u.search} HTTP/1.1`,
      `Host: ${u.host}`,
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
      'Sec-WebSocket-Version: 13',
      ...(deflate ? [`Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits${deflate === 'no-context' ? '; server_no_context_takeover' : ''}`] : []),
      '',
      '',
    ].join('\r\n'),
  );
  const frames: RawFrame[] = [];
  let buf = Buffer.alloc(0);
  let upgraded = false;
  socket.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    if (!upgraded) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      upgraded = true;
      buf = buf.subarray(end + 4);
    }
    for (;;) {
      if (buf.length < 2) return;
      let len = buf[1]! & 0x7f;
      let offset = 2;
      if (len === 126) {
        if (buf.length < 4) return;
        len = buf.readUInt16BE(2);
        offset = 4;
      } else if (len === 127) {
        if (buf.length < 10) return;
        len = Number(buf.readBigUInt64BE(2));
        offset = 10;
      }
      if (buf.length < offset + len) return;
      frames.push({ rsv1: (buf[0]! & 0x40) !== 0, opcode: buf[0]! & 0x0f, payload: buf.subarray(offset, offset + len) });
      buf = buf.subarray(offset + len);
    }
  });
  return { frames, socket };
}

/**
 * Decodes a client's frames in order as an inflater with context takeover does: each compressed
 * frame may refer to the last 32 KiB inflated before it (given here as the dictionary).
 */
function decodeAll(frames: RawFrame[]): string[] {
  let window = Buffer.alloc(0);
  return frames.map((f) => {
    if (!f.rsv1) return f.payload.toString();
    const out = inflateRawSync(Buffer.concat([f.payload, Buffer.from([0, 0, 0xff, 0xff])]), {
      finishFlush: zlibConstants.Z_SYNC_FLUSH,
      ...(window.length > 0 ? { dictionary: window } : {}),
    });
    window = Buffer.concat([window, out]).subarray(-32 * 1024);
    return out.toString();
  });
}

describe('compression once per frame', () => {
  let stack: Stack;
  let session: Session;
  before(async () => {
    stack = await startStack();
    session = stack.server.deps.registry.create({ workflowName: 'deflate', steps: [], visual: true, quality: 'standard', limits: { bufferEvents: 100 }, metrics: stack.server.deps.metrics });
    const t = Date.now();
    session.ingest(JSON.stringify([{ type: 4, timestamp: t, data: { href: 'http://page/', width: 800, height: 600 } }, { type: 2, timestamp: t, data: { text: 'x'.repeat(5000) } }]));
  });
  after(() => stack.close());

  test('viewers that negotiated deflate get the same compressed bytes for a batch; others get plain text; all decode to the same frames', async () => {
    const url = await streamUrl(stack, session.id);
    const a = await rawClient(url, true);
    const b = await rawClient(url, true);
    const plain = await rawClient(url, false);
    await waitFor('hello and reset for all', () => [a, b, plain].every((c) => c.frames.length >= 2));
    session.ingest(JSON.stringify([{ type: 3, timestamp: Date.now(), data: { source: 0, texts: [{ id: 1, value: 'y'.repeat(3000) }] } }]));
    session.ingest(JSON.stringify([{ type: 3, timestamp: Date.now(), data: { source: 1, positions: [] } }]));
    await waitFor('both batches everywhere', () => [a, b, plain].every((c) => c.frames.length >= 4));

    const [resetA, bigA, smallA] = a.frames.slice(1, 4);
    assert.ok(resetA!.rsv1 && bigA!.rsv1, 'large frames are compressed');
    assert.ok(bigA!.payload.length < 500, `compressed to ${bigA!.payload.length} bytes`);
    assert.ok(smallA!.rsv1, 'a short frame is compressed against the window the large one left');
    assert.ok(bigA!.payload.equals(b.frames[2]!.payload), 'the same compressed bytes went to both viewers');
    assert.ok(smallA!.payload.equals(b.frames[3]!.payload), 'and the short one too: both viewers hold the same window');
    assert.ok(plain.frames.every((f) => !f.rsv1), 'no compression for a client that did not ask');
    // Frame 0 is hello, whose serverTime differs; the rest are the same batches.
    const [textA, textB, textPlain] = [a, b, plain].map((c) => decodeAll(c.frames.slice(0, 4)));
    for (let i = 1; i < 4; i++) {
      assert.equal(textA![i], textPlain![i], `frame ${i} decodes the same`);
      assert.equal(textB![i], textPlain![i], `frame ${i} decodes the same`);
    }
    const big = JSON.parse(textA![2]!) as ServerFrame;
    assert.equal(big.t, 'events');
    [a, b, plain].forEach((c) => c.socket.destroy());
  });

  test('a standard client inflates them (context kept on its side, none on ours)', async () => {
    const ws = new WebSocket(await streamUrl(stack, session.id));
    const got: ServerFrame[] = [];
    ws.on('message', (d) => got.push(JSON.parse(d.toString()) as ServerFrame));
    await waitFor('hello and reset', () => got.length >= 2);
    for (let i = 0; i < 20; i++) session.ingest(JSON.stringify([{ type: 3, timestamp: Date.now(), data: { source: 0, i, texts: [{ id: 1, value: `${i}`.repeat(2000) }] } }]));
    await waitFor('twenty more', () => got.length >= 22);
    assert.deepEqual(got.slice(2).map((f) => (f.t === 'events' ? (f.events[0]!.data as { i: number }).i : -1)), [...Array(20).keys()]);
    ws.close();
  });

  test('short frames are compressed against the window each viewer holds: a viewer that joins later, or asks for no context, still decodes every frame, and the joiner meets the others', async () => {
    const url = await streamUrl(stack, session.id);
    const first = await rawClient(url, true);
    await waitFor('hello and reset', () => first.frames.length >= 2);
    const mutation = (i: number): string => JSON.stringify([{ type: 3, timestamp: Date.now(), data: { source: 0, texts: [{ id: 7, value: `clock ${1_700_000_000_000 + i * 20}` }], attributes: [], removes: [], adds: [] } }]);
    for (let i = 0; i < 20; i++) await session.ingest(mutation(i));
    await waitFor('twenty batches', () => first.frames.length >= 22);
    // Late: one more viewer with context, one that asks the server to keep none.
    const late = await rawClient(url, true);
    const noContext = await rawClient(url, 'no-context');
    await waitFor('hello and reset for the late ones', () => late.frames.length >= 2 && noContext.frames.length >= 2);
    for (let i = 20; i < 40; i++) await session.ingest(mutation(i));
    await waitFor('forty batches to the first, twenty to the late ones', () => first.frames.length >= 42 && late.frames.length >= 22 && noContext.frames.length >= 22);

    const decoded = [first, late, noContext].map((c) => decodeAll(c.frames));
    const events = (texts: string[]): unknown[] => texts.map((t) => JSON.parse(t) as ServerFrame).flatMap((f) => (f.t === 'events' ? f.events : []));
    const lastTwenty = (texts: string[]): unknown[] => events(texts).slice(-20);
    assert.deepEqual(lastTwenty(decoded[1]!), lastTwenty(decoded[0]!), 'the late viewer decodes the same events');
    assert.deepEqual(lastTwenty(decoded[2]!), lastTwenty(decoded[0]!), 'so does the one that keeps no context');

    const liveFrames = first.frames.slice(2, 42);
    const wire = liveFrames.reduce((n, f) => n + f.payload.length, 0);
    const raw = decoded[0]!.slice(2, 42).reduce((n, t) => n + Buffer.byteLength(t), 0);
    assert.ok(liveFrames.slice(1).every((f) => f.rsv1), 'each short frame after the first is compressed');
    assert.ok(wire * 3 < raw, `40 short frames: ${wire} bytes on the wire for ${raw} of JSON`);
    // After the frame that started them over, the late viewer gets the very bytes the first one does.
    const tailOf = (c: { frames: RawFrame[] }): Buffer[] => c.frames.slice(-5).map((f) => f.payload);
    assert.deepEqual(tailOf(late), tailOf(first), 'the joiner shares the first viewer\'s window');
    [first, late, noContext].forEach((c) => c.socket.destroy());
  });

  test('a frame large enough to be deflated off the event loop still reaches each viewer in order, before the small ones after it, and the end after all', async () => {
    const ws = new WebSocket(await streamUrl(stack, session.id));
    const got: ServerFrame[] = [];
    ws.on('message', (d) => got.push(JSON.parse(d.toString()) as ServerFrame));
    await waitFor('hello and reset', () => got.length >= 2);
    const noise = Array.from({ length: 60_000 }, (_, i) => ((i * 7919) % 65_521).toString(36)).join('');
    assert.ok(noise.length > 128 * 1024, 'over the async-deflate size');
    await session.ingest(JSON.stringify([{ type: 3, timestamp: Date.now(), data: { source: 0, i: 'big', texts: [{ id: 1, value: noise }] } }]));
    for (let i = 0; i < 5; i++) await session.ingest(JSON.stringify([{ type: 3, timestamp: Date.now(), data: { source: 1, i } }]));
    session.setStatus('succeeded');
    const closed = await new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
    const order = got.slice(2).map((f) => {
      const data = f.t === 'events' ? (f.events[0]!.data as { i?: unknown; tag?: string }) : null;
      return data ? (data.i ?? data.tag) : f.t;
    });
    assert.deepEqual(order, ['big', 0, 1, 2, 3, 4, 'domcast.status', 'status', 'end']);
    assert.equal(closed, 1000);
  });
});

describe('when the installed ws lacks what shared deflate needs', () => {
  test('the check names what is missing, and passes on the ws we pin', () => {
    assert.equal(SHARED_DEFLATE_PROBLEM, null);
    assert.equal(senderProblem(undefined), 'ws exports no Sender');
    assert.equal(senderProblem(class {}), 'ws.Sender has no static frame()');
    assert.equal(senderProblem(Object.assign(class {}, { frame: () => [] })), 'ws.Sender has no sendFrame()');
    class Reframing {
      static frame(data: Buffer): Buffer[] {
        return [Buffer.from([0x81, data.length]), data];
      }
      sendFrame(): void {}
    }
    assert.equal(senderProblem(Reframing), 'ws.Sender.frame() frames differently than expected');
  });

  test('the hub falls back to ws compressing per viewer: frames still arrive compressed and in order, and health counts them', async () => {
    const registry = new SessionRegistry();
    const hub = new StreamHub({
      registry,
      authorize: async () => null,
      maxConnections: 10,
      maxConnectionsPerIp: 10,
      enabled: true,
      recordings: false,
      log: createLogger('silent'),
      sharedDeflate: false,
    });
    const http = createServer((_req, res) => res.end());
    http.on('upgrade', (req, socket, head) => hub.handleUpgrade(req, socket, head) || socket.destroy());
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    try {
      const session = registry.create({ workflowName: 'fallback', steps: [], visual: true, quality: 'standard', limits: { bufferEvents: 100 }, metrics: new StreamMetrics() });
      const t = Date.now();
      await session.ingest(JSON.stringify([{ type: 4, timestamp: t, data: { href: 'http://page/', width: 800, height: 600 } }, { type: 2, timestamp: t, data: { text: 'x'.repeat(5000) } }]));
      const before = hub.compression.ws_compressed_frames;
      const { port } = http.address() as AddressInfo;
      const url = `ws://127.0.0.1:${port}/workflows/visual/${session.id}`;
      const client = await rawClient(url, true);
      // ws keeps its context across a viewer's messages: a standard client inflates them in turn.
      const ws = new WebSocket(url);
      const got: ServerFrame[] = [];
      ws.on('message', (d) => got.push(JSON.parse(d.toString()) as ServerFrame));
      await waitFor('hello and reset', () => client.frames.length >= 2 && got.length >= 2);
      for (let i = 1; i <= 3; i++) await session.ingest(JSON.stringify([{ type: 3, timestamp: Date.now(), data: { source: 0, i, texts: [{ id: 1, value: 'y'.repeat(3000) }] } }]));
      await waitFor('the batches', () => client.frames.length >= 5 && got.length >= 5);
      assert.ok(client.frames.slice(1, 5).every((f) => f.rsv1), 'ws compressed the large frames');
      assert.deepEqual(got.slice(2).map((f) => (f.t === 'events' ? (f.events[0]!.data as { i: number }).i : -1)), [1, 2, 3]);
      ws.close();
      assert.equal(hub.compression.mode, 'ws');
      assert.ok(hub.compression.ws_compressed_frames >= before + 10, 'counted');
      client.socket.destroy();
    } finally {
      hub.close();
      await new Promise((r) => http.close(r));
    }
  });
});
