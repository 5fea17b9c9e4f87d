import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createServer, loadConfig, type Server } from '../../src/server/index.js';

/**
 * The dashboard's routes and the API additions it uses, through fastify's inject (no port, no
 * browser; CHROMIUM_PATH points nowhere). Needs the built assets (node scripts/build.mjs).
 */
const KEY = 'unit-dashboard-key-0123456789abcdef';
const auth = { authorization: `Bearer ${KEY}` };
const HOST = '127.0.0.1:3000';

describe('dashboard routes', () => {
  let server: Server;

  before(async () => {
    const flows = mkdtempSync(join(tmpdir(), 'domcast-unit-flows-'));
    writeFileSync(
      join(flows, 'typed.json'),
      JSON.stringify({ name: 'typed', input_schema: [{ name: 'user', type: 'string', required: true }, { name: 'n', type: 'number' }], steps: [{ type: 'wait', ms: 1 }] }),
    );
    server = createServer(
      loadConfig({
        PORT: '0',
        LOG_LEVEL: 'silent',
        DOMCAST_API_KEY: KEY,
        WORKFLOWS_DIR: flows,
        CHROMIUM_PATH: '/nonexistent/domcast-unit-test-chromium',
        DOMCAST_DATA_DIR: mkdtempSync(join(tmpdir(), 'domcast-unit-')),
      }),
    );
    await server.app.ready();
  });
  after(() => server?.close());

  const signIn = async (key = KEY, origin = `http://${HOST}`) =>
    server.app.inject({ method: 'POST', url: '/dashboard/session', headers: { host: HOST, origin, 'content-type': 'application/json' }, payload: { key } });

  test('GET / is the dashboard page, public, under a strict CSP', async () => {
    const res = await server.app.inject({ method: 'GET', url: '/' });
    assert.equal(res.statusCode, 200);
    assert.match(res.headers['content-type'] as string, /text\/html/);
    assert.match(res.headers['content-security-policy'] as string, /^default-src 'none'; script-src 'self';.*frame-ancestors 'none'/);
    assert.match(res.body, /<script src="dashboard\/dashboard.js"><\/script>/);
    assert.equal((await server.app.inject({ method: 'GET', url: '/dashboard/dashboard.js' })).statusCode, 200);
    assert.equal((await server.app.inject({ method: 'GET', url: '/dashboard/nope.js' })).statusCode, 404);
  });

  test('a wrong key or a cross-origin sign-in gets no cookie; the right key from our origin does', async () => {
    const wrong = await signIn('wrong-key-wrong-key-wrong');
    assert.equal(wrong.statusCode, 401);
    assert.equal(wrong.headers['set-cookie'], undefined);
    const forced = await signIn(KEY, 'http://evil.example');
    assert.equal(forced.statusCode, 403);
    assert.equal(forced.headers['set-cookie'], undefined);
    const ok = await signIn();
    assert.equal(ok.statusCode, 204);
    const cookie = String(ok.headers['set-cookie']);
    assert.match(cookie, /^domcast_session=[\w-]{43}; Max-Age=(43200|4319\d); Path=\/; HttpOnly; SameSite=Strict$/);
    const state = await server.app.inject({ method: 'GET', url: '/dashboard/session', headers: { cookie: cookie.split(';')[0]! } });
    assert.deepEqual(state.json(), { key_required: true, signed_in: true });
  });

  test("the cookie opens the API but not a viewer page; a run's bad inputs come back per field", async () => {
    const cookie = String((await signIn()).headers['set-cookie']).split(';')[0]!;
    assert.equal((await server.app.inject({ method: 'GET', url: '/workflows', headers: { cookie } })).statusCode, 200);
    assert.equal((await server.app.inject({ method: 'GET', url: '/workflows' })).statusCode, 401);
    const bad = await server.app.inject({
      method: 'POST',
      url: '/workflows/execute',
      headers: { cookie, host: HOST, origin: `http://${HOST}`, 'content-type': 'application/json' },
      payload: { name: 'typed', inputs: { n: 'x', nope: 1 } },
    });
    assert.equal(bad.statusCode, 400);
    const body = bad.json() as { error: string; code: string; fields: Record<string, string> };
    assert.match(body.error, /^input "user" is required; input "n" must be a number, got string; unknown input "nope"/);
    assert.deepEqual(body.fields, { user: 'required', n: 'must be a number', nope: 'not an input of this workflow' });
    const viewer = await server.app.inject({ method: 'GET', url: '/workflows/visual/x/viewer', headers: { cookie } });
    assert.equal(viewer.statusCode, 401);
  });

  test('POST /workflows/{id}/links: a lifetime from a minute to a week, for a visual run', async () => {
    const session = server.deps.registry.create({ workflowName: 'w', steps: [], visual: true, quality: 'standard', metrics: server.deps.metrics });
    const link = (ttl: unknown, id = session.id) =>
      server.app.inject({ method: 'POST', url: `/workflows/${id}/links`, headers: { ...auth, host: HOST, 'content-type': 'application/json' }, payload: { ttl_s: ttl } });
    const ok = await link(600);
    assert.equal(ok.statusCode, 201);
    const answer = ok.json() as { viewer_url: string; expires_at: string };
    assert.match(answer.viewer_url, new RegExp(`^http://${HOST}/workflows/visual/${session.id}/viewer\\?token=`));
    assert.ok(Math.abs(Date.parse(answer.expires_at) - Date.now() - 600_000) < 5000);
    for (const ttl of [59, 604_801, 'soon', 1.5]) assert.equal((await link(ttl)).statusCode, 400, String(ttl));
    assert.equal((await link(600, 'no-such-run')).statusCode, 404);
    const blind = server.deps.registry.create({ workflowName: 'w', steps: [], visual: false, quality: 'standard', metrics: server.deps.metrics });
    assert.equal((await link(600, blind.id)).statusCode, 409);
  });
});

