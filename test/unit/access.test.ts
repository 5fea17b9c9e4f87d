import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { createServer, loadConfig, type Server } from '../../src/server/index.js';
import { viewerOriginAllowed } from '../../src/server/origins.js';
import { RateLimiter } from '../../src/server/rate-limit.js';
import { ViewerTokens } from '../../src/server/viewer-tokens.js';
import type { Session } from '../../src/session/index.js';

/** Through fastify's inject; CHROMIUM_PATH points nowhere so an accepted run fails fast instead of launching a browser. */
const KEY = 'unit-test-api-key-0123456789';
const validWorkflow = { name: 'w', steps: [{ type: 'wait', ms: 1 }] };

function makeServer(env: Record<string, string> = {}): Server {
  return createServer(
    loadConfig({
      PORT: '0',
      LOG_LEVEL: 'silent',
      CHROMIUM_PATH: '/nonexistent/domcast-unit-test-chromium',
      DOMCAST_DATA_DIR: mkdtempSync(join(tmpdir(), 'domcast-unit-')),
      DOMCAST_API_KEY: KEY,
      ...env,
    }),
  );
}

function addSession(server: Server, visual = true): Session {
  return server.deps.registry.create({
    workflowName: 'registered',
    steps: [],
    visual,
    quality: 'standard',
    limits: { bufferEvents: 100 },
    metrics: server.deps.metrics,
  });
}

interface Answer {
  status: number;
  body: Record<string, unknown>;
  headers: Record<string, unknown>;
}

async function call(server: Server, method: 'GET' | 'POST' | 'DELETE', url: string, opts: { key?: string; payload?: unknown } = {}): Promise<Answer> {
  const res = await server.app.inject({
    method,
    url,
    headers: opts.key ? { authorization: `Bearer ${opts.key}` } : {},
    ...(opts.payload !== undefined ? { payload: opts.payload as Record<string, unknown> } : {}),
  });
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(res.body) as Record<string, unknown>;
  } catch {
    body = { text: res.body };
  }
  return { status: res.statusCode, body, headers: res.headers };
}

describe('the API key', () => {
  let server: Server;
  before(async () => {
    server = makeServer();
    await server.app.ready();
  });
  after(() => server.close());

  test('an API call without the key is a 401 in JSON that says how to send it', async () => {
    const res = await call(server, 'POST', '/workflows/execute', { payload: { workflow: validWorkflow } });
    assert.equal(res.status, 401);
    assert.equal(res.body.code, 'UNAUTHORIZED');
    assert.match(String(res.body.error), /Authorization: Bearer/);
    assert.match(String(res.headers['www-authenticate']), /^Bearer/);
  });

  test('a wrong key is a 401', async () => {
    const res = await call(server, 'GET', '/workflows/sessions', { key: `${KEY}x` });
    assert.equal(res.status, 401);
    assert.equal(res.body.error, 'wrong API key');
  });

  test('every API route asks for it: listing, health figures, status, events, cancel, delete', async () => {
    const session = addSession(server);
    for (const [method, url] of [
      ['GET', '/workflows'],
      ['GET', '/workflows/sessions'],
      ['GET', '/health/visual'],
      ['GET', `/workflows/${session.id}`],
      ['GET', `/workflows/${session.id}/events`],
      ['POST', `/workflows/${session.id}/cancel`],
      ['DELETE', `/workflows/${session.id}`],
    ] as const) {
      assert.equal((await call(server, method, url)).status, 401, `${method} ${url}`);
    }
  });

  test('with the key the API answers, and a run comes back with tokenized viewer links', async () => {
    const res = await call(server, 'POST', '/workflows/execute', { key: KEY, payload: { workflow: validWorkflow, visual_enabled: true } });
    assert.equal(res.status, 202);
    const id = String(res.body.session_id);
    const viewerUrl = new URL(String(res.body.viewer_url));
    const streamUrl = new URL(String(res.body.visual_stream_url));
    const token = viewerUrl.searchParams.get('token');
    assert.ok(token);
    assert.equal(streamUrl.searchParams.get('token'), token);
    assert.deepEqual(await server.deps.viewerTokens.verify(token, id), { ok: true });
    assert.ok(Date.parse(String(res.body.viewer_token_expires_at)) > Date.now() + 3500_000);
    await server.deps.runs.idle();
  });

  test('liveness and the viewer assets are public', async () => {
    assert.equal((await call(server, 'GET', '/health')).status, 200);
    assert.equal((await call(server, 'GET', '/assets/viewer.js')).status, 200);
  });
});

