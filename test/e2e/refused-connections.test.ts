import assert from 'node:assert/strict';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import type { Page } from 'playwright-core';
import { BrowserLauncher, guardRun, NavigationPolicy, type Refusal } from '../../src/browser/index.js';

/**
 * A host the policy refuses (127.0.0.2 is loopback but not in ALLOWED_HOSTS=127.0.0.1, which is
 * matched as written) that counts every TCP connection, every byte sent on one, and every UDP datagram.
 */
interface Refused {
  tcpPort: number;
  udpPort: number;
  connections: number;
  received: string[];
  datagrams: number;
  reset(): void;
  close(): Promise<void>;
}

async function refusedHost(): Promise<Refused> {
  const tcp: TcpServer = createTcpServer((socket) => {
    state.connections++;
    socket.on('data', (d) => state.received.push(d.toString('latin1').slice(0, 40)));
    socket.on('error', () => {});
  });
  const udp: UdpSocket = createSocket('udp4');
  udp.on('message', () => state.datagrams++);
  await new Promise<void>((ok) => tcp.listen(0, '127.0.0.2', ok));
  await new Promise<void>((ok) => udp.bind(0, '127.0.0.2', ok));
  const state: Refused = {
    tcpPort: (tcp.address() as AddressInfo).port,
    udpPort: udp.address().port,
    connections: 0,
    received: [],
    datagrams: 0,
    reset() {
      state.connections = 0;
      state.received = [];
      state.datagrams = 0;
    },
    close: async () => {
      udp.close();
      await new Promise<void>((ok) => tcp.close(() => ok()));
    },
  };
  return state;
}

/** The page on the allowed host, one per way of reaching the refused one. */
function pages(refused: Refused): Record<string, string> {
  const target = `http://127.0.0.2:${refused.tcpPort}/leak`;
  const done = (what: string) => `document.body.insertAdjacentHTML('beforeend', '<p id="done">' + ${what} + '</p>')`;
  return {
    '/iframe': `<iframe src="${target}"></iframe>`,
    '/window-open': `<script>window.open('${target}');</script>`,
    '/location': `<script>setTimeout(() => { location = '${target}'; }, 50);</script>`,
    '/meta-refresh': `<meta http-equiv="refresh" content="0;url=${target}">`,
    '/webrtc': `<script>
      const pc = new RTCPeerConnection({ iceServers: [
        { urls: 'stun:127.0.0.2:${refused.udpPort}' },
        { urls: 'turn:127.0.0.2:${refused.udpPort}?transport=udp', username: 'u', credential: 'p' },
        { urls: 'turn:127.0.0.2:${refused.tcpPort}?transport=tcp', username: 'u', credential: 'p' },
      ] });
      const types = [];
      pc.onicecandidate = (e) => { if (e.candidate) types.push(e.candidate.type + '/' + e.candidate.protocol); };
      pc.onicegatheringstatechange = () => { if (pc.iceGatheringState === 'complete') ${done("JSON.stringify(types)")}; };
      pc.createDataChannel('leak');
      pc.createOffer().then((offer) => pc.setLocalDescription(offer));
    </script>`,
  };
}

describe('connections to a refused host (ALLOWED_HOSTS=127.0.0.1)', () => {
  let refused: Refused;
  let site: HttpServer;
  let base: string;
  let launcher: BrowserLauncher;
  const policy = new NavigationPolicy({ allowedHosts: ['127.0.0.1'] });
  const log = pino({ level: 'silent' });

  before(async () => {
    refused = await refusedHost();
    const html = pages(refused);
    site = createHttpServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<!doctype html><meta charset="utf-8"><body><h1>allowed</h1>${html[req.url ?? ''] ?? ''}</body>`);
    });
    await new Promise<void>((ok) => site.listen(0, '127.0.0.1', ok));
    base = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
    launcher = new BrowserLauncher({ log });
  });

  after(async () => {
    await launcher?.close();
    await new Promise<void>((ok) => (site ? site.close(() => ok()) : ok()));
    await refused?.close();
  });

  /** Opens `path` in a fresh guarded context, as a run does, and waits `ms` for whatever the page sets off. */
  async function visit(path: string, ms: number): Promise<{ refusals: Refusal[]; page: Page; close(): Promise<void> }> {
    const context = await launcher.newContext(policy);
    const page = await context.newPage();
    const refusals: Refusal[] = [];
    const unguard = await guardRun(context, page, policy, log, { onNavigationRefused: () => {}, onRefused: (r) => refusals.push(r) });
    await page.goto(`${base}${path}`);
    await new Promise((r) => setTimeout(r, ms));
    return {
      refusals,
      page,
      async close() {
        unguard();
        await context.close();
      },
    };
  }

  for (const path of ['/iframe', '/window-open', '/location', '/meta-refresh']) {
    test(`${path.slice(1)} to a refused host opens no TCP connection to it`, async () => {
      refused.reset();
      const run = await visit(path, 1500);
      try {
        assert.ok(
          run.refusals.some((r) => r.url.startsWith('http://127.0.0.2:')),
          `the guard refused the request (${JSON.stringify(run.refusals)})`,
        );
        assert.deepEqual({ connections: refused.connections, received: refused.received }, { connections: 0, received: [] });
      } finally {
        await run.close();
      }
    });
  }

  test('a page\'s RTCPeerConnection reaches no STUN or TURN server on a refused host, over UDP or TCP', async () => {
    refused.reset();
    // Gathering ends once every server has failed; 3 s is far more than a loopback round trip needs.
    const run = await visit('/webrtc', 3000);
    try {
      assert.deepEqual({ datagrams: refused.datagrams, connections: refused.connections, received: refused.received }, { datagrams: 0, connections: 0, received: [] });
      const gathered = JSON.parse((await run.page.locator('#done').textContent({ timeout: 5000 })) ?? '[]') as string[];
      assert.deepEqual(gathered.filter((t) => !t.startsWith('host/')), [], 'no server-reflexive or relay candidate');
    } finally {
      await run.close();
    }
  });

  test('the allowed host is still reached directly', async () => {
    const run = await visit('/', 0);
    try {
      assert.equal(await run.page.locator('h1').innerText(), 'allowed');
    } finally {
      await run.close();
    }
  });
});
