import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { CloseCode } from '../../src/protocol/index.js';
import type { Session } from '../../src/session/index.js';
import { startStack, streamUrl, type Stack } from '../helpers/stack.js';

/**
 * Malformed input, thousands of cases from a fixed seed (FUZZ_SEED overrides it): every request gets
 * a 4xx with a JSON {error}, every socket a close code with a reason; nothing crashes, nothing is
 * left unhandled, and the server still answers a good request afterwards.
 * CHROMIUM_PATH points nowhere so a body that happens to be a valid run fails fast without a browser.
 */
const SEED = Number(process.env.FUZZ_SEED ?? 0x0d0ca57);

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Gen {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = prng(seed);
  }
  int(max: number): number {
    return Math.floor(this.next() * max);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  bytes(n: number): Buffer {
    return Buffer.from(Array.from({ length: n }, () => this.int(256)));
  }
  text(n: number): string {
    // Whole code points, so that an emoji is never split into a lone surrogate.
    const alphabet = Array.from('abcXYZ019 _-./:?&=%#"\'{}[],\\\u0000\u00e9\u202e\ud83d\ude00<>');
    return Array.from({ length: n }, () => alphabet[this.int(alphabet.length)]).join('');
  }
  /** Any JSON value, a few levels deep. */
  value(depth = 0): unknown {
    const kind = this.int(depth > 3 ? 6 : 9);
    switch (kind) {
      case 0:
        return null;
      case 1:
        return this.chance(0.5);
      case 2:
        return this.pick([0, -1, 1.5, 1e308, -1e308, 2 ** 53 + 1, Number.MAX_SAFE_INTEGER, 100_000_000]);
      case 3:
      case 4:
        return this.text(this.int(40));
      case 5:
        return this.pick(['navigation', 'click', 'input', 'wait', 'agent', 'extract_page_content', '__proto__', 'constructor', '{x}', 'file:///etc/passwd']);
      case 6:
        return Array.from({ length: this.int(5) }, () => this.value(depth + 1));
      default: {
        const keys = ['type', 'url', 'cssSelector', 'xpath', 'value', 'ms', 'name', 'steps', 'workflow', 'inputs', 'visual_enabled', 'visual_quality', 'block_selector', '__proto__', 'constructor', this.text(6)];
        const out: Record<string, unknown> = {};
        for (let i = this.int(6); i > 0; i--) out[this.pick(keys)] = this.value(depth + 1);
        return out;
      }
    }
  }
}

const validBody = {
  workflow: { name: 'fuzz', input_schema: [{ name: 'a', type: 'string' }], steps: [{ type: 'navigation', url: 'http://127.0.0.1:9/' }, { type: 'wait', ms: 1 }] },
  inputs: { a: 'b' },
  visual_enabled: true,
};

