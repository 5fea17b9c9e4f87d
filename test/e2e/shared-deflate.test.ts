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
async function rawClient(url: string, deflate: boolean): Promise<{ frames: RawFrame[]; socket: Socket }> {
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
      ...(deflate ? ['Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits'] : []),
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

const text = (f: RawFrame): string => (f.rsv1 ? inflateRawSync(Buffer.concat([f.payload, Buffer.from([0, 0, 0xff, 0xff])]), { finishFlush: zlibConstants.Z_SYNC_FLUSH }) : f.payload).toString();

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
    assert.equal(smallA!.rsv1, false, 'a frame under 1 KiB is sent as it is');
    assert.ok(bigA!.payload.equals(b.frames[2]!.payload), 'the same compressed bytes went to both viewers');
    assert.ok(plain.frames.every((f) => !f.rsv1), 'no compression for a client that did not ask');
    // Frame 0 is hello, whose serverTime differs; the rest are the same batches.
    for (let i = 1; i < 4; i++) assert.equal(text(a.frames[i]!), text(plain.frames[i]!), `frame ${i} decodes the same`);
    const big = JSON.parse(text(bigA!)) as ServerFrame;
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
