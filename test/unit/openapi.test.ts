import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import { createServer, loadConfig, type Server } from '../../src/server/index.js';

/**
 * The API contract: /openapi.json is a valid OpenAPI 3.1 document, every route the server
 * registered is in it (whoever added the route), and the schemas behind it validate requests and
 * keep every field of the answers. Needs the built assets (node scripts/build.mjs).
 */
type OpenApi = {
  openapi: string;
  paths: Record<string, Record<string, { security?: Record<string, string[]>[]; responses?: Record<string, unknown> }>>;
  components?: { securitySchemes?: Record<string, unknown> };
};

const KEY = 'k'.repeat(32);

function makeServer(env: Record<string, string> = {}): Server {
  return createServer(
    loadConfig({
      PORT: '0',
      LOG_LEVEL: 'silent',
      CHROMIUM_PATH: '/nonexistent/domcast-unit-test-chromium',
      DOMCAST_DATA_DIR: mkdtempSync(join(tmpdir(), 'domcast-openapi-')),
      ...env,
    }),
  );
}

/** `/workflows/:id/steps/:index/screenshot` → `/workflows/{id}/steps/{index}/screenshot`, as OpenAPI writes paths. */
const openApiPath = (url: string) => url.replace(/:(\w+)/g, '{$1}');

describe('GET /openapi.json', () => {
  let server: Server;
  let doc: OpenApi;
  before(async () => {
    server = makeServer({ DOMCAST_API_KEY: KEY });
    await server.app.ready();
    const res = await server.app.inject({ method: 'GET', url: '/openapi.json' });
    assert.equal(res.statusCode, 200, 'public: no key needed');
    doc = res.json<OpenApi>();
  });
  after(() => server.close());

  test('is a valid OpenAPI 3.1 document, its $refs resolved', async () => {
    assert.match(doc.openapi, /^3\.1\./);
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc));
    assert.equal(result.valid, true, JSON.stringify(result.errors, null, 2));
    assert.equal(validator.version, '3.1');
    assert.doesNotThrow(() => validator.resolveRefs());
  });

  test('holds every route the server registered', () => {
    const routes = server.routes.filter((r) => r.method !== 'HEAD');
    assert.ok(routes.length >= 15, `only ${routes.length} routes seen`);
    const missing = routes.filter((r) => doc.paths[openApiPath(r.url)]?.[r.method.toLowerCase()] === undefined);
    assert.deepEqual(missing, [], 'routes missing from /openapi.json (add them in createServer, inside app.after)');
  });

  test('every operation documents its answers and who may call it', () => {
    const schemes = Object.keys(doc.components?.securitySchemes ?? {});
    for (const name of ['apiKey', 'viewerToken', 'assetCookie']) assert.ok(schemes.includes(name), name);
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        assert.ok(op.security, `${method} ${path}: no security`);
        for (const req of op.security) for (const name of Object.keys(req)) assert.ok(schemes.includes(name), `${method} ${path}: ${name}`);
        const codes = Object.keys(op.responses ?? {});
        assert.ok(codes.some((c) => /^2\d\d$|^3\d\d$/.test(c)), `${method} ${path}: no success answer described (${codes.join(', ')})`);
      }
    }
  });

  test("security follows each route's access rule", () => {
    assert.deepEqual(doc.paths['/health']?.get?.security, []);
    assert.deepEqual(doc.paths['/workflows/execute']?.post?.security, [{ apiKey: [] }]);
    assert.deepEqual(doc.paths['/workflows/{id}']?.get?.security, [{ apiKey: [] }, { viewerToken: [] }]);
    assert.deepEqual(doc.paths['/workflows/visual/{id}/viewer']?.get?.security, [{ viewerToken: [] }]);
  });

  test("a run's answer is described field by field", () => {
    const text = JSON.stringify(doc);
    for (const field of ['current_step', 'failure', 'latency_ms', 'recording_stopped', 'viewer_token_expires_at', 'next_cursor']) {
      assert.ok(text.includes(`"${field}"`), field);
    }
  });
});

describe('GET /docs', () => {
  let server: Server;
  before(async () => {
    server = makeServer({ DOMCAST_API_KEY: KEY });
    await server.app.ready();
  });
  after(() => server.close());

  test('is a public page under a strict CSP that loads only our own files', async () => {
    const res = await server.app.inject({ method: 'GET', url: '/docs' });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^text\/html/);
    const csp = String(res.headers['content-security-policy']);
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.doesNotMatch(res.body, /https?:\/\//, 'no CDN, no absolute URL');
    assert.doesNotMatch(res.body, /<script>/, 'no inline script');
    const srcs = [...res.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1] ?? '').filter((src) => !src.startsWith('data:'));
    assert.ok(srcs.length >= 3);
    for (const src of srcs) {
      const file = await server.app.inject({ method: 'GET', url: `/${src}` });
      assert.equal(file.statusCode, 200, src);
      assert.ok(file.body.length > 0, src);
    }
  });

  test('names no file outside its own list', async () => {
    for (const name of ['package.json', '__proto__', 'index.html', '..%2Fpackage.json']) {
      assert.equal((await server.app.inject({ method: 'GET', url: `/docs/${name}` })).statusCode, 404, name);
    }
  });
});

describe('route schemas', () => {
  let server: Server;
  before(async () => {
    server = makeServer();
    await server.app.ready();
  });
  after(() => server.close());

  test('a bad query parameter is a 400 that names it', async () => {
    const res = await server.app.inject({ method: 'GET', url: '/workflows/sessions?limit=0' });
    assert.equal(res.statusCode, 400);
    assert.match(res.json<{ error: string }>().error, /^limit: /);
    assert.equal(res.json<{ code: string }>().code, 'BAD_REQUEST');
    const unknown = await server.app.inject({ method: 'GET', url: '/workflows/sessions?colour=red' });
    assert.equal(unknown.statusCode, 400);
    assert.match(unknown.json<{ error: string }>().error, /"colour"/);
    const status = await server.app.inject({ method: 'GET', url: '/workflows/sessions?status=exploded' });
    assert.match(status.json<{ error: string }>().error, /^status: /);
  });

  test("an answer keeps every field of a run's open shapes (steps, inputs, outputs)", async () => {
    const session = server.deps.registry.create({
      workflowName: 'open shapes',
      steps: [{ type: 'wait', description: 'one' }],
      visual: false,
      quality: 'standard',
      metrics: server.deps.metrics,
      inputs: { q: 'x', n: 2 },
    });
    session.setStatus('running');
    session.stepStarted(0);
    session.stepEnded(0, { durationMs: 5, matched: 'css', outputKey: 'text', value: { nested: [1, 2] } });
    const res = await server.app.inject({ method: 'GET', url: `/workflows/${session.id}` });
    assert.equal(res.statusCode, 200);
    const body = res.json<Record<string, unknown>>();
    assert.deepEqual(body.inputs, { q: 'x', n: 2 });
    assert.deepEqual(body.outputs, { text: { nested: [1, 2] } });
    assert.deepEqual(body.steps, [{ index: 0, type: 'wait', description: 'one', state: 'succeeded', durationMs: 5, matched: 'css' }]);
    assert.equal(body.current_step, 0);
    for (const key of ['visual_stream_url', 'viewer_url', 'viewer_token_expires_at']) assert.equal(body[key], null, key);
    session.setStatus('succeeded');
  });
});
