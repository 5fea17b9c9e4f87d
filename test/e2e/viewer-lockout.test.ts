import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { CloseCode, RrwebEventType } from '../../src/protocol/index.js';
import type { Session } from '../../src/session/index.js';
import { startStack, streamUrl, waitFor, WsViewer, type Stack } from '../helpers/stack.js';

let stack: Stack;
let session: Session;

before(async () => {
  stack = await startStack({ VISUAL_WEBSOCKET_MAX_CONNECTIONS: '20', VISUAL_MAX_CONNECTIONS_PER_IP: '10' });
  session = stack.server.deps.registry.create({ workflowName: 'lockout', steps: [], visual: true, quality: 'standard', metrics: stack.server.deps.metrics });
  session.setStatus('running');
  await session.ingest(JSON.stringify([{ type: RrwebEventType.Meta, timestamp: 1, data: { href: 'http://x/', width: 1, height: 1 } }, { type: RrwebEventType.FullSnapshot, timestamp: 2, data: { node: {} } }]));
});

after(async () => {
  await stack.close();
});

interface Raw {
  socket: Socket;
  closed: boolean;
  answer: string;
}

/** A WebSocket upgrade that then never reads a frame nor answers a close: the peer of the review's lockout. */
function rawUpgrade(localAddress: string, path: string): Promise<Raw> {
  const { port } = new URL(stack.base);
  const raw: Raw = { socket: connect({ host: '127.0.0.1', port: Number(port), localAddress }), closed: false, answer: '' };
  raw.socket.on('data', (d) => (raw.answer += d.toString('latin1')));
  raw.socket.on('close', () => (raw.closed = true));
  raw.socket.on('error', () => (raw.closed = true));
  return new Promise((resolve) => {
    raw.socket.once('connect', () => {
      raw.socket.write(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
      resolve(raw);
    });
  });
}

test('a hundred upgrades with a bogus token hold no slot: a viewer with a valid token gets in at once, and the bogus ones are closed without waiting for them', async () => {
  const bogus: Raw[] = [];
  for (let i = 0; i < 100; i++) bogus.push(await rawUpgrade(i % 2 ? '127.0.0.2' : '127.0.0.1', `/workflows/visual/${session.id}?token=bogus-${i}`));
  await waitFor('every bogus upgrade answered', () => bogus.every((b) => b.answer.includes('101 Switching Protocols')));
  const viewer = await WsViewer.open(await streamUrl(stack, session.id));
  await waitFor('the real viewer\'s hello and reset', () => viewer.frames.length >= 2);
  assert.equal(viewer.hello()?.session, session.id);
  assert.equal(viewer.frames[1]?.t, 'reset');
  // ws would wait 30 s for a close frame these peers never send; refused sockets are ended at once.
  await waitFor('every bogus socket closed by the server', () => bogus.every((b) => b.closed), 5000);
  for (const b of bogus) {
    const frame = b.answer.slice(b.answer.indexOf('\r\n\r\n') + 4);
    assert.equal(frame.charCodeAt(0), 0x88, 'each got a close frame first');
    assert.equal((frame.charCodeAt(2) << 8) | frame.charCodeAt(3), CloseCode.unauthorized);
  }
  assert.equal(stack.server.deps.hub.connectionCount, 1, 'only the real viewer counts');
  await viewer.close();
});

test('the limits still hold for authorized viewers, and a refused one is told why', async () => {
  const viewers: WsViewer[] = [];
  for (let i = 0; i < 10; i++) viewers.push(await WsViewer.open(await streamUrl(stack, session.id)));
  const eleventh = await WsViewer.open(await streamUrl(stack, session.id));
  const closed = await eleventh.closed;
  assert.equal(closed.code, CloseCode.tooManyFromAddress);
  assert.match(closed.reason, /too many viewer connections from your address/);
  await Promise.all(viewers.map((v) => v.close()));
});

test('an admission that throws closes that viewer with 1011 and the server goes on', async () => {
  const broken = stack.server.deps.registry.create({ workflowName: 'broken', steps: [], visual: true, quality: 'standard', metrics: stack.server.deps.metrics });
  broken.setStatus('running');
  await broken.ingest(JSON.stringify([{ type: RrwebEventType.IncrementalSnapshot, timestamp: 1, data: { source: 0 } }]));
  broken.log.fromCheckpoint = () => {
    throw new RangeError('Invalid string length');
  };
  const viewer = await WsViewer.open(await streamUrl(stack, broken.id));
  const closed = await viewer.closed;
  assert.equal(closed.code, CloseCode.internalError);
  const again = await WsViewer.open(await streamUrl(stack, session.id));
  await waitFor('a healthy session is still served', () => again.frames.length >= 2);
  await again.close();
  broken.setStatus('cancelled');
});