/** A valid execute body bent out of shape. */
function executeBody(g: Gen): { payload: string; contentType: string } {
  const json = JSON.stringify(validBody);
  const contentType = g.chance(0.9) ? 'application/json' : g.pick(['text/plain', 'application/x-www-form-urlencoded', '', 'application/json; charset=latin1', 'multipart/form-data']);
  switch (g.int(7)) {
    case 0:
      return { payload: json.slice(0, g.int(json.length)), contentType }; // truncated
    case 1:
      return { payload: g.bytes(g.int(300)).toString('latin1'), contentType }; // noise
    case 2:
      return { payload: JSON.stringify(g.value()), contentType }; // any JSON
    case 3: {
      const body = structuredClone(validBody) as Record<string, unknown>;
      body[g.pick(['workflow', 'inputs', 'visual_enabled', 'visual_quality', 'name', 'step_timeout_ms', 'mask_text_selector', g.text(5)])] = g.value();
      return { payload: JSON.stringify(body), contentType };
    }
    case 4: {
      const body = structuredClone(validBody);
      const steps = body.workflow.steps as unknown[];
      steps[g.int(steps.length + 1)] = g.value();
      return { payload: JSON.stringify(body), contentType };
    }
    case 5:
      return { payload: `${'['.repeat(g.int(5000))}${g.chance(0.5) ? ']'.repeat(g.int(5000)) : ''}`, contentType }; // deep nesting
    default:
      return { payload: json.replace(/"[^"]*"/g, (m) => (g.chance(0.1) ? JSON.stringify(g.value()) : m)), contentType };
  }
}

function queryString(g: Gen): string {
  const keys = ['since', 'epoch', 'token', 'limit', 'cursor', 'status', 't', g.text(4), ''];
  const values = ['-1', '0', '1', '1e9', '99999999999999999999', 'NaN', 'abc', '', '%', '%E0%A4%A', '%00', '\u0000', 'x'.repeat(3000), g.text(20)];
  const parts = Array.from({ length: g.int(4) }, () => `${g.pick(keys)}=${g.chance(0.5) ? encodeURIComponent(g.pick(values)) : g.pick(values).replace(/[\s#]/g, '')}`);
  return parts.length ? `?${parts.join('&')}` : g.pick(['', '?', '??', '?&&=']);
}

interface Outcome {
  code: number;
  reason: string;
  frames: number;
}

/** Opens a socket, lets `act` poke it once it is open, and reports how it ended (or that it stayed open). */
function socketOutcome(url: string, act?: (ws: WebSocket) => void, options: WebSocket.ClientOptions = {}): Promise<Outcome> {
  return new Promise((resolve) => {
    let frames = 0;
    let ws: WebSocket;
    try {
      ws = new WebSocket(url, options);
    } catch {
      resolve({ code: -1, reason: 'client refused the URL', frames });
      return;
    }
    const timer = setTimeout(() => {
      ws.terminate();
      resolve({ code: 0, reason: 'still open', frames });
    }, 1500);
    ws.on('message', () => frames++);
    ws.on('open', () => act?.(ws));
    ws.on('unexpected-response', (_req, res) => {
      clearTimeout(timer);
      resolve({ code: -(res.statusCode ?? 0), reason: `http ${res.statusCode}`, frames });
      ws.terminate();
    });
    ws.on('error', () => undefined);
    ws.on('close', (code, reason) => {
      clearTimeout(timer);
      resolve({ code, reason: reason.toString(), frames });
    });
  });
}

const KNOWN_CLOSES = new Set<number>([
  CloseCode.normal,
  CloseCode.policy,
  CloseCode.messageTooBig,
  CloseCode.badRequest,
  CloseCode.unauthorized,
  CloseCode.notFound,
  CloseCode.visualOff,
]);

describe(`malformed input (seed ${SEED})`, () => {
  let stack: Stack;
  let session: Session;
  const unhandled: unknown[] = [];
  const onUnhandled = (err: unknown) => unhandled.push(err);

  before(async () => {
    process.on('unhandledRejection', onUnhandled);
    process.on('uncaughtException', onUnhandled);
    stack = await startStack({
      CHROMIUM_PATH: '/nonexistent/domcast-fuzz-chromium',
      EXECUTE_RATE_LIMIT: '0',
      MAX_CONCURRENT_SESSIONS: '2',
      VISUAL_MAX_CONNECTIONS_PER_IP: '1000',
    });
    session = stack.server.deps.registry.create({ workflowName: 'fuzz', steps: [], visual: true, quality: 'standard', limits: { bufferEvents: 100 }, metrics: stack.server.deps.metrics });
    session.ingest(JSON.stringify([{ type: 4, timestamp: Date.now(), data: { href: 'http://x/', width: 10, height: 10 } }, { type: 2, timestamp: Date.now(), data: {} }]));
  });
  after(async () => {
    process.off('unhandledRejection', onUnhandled);
    process.off('uncaughtException', onUnhandled);
    await stack.server.deps.runs.idle();
    await stack.close();
  });

  test('2,000 execute bodies: random, truncated, mutated, deeply nested: each a 202 or a 4xx with a JSON error', async () => {
    const g = new Gen(SEED);
    const statuses = new Map<number, number>();
    for (let i = 0; i < 2000; i++) {
      const { payload, contentType } = executeBody(g);
      const res = await stack.server.app.inject({ method: 'POST', url: '/workflows/execute', payload, headers: contentType ? { 'content-type': contentType } : {} });
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
      const where = `case ${i} (seed ${SEED}): ${payload.slice(0, 200)}`;
      assert.ok(res.statusCode === 202 || (res.statusCode >= 400 && res.statusCode < 500), `${res.statusCode} for ${where}`);
      if (res.statusCode >= 400) {
        const body = JSON.parse(res.body) as { error?: unknown };
        assert.equal(typeof body.error, 'string', where);
        assert.ok((body.error as string).length > 0, where);
      }
    }
    assert.ok((statuses.get(400) ?? 0) > 500, `mostly rejected: ${JSON.stringify([...statuses])}`);
  });

  test('1,000 query strings and paths on the read routes: each answered below 500, errors in JSON', async () => {
    const g = new Gen(SEED + 1);
    const token = await stack.server.deps.viewerTokens.issue(session.id);
    const ids = [session.id, 'nope', '%', '%E0%A4%A', '..%2F..%2Fetc', 'x'.repeat(500), encodeURIComponent(g.text(10))];
    for (let i = 0; i < 1000; i++) {
      const id = g.pick(ids);
      const path = g.pick([
        `/workflows/${id}`,
        `/workflows/${id}/events`,
        '/workflows/sessions',
        `/workflows/${id}/screenshot`,
        `/workflows/${id}/steps/${g.pick(['0', '-1', '1e3', 'x', '99999999'])}/screenshot`,
        `/workflows/visual/${id}/viewer`,
        '/health/visual',
      ]);
      const q = queryString(g);
      const url = `${path}${g.chance(0.3) ? `${q}${q.includes('?') ? '&' : '?'}token=${token}` : q}`;
      const res = await stack.server.app.inject({ method: 'GET', url });
      assert.ok(res.statusCode < 500, `${res.statusCode} for GET ${url.slice(0, 200)} (seed ${SEED})`);
      if (res.statusCode >= 400) assert.equal(typeof (JSON.parse(res.body) as { error?: unknown }).error, 'string', url);
    }
  });

  test('600 stream URLs with odd since, epoch, token and ids: each opens or closes with a known code and a reason', async () => {
    const g = new Gen(SEED + 2);
    const good = new URL(await streamUrl(stack, session.id));
    const ws = `ws://${good.host}`;
    const token = good.searchParams.get('token')!;
    let opened = 0;
    for (let i = 0; i < 600; i++) {
      const id = g.pick([session.id, session.id, 'nope', '%E0%A4%A', '%', g.text(8).replace(/[/?#\s]/g, '')]);
      const params = [
        g.chance(0.7) ? `token=${g.chance(0.85) ? token : encodeURIComponent(g.text(30))}` : '',
        g.chance(0.7) ? `since=${encodeURIComponent(g.pick(['-1', '0', '1', '2', '3', '1e9', '99999999999999999999', 'abc', '', ' 1', '0x10', g.text(5)]))}` : '',
        g.chance(0.4) ? `epoch=${encodeURIComponent(g.pick([stack.server.deps.hub.epoch, 'x', '']))}` : '',
      ].filter(Boolean);
      const url = `${ws}/workflows/visual/${id}?${params.join('&')}`;
      // Once the server said something (hello), this side hangs up.
      const outcome = await socketOutcome(url, (sock) => sock.once('message', () => sock.close()));
      const where = `${url.slice(0, 200)} → ${JSON.stringify(outcome)} (seed ${SEED})`;
      if (outcome.code === 1000 && outcome.frames > 0) {
        opened++;
        continue;
      }
      if (outcome.code === 1005 && outcome.frames > 0) {
        opened++; // we closed it ourselves after hello
        continue;
      }
      // A path the hub does not recognise (e.g. a backslash the URL parser turns into a slash) is an HTTP 4xx.
      const httpError = outcome.code <= -400 && outcome.code > -500;
      assert.ok(KNOWN_CLOSES.has(outcome.code) || httpError || outcome.code === -1, where);
      if (outcome.code >= 4000) assert.ok(outcome.reason.length > 0, where);
    }
    assert.ok(opened > 50, `some connections were valid and opened (${opened})`);
  });

  test('600 random frames from viewers (text, JSON, binary, empty, oversized): each closed with its reason', async () => {
    const g = new Gen(SEED + 3);
    const url = await streamUrl(stack, session.id);
    for (let i = 0; i < 600; i++) {
      const kind = g.int(6);
      const outcome = await socketOutcome(url, (sock) => {
        if (kind === 0) sock.send(g.bytes(g.int(64)), { binary: true });
        else if (kind === 1) sock.send(g.text(g.int(200)));
        else if (kind === 2) sock.send(JSON.stringify(g.value()));
        else if (kind === 3) sock.send('');
        else if (kind === 4) sock.send('x'.repeat(4097 + g.int(50_000)));
        else for (let n = 0; n < 21 + g.int(10); n++) sock.send('{"t":"ping"}');
      });
      const where = `kind ${kind}, case ${i} → ${JSON.stringify(outcome)} (seed ${SEED})`;
      assert.ok([CloseCode.badRequest, CloseCode.policy, CloseCode.messageTooBig].includes(outcome.code as 4400), where);
      if (outcome.code !== CloseCode.messageTooBig || kind !== 4) assert.ok(outcome.reason.length > 0, where);
    }
  });

  test('200 garbage upgrade requests on raw TCP: answered or dropped, the server stays up', async () => {
    const g = new Gen(SEED + 4);
    const { port } = new URL(stack.base);
    for (let i = 0; i < 200; i++) {
      const lines = [
        `GET /workflows/visual/${g.pick([session.id, '%', g.text(5)])}${queryString(g).replace(/\s/g, '')} HTTP/1.1`,
        `Host: 127.0.0.1:${port}`,
        g.chance(0.8) ? 'Upgrade: websocket' : `Upgrade: ${g.text(6)}`,
        'Connection: Upgrade',
        g.chance(0.7) ? `Sec-WebSocket-Key: ${g.chance(0.5) ? 'dGhlIHNhbXBsZSBub25jZQ==' : g.text(10)}` : '',
        g.chance(0.7) ? `Sec-WebSocket-Version: ${g.pick(['13', '8', 'x', ''])}` : '',
      ].filter(Boolean);
      const request = g.chance(0.2) ? g.bytes(g.int(500)) : Buffer.from(`${lines.join('\r\n')}\r\n\r\n${g.chance(0.3) ? g.text(50) : ''}`, 'latin1');
      await new Promise<void>((resolve) => {
        const sock = connect(Number(port), '127.0.0.1', () => sock.end(request));
        sock.on('data', () => undefined);
        sock.on('error', () => resolve());
        sock.on('close', () => resolve());
        sock.setTimeout(1000, () => sock.destroy());
      });
    }
  });

  test('afterwards the server still answers, and nothing went unhandled', async () => {
    const res = await fetch(`${stack.base}/health/visual`);
    assert.equal(res.status, 200);
    const viewer = await socketOutcome(await streamUrl(stack, session.id), (sock) => setTimeout(() => sock.close(), 50));
    assert.ok(viewer.frames >= 2, 'hello and reset');
    assert.deepEqual(unhandled, []);
  });
});
