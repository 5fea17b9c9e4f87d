import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ConfigError } from '../../src/common/index.js';
import { createServer, loadConfig, type Server } from '../../src/server/index.js';
import { clientAddress, requestHost, trustProxy } from '../../src/server/trust-proxy.js';

/** Through fastify's inject, whose connection comes from 127.0.0.1. Needs the built assets (node scripts/build.mjs). */
const servers: Server[] = [];
async function makeServer(env: Record<string, string> = {}): Promise<Server> {
  const server = createServer(
    loadConfig({
      PORT: '0',
      LOG_LEVEL: 'silent',
      CHROMIUM_PATH: '/nonexistent/domcast-unit-test-chromium',
      DOMCAST_DATA_DIR: mkdtempSync(join(tmpdir(), 'domcast-proxy-')),
      ...env,
    }),
  );
  servers.push(server);
  await server.app.ready();
  return server;
}
after(async () => {
  for (const s of servers) {
    await s.deps.runs.idle();
    await s.close();
  }
});

const visualRun = { workflow: { name: 'w', steps: [{ type: 'wait', ms: 1 }] }, visual_enabled: true };
const behindTls = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'watch.example.com', 'x-forwarded-for': '203.0.113.7' };

async function execute(server: Server, headers: Record<string, string>) {
  const res = await server.app.inject({ method: 'POST', url: '/workflows/execute', headers: { 'content-type': 'application/json', ...headers }, payload: visualRun });
  return { status: res.statusCode, body: res.json<Record<string, string | null>>() };
}

describe('TRUST_PROXY setting', () => {
  const parse = (v: string) => loadConfig({ TRUST_PROXY: v }).trustProxy;

  test('takes true, false, a hop count or the proxies\' addresses; off by default', () => {
    assert.equal(loadConfig({}).trustProxy, false);
    assert.equal(parse('true'), true);
    assert.equal(parse('FALSE'), false);
    assert.equal(parse('2'), 2);
    assert.deepEqual(parse('10.0.0.1, 10.1.0.0/16,loopback, ::1, fd00::/8'), ['10.0.0.1', '10.1.0.0/16', 'loopback', '::1', 'fd00::/8']);
  });

  for (const bad of ['yes please', '10.0.0.0/33', 'proxy.example.com', '10.0.0.1/8/8', '::1/129']) {
    test(`${JSON.stringify(bad)} stops the server at start with a message naming TRUST_PROXY`, () => {
      assert.throws(
        () => parse(bad),
        (err: unknown) => err instanceof ConfigError && /TRUST_PROXY=.*must be true, false, a number of proxies, or the proxies' addresses/.test(err.message),
      );
    });
  }
});

describe('behind a TLS proxy', () => {
  test('with TRUST_PROXY, links carry the public scheme and host (https://, wss://)', async () => {
    const server = await makeServer({ TRUST_PROXY: 'true' });
    const { status, body } = await execute(server, behindTls);
    assert.equal(status, 202);
    assert.match(String(body.viewer_url), /^https:\/\/watch\.example\.com\/workflows\/visual\/[^/]+\/viewer\?token=/);
    assert.match(String(body.visual_stream_url), /^wss:\/\/watch\.example\.com\/workflows\/visual\/[^/?]+\?token=/);
    const status2 = await server.app.inject({ method: 'GET', url: `/workflows/${body.session_id}`, headers: behindTls });
    assert.match(String(status2.json<{ viewer_url: string }>().viewer_url), /^https:\/\/watch\.example\.com\//);
  });

  test('without TRUST_PROXY, forwarded headers are ignored', async () => {
    const server = await makeServer();
    const { body } = await execute(server, { ...behindTls, host: 'internal:3000' });
    assert.match(String(body.viewer_url), /^http:\/\/internal:3000\//);
    assert.match(String(body.visual_stream_url), /^ws:\/\/internal:3000\//);
  });

  test('a proxy not on the list is not believed', async () => {
    const server = await makeServer({ TRUST_PROXY: '10.0.0.0/8' });
    const { body } = await execute(server, { ...behindTls, host: 'internal:3000' });
    assert.match(String(body.viewer_url), /^http:\/\/internal:3000\//, 'inject connects from 127.0.0.1');
  });

  test('a host that could change what a link means is a 400, not a link', async () => {
    const server = await makeServer({ TRUST_PROXY: 'true' });
    const { status, body } = await execute(server, { ...behindTls, 'x-forwarded-host': 'evil.example/x?' });
    assert.equal(status, 400);
    assert.match(String(body.error), /X-Forwarded-Host/);
  });

  test('with TRUST_PROXY, the run rate limit keys on each client\'s address', async () => {
    const server = await makeServer({ TRUST_PROXY: 'loopback', EXECUTE_RATE_LIMIT: '1' });
    assert.equal((await execute(server, { 'x-forwarded-for': '203.0.113.1' })).status, 202);
    assert.equal((await execute(server, { 'x-forwarded-for': '203.0.113.2' })).status, 202, 'another client');
    assert.equal((await execute(server, { 'x-forwarded-for': '203.0.113.1' })).status, 429, 'the same client again');
  });

  test('without TRUST_PROXY, every client behind the proxy shares its address', async () => {
    const server = await makeServer({ EXECUTE_RATE_LIMIT: '1' });
    assert.equal((await execute(server, { 'x-forwarded-for': '203.0.113.1' })).status, 202);
    assert.equal((await execute(server, { 'x-forwarded-for': '203.0.113.2' })).status, 429);
  });
});

describe('clientAddress and requestHost (viewer sockets)', () => {
  const req = (remoteAddress: string, headers: Record<string, string> = {}) => ({ socket: { remoteAddress }, headers }) as unknown as IncomingMessage;
  const xff = { 'x-forwarded-for': '198.51.100.9, 10.0.0.2, 10.0.0.3' };

  test('walks back past each trusted proxy, as fastify does for req.ip', () => {
    assert.equal(clientAddress(req('10.0.0.4', xff), trustProxy(false)), '10.0.0.4');
    assert.equal(clientAddress(req('10.0.0.4', xff), trustProxy(true)), '198.51.100.9');
    assert.equal(clientAddress(req('10.0.0.4', xff), trustProxy(1)), '10.0.0.3');
    assert.equal(clientAddress(req('10.0.0.4', xff), trustProxy(2)), '10.0.0.2');
    assert.equal(clientAddress(req('10.0.0.4', xff), trustProxy(['10.0.0.0/8'])), '198.51.100.9');
    assert.equal(clientAddress(req('::ffff:10.0.0.4', xff), trustProxy(['10.0.0.4', '10.0.0.3'])), '10.0.0.2');
    assert.equal(clientAddress(req('192.0.2.1', xff), trustProxy(['10.0.0.0/8'])), '192.0.2.1');
  });

  test('takes X-Forwarded-Host only from a trusted peer', () => {
    const r = req('127.0.0.1', { host: 'internal:3000', 'x-forwarded-host': 'watch.example.com' });
    assert.equal(requestHost(r, trustProxy(['loopback'])), 'watch.example.com');
    assert.equal(requestHost(r, trustProxy(false)), 'internal:3000');
    assert.equal(requestHost(r, trustProxy(['10.0.0.0/8'])), 'internal:3000');
  });
});