describe('viewer tokens', () => {
  let server: Server;
  before(async () => {
    server = makeServer();
    await server.app.ready();
  });
  after(() => server.close());

  test('the viewer page needs a token for its own session, even from the API key holder', async () => {
    const session = addSession(server);
    const other = addSession(server);
    const path = `/workflows/visual/${session.id}/viewer`;
    const none = await call(server, 'GET', path, { key: KEY });
    assert.equal(none.status, 401);
    assert.match(String(none.body.error), /viewer token is required/);
    const wrong = await call(server, 'GET', `${path}?token=${await server.deps.viewerTokens.issue(other.id)}`);
    assert.equal(wrong.status, 401);
    assert.match(String(wrong.body.error), /another session/);
    assert.equal((await call(server, 'GET', `${path}?token=${await server.deps.viewerTokens.issue(session.id)}`)).status, 200);
  });

  test('a browser opening a bad viewer link gets a page that says why; API clients get JSON', async () => {
    const session = addSession(server);
    const res = await server.app.inject({ method: 'GET', url: `/workflows/visual/${session.id}/viewer?token=x.y.z`, headers: { accept: 'text/html,application/xhtml+xml' } });
    assert.equal(res.statusCode, 401);
    assert.match(String(res.headers['content-type']), /^text\/html/);
    assert.match(res.body, /This viewer link does not work/);
    assert.match(res.body, /invalid viewer token/);
    assert.match(String(res.headers['content-security-policy']), /default-src 'none'/);
    const json = await call(server, 'GET', `/workflows/visual/${session.id}/viewer?token=x.y.z`);
    assert.equal(json.body.error, 'invalid viewer token');
  });

  test('a token reads its own session (status, events, screenshots) and nothing else', async () => {
    const session = addSession(server);
    const other = addSession(server);
    const token = await server.deps.viewerTokens.issue(session.id);
    assert.equal((await call(server, 'GET', `/workflows/${session.id}?token=${token}`)).status, 200);
    assert.equal((await call(server, 'GET', `/workflows/${session.id}/events`, { key: token })).status, 200);
    assert.equal((await call(server, 'GET', `/workflows/${other.id}?token=${token}`)).status, 401);
    assert.equal((await call(server, 'GET', `/workflows/${other.id}/events?token=${token}`)).status, 401);
    // Read-only: it cannot act on the session or reach the rest of the API.
    assert.equal((await call(server, 'POST', `/workflows/${session.id}/cancel?token=${token}`)).status, 401);
    assert.equal((await call(server, 'DELETE', `/workflows/${session.id}`, { key: token })).status, 401);
    assert.equal((await call(server, 'GET', `/workflows/sessions?token=${token}`)).status, 401);
    assert.equal((await call(server, 'POST', '/workflows/execute', { key: token, payload: { workflow: validWorkflow } })).status, 401);
  });

  test('a token holder is not handed fresh links; the API key holder is', async () => {
    const session = addSession(server);
    const token = await server.deps.viewerTokens.issue(session.id);
    const asViewer = await call(server, 'GET', `/workflows/${session.id}?token=${token}`);
    assert.equal(asViewer.body.viewer_url, undefined);
    const asOwner = await call(server, 'GET', `/workflows/${session.id}`, { key: KEY });
    assert.match(String(asOwner.body.viewer_url), /\/viewer\?token=/);
  });

  test('an expired, tampered, unsigned or foreign token is refused', async () => {
    const session = addSession(server);
    const path = `/workflows/visual/${session.id}/viewer?token=`;
    const good = await server.deps.viewerTokens.issue(session.id);
    const [head, payload] = good.split('.');
    const forged = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as Record<string, unknown>;
    const unsigned = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${payload}.`;
    const tampered = `${head}.${Buffer.from(JSON.stringify({ ...forged, exp: 9_999_999_999 })).toString('base64url')}.${good.split('.')[2]}`;
    const otherKey = await new ViewerTokens(new Uint8Array(32).fill(7), 60).issue(session.id);
    const expired = await new SignJWT({ scope: 'view' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(session.id)
      .setIssuer('domcast')
      .setAudience('domcast-viewer')
      .setExpirationTime(Math.floor(Date.now() / 1000) - 5)
      .sign(new TextEncoder().encode('not-the-key'));
    for (const [name, token] of Object.entries({ unsigned, tampered, otherKey, expired, garbage: 'a.b.c' })) {
      const res = await call(server, 'GET', `${path}${token}`);
      assert.equal(res.status, 401, name);
    }
  });

  test('an expired token says so', async () => {
    const secret = new Uint8Array(32).fill(1);
    const token = await new SignJWT({ scope: 'view' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('s1')
      .setIssuer('domcast')
      .setAudience('domcast-viewer')
      .setExpirationTime(Math.floor(Date.now() / 1000) - 5)
      .sign(secret);
    assert.deepEqual(await new ViewerTokens(secret, 10).verify(token, 's1'), { ok: false, reason: 'this viewer link has expired; ask for a new one' });
  });

  test('the signing key is kept in the data folder, so links survive a restart', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'domcast-unit-'));
    const first = makeServer({ DOMCAST_DATA_DIR: dataDir });
    const token = await first.deps.viewerTokens.issue('kept');
    await first.close();
    const second = makeServer({ DOMCAST_DATA_DIR: dataDir });
    assert.deepEqual(await second.deps.viewerTokens.verify(token, 'kept'), { ok: true });
    await second.close();
  });
});

describe('without an API key', () => {
  let server: Server;
  before(async () => {
    server = makeServer({ DOMCAST_API_KEY: '' });
    await server.app.ready();
  });
  after(() => server.close());

  test('the API is open, but the viewer page still needs its token', async () => {
    const session = addSession(server);
    assert.equal((await call(server, 'GET', `/workflows/${session.id}`)).status, 200);
    assert.equal((await call(server, 'GET', `/workflows/visual/${session.id}/viewer`)).status, 401);
  });
});

describe('limits on runs', () => {
  let server: Server;
  before(async () => {
    server = makeServer({ EXECUTE_RATE_LIMIT: '1000', MAX_BODY_BYTES: '2048', MAX_WORKFLOW_STEPS: '3' });
    await server.app.ready();
  });
  after(() => server.close());

  test('a body over MAX_BODY_BYTES is a 413 that names the limit', async () => {
    const res = await call(server, 'POST', '/workflows/execute', { key: KEY, payload: { workflow: { name: 'x'.repeat(3000), steps: [] } } });
    assert.equal(res.status, 413);
    assert.match(String(res.body.error), /larger than 2048 bytes \(MAX_BODY_BYTES\)/);
  });

  test('a workflow with more steps than MAX_WORKFLOW_STEPS is a 400', async () => {
    const steps = Array.from({ length: 4 }, () => ({ type: 'wait', ms: 1 }));
    const res = await call(server, 'POST', '/workflows/execute', { key: KEY, payload: { workflow: { name: 'long', steps } } });
    assert.equal(res.status, 400);
    assert.match(String(res.body.error), /4 steps; this server runs at most 3 \(MAX_WORKFLOW_STEPS\)/);
  });

  test('past EXECUTE_RATE_LIMIT a minute, starting runs is a 429 with Retry-After', async () => {
    const limitedServer = makeServer({ EXECUTE_RATE_LIMIT: '3' });
    const start = () => call(limitedServer, 'POST', '/workflows/execute', { key: KEY, payload: { workflow: validWorkflow } });
    for (let i = 0; i < 3; i++) assert.equal((await start()).status, 202);
    const limited = await start();
    assert.equal(limited.status, 429);
    assert.equal(limited.body.code, 'RATE_LIMITED');
    assert.ok(Number(limited.headers['retry-after']) >= 1);
    // Other routes are not limited.
    assert.equal((await call(limitedServer, 'GET', '/workflows/sessions', { key: KEY })).status, 200);
    await limitedServer.deps.runs.idle();
    await limitedServer.close();
  });

  test('while shutting down, new runs are a 503 and /health says draining', async () => {
    server.deps.lifecycle.draining = true;
    const res = await call(server, 'POST', '/workflows/execute', { key: KEY, payload: { workflow: validWorkflow } });
    assert.equal(res.status, 503);
    assert.equal(res.body.code, 'SHUTTING_DOWN');
    assert.equal((await call(server, 'GET', '/health')).body.status, 'draining');
  });
});

describe('RateLimiter', () => {
  test('allows a burst of perMinute, then refills continuously', () => {
    let now = 0;
    const limiter = new RateLimiter(6, 100, () => now);
    for (let i = 0; i < 6; i++) assert.equal(limiter.take('a'), 0);
    assert.equal(limiter.take('a'), 10, 'one call every 10 s');
    assert.equal(limiter.take('b'), 0, 'callers have their own buckets');
    now += 10_000;
    assert.equal(limiter.take('a'), 0);
    assert.ok(limiter.take('a') > 0);
  });

  test('0 a minute turns it off', () => {
    const limiter = new RateLimiter(0);
    for (let i = 0; i < 1000; i++) assert.equal(limiter.take('a'), 0);
  });

  test('remembers at most maxCallers; the longest idle is forgotten first', () => {
    const now = 0;
    const limiter = new RateLimiter(1, 2, () => now);
    limiter.take('a');
    limiter.take('b');
    assert.ok(limiter.take('a') > 0);
    limiter.take('c'); // forgets b, the longest idle
    assert.equal(limiter.take('b'), 0);
  });
});

describe('viewerOriginAllowed', () => {
  test('same host as the request, or listed', () => {
    assert.equal(viewerOriginAllowed('http://127.0.0.1:3000', '127.0.0.1:3000', []), true);
    assert.equal(viewerOriginAllowed('https://watch.example.com', 'watch.example.com', []), true);
    assert.equal(viewerOriginAllowed('http://evil.test', '127.0.0.1:3000', []), false);
    assert.equal(viewerOriginAllowed('http://127.0.0.1:3001', '127.0.0.1:3000', []), false);
    assert.equal(viewerOriginAllowed('https://app.example.com', '127.0.0.1:3000', ['https://app.example.com']), true);
    assert.equal(viewerOriginAllowed('null', '127.0.0.1:3000', []), false);
    assert.equal(viewerOriginAllowed('file://', '127.0.0.1:3000', []), false);
    assert.equal(viewerOriginAllowed('http://127.0.0.1:3000', undefined, []), false);
  });
});