describe('the sessions list without recordings (DOMCAST_RECORDINGS=false)', () => {
  let server: Server;
  before(async () => {
    server = createServer(
      loadConfig({
        PORT: '0',
        LOG_LEVEL: 'silent',
        DOMCAST_RECORDINGS: 'false',
        CHROMIUM_PATH: '/nonexistent/domcast-unit-test-chromium',
        DOMCAST_DATA_DIR: mkdtempSync(join(tmpdir(), 'domcast-unit-')),
      }),
    );
    await server.app.ready();
  });
  after(() => server?.close());

  test('lists the runs in memory, newest first, filtered and paged like the stored ones', async () => {
    const made = [];
    for (const name of ['a', 'b', 'a', 'b', 'a']) {
      made.push(server.deps.registry.create({ workflowName: name, steps: [], visual: false, quality: 'standard', metrics: server.deps.metrics }));
      await new Promise((r) => setTimeout(r, 2));
    }
    made[4]!.setStatus('running');
    const list = async (query: string) =>
      (await server.app.inject({ method: 'GET', url: `/workflows/sessions?${query}` })).json() as { sessions: { session_id: string; status: string }[]; next_cursor: string | null };
    const all = await list('limit=10');
    assert.deepEqual(all.sessions.map((s) => s.session_id), made.map((s) => s.id).reverse());
    assert.equal(all.next_cursor, null);
    const as = await list('workflow=a&limit=2');
    assert.deepEqual(as.sessions.map((s) => s.session_id), [made[4]!.id, made[2]!.id]);
    const rest = await list(`workflow=a&limit=2&cursor=${as.next_cursor}`);
    assert.deepEqual(rest.sessions.map((s) => s.session_id), [made[0]!.id]);
    assert.equal(rest.next_cursor, null);
    assert.deepEqual((await list('status=running')).sessions.map((s) => s.session_id), [made[4]!.id]);
  });
});
