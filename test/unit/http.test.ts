import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, loadConfig, type Server } from '../../src/server/index.js';
import type { Session } from '../../src/session/index.js';

/**
 * Routes through fastify's inject: no port, no browser. CHROMIUM_PATH points nowhere so that a
 * request that slipped through validation would fail fast instead of launching Chromium.
 * Needs the built viewer assets (node scripts/build.mjs).
 */
interface ErrorBody {
  error: string;
  code?: string;
}

const validWorkflow = { name: 'w', steps: [{ type: 'wait', ms: 1 }] };

describe('HTTP routes', () => {
  let server: Server;

  before(async () => {
    server = createServer(
      loadConfig({
        PORT: '0',
        LOG_LEVEL: 'silent',
        CHROMIUM_PATH: '/nonexistent/domcast-unit-test-chromium',
        DOMCAST_DATA_DIR: mkdtempSync(join(tmpdir(), 'domcast-unit-')),
      }),
    );
    await server.app.ready();
  });
  after(async () => {
    await server?.close();
  });

  async function execute(payload: unknown, contentType = 'application/json'): Promise<{ status: number; body: ErrorBody }> {
    const res = await server.app.inject({
      method: 'POST',
      url: '/workflows/execute',
      headers: { 'content-type': contentType },
      payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
    });
    assert.match(String(res.headers['content-type']), /^application\/json/);
    return { status: res.statusCode, body: res.json<ErrorBody>() };
  }

  async function get(url: string): Promise<{ status: number; type: string; body: string }> {
    const res = await server.app.inject({ method: 'GET', url });
    return { status: res.statusCode, type: String(res.headers['content-type']), body: res.body };
  }

  function addSession(visual: boolean): Session {
    return server.deps.registry.create({
      workflowName: 'registered',
      steps: [{ type: 'wait', description: null }],
      visual,
      quality: 'standard',
      limits: { bufferEvents: 100 },
      metrics: server.deps.metrics,
    });
  }

  describe('POST /workflows/execute refuses bad requests before running anything', () => {
    test('malformed JSON is a 400 with an error', async () => {
      const { status, body } = await execute('{"workflow": ');
      assert.equal(status, 400);
      assert.equal(typeof body.error, 'string');
      assert.ok(body.error.length > 0);
    });

    test('an empty JSON body is a 400 with an error', async () => {
      const { status, body } = await execute('');
      assert.equal(status, 400);
      assert.equal(typeof body.error, 'string');
    });

    for (const [label, payload] of [
      ['a JSON string', '"run it"'],
      ['JSON null', 'null'],
      ['a number', '42'],
    ] as const) {
      test(`a body that is ${label} instead of an object is a 400 asking for a JSON object`, async () => {
        const { status, body } = await execute(payload);
        assert.equal(status, 400);
        assert.match(body.error, /JSON object/);
      });
    }

    test('a body that is an array is a 400', async () => {
      const { status, body } = await execute('[{"workflow":{}}]');
      assert.equal(status, 400);
      assert.match(body.error, /object/);
    });

    test('a plain-text body is a 400 asking for a JSON object', async () => {
      const { status, body } = await execute('{"workflow":{}}', 'text/plain');
      assert.equal(status, 400);
      assert.match(body.error, /JSON object/);
    });

    test('a body of an unsupported media type is a 415 asking for JSON', async () => {
      const { status, body } = await execute('<workflow/>', 'application/xml');
      assert.equal(status, 415);
      assert.match(body.error, /must be JSON/);
    });

    test('a body without workflow or name is a 400 that mentions workflow', async () => {
      const { status, body } = await execute({ inputs: {} });
      assert.equal(status, 400);
      assert.match(body.error, /workflow/);
      assert.equal(body.code, 'BAD_REQUEST');
    });

    test('giving both workflow and name is a 400', async () => {
      const { status, body } = await execute({ workflow: validWorkflow, name: 'demo' });
      assert.equal(status, 400);
      assert.match(body.error, /either "workflow" or "name"/);
    });

    test('a non-boolean visual_enabled is a 400 naming visual_enabled', async () => {
      const { status, body } = await execute({ workflow: validWorkflow, visual_enabled: 'yes' });
      assert.equal(status, 400);
      assert.match(body.error, /^visual_enabled: /);
    });

    test('an unknown top-level field is a 400 naming the field', async () => {
      const { status, body } = await execute({ workflow: validWorkflow, visual: true });
      assert.equal(status, 400);
      assert.match(body.error, /"visual"/);
    });

    test('a step field of the wrong type is a 400 naming the step index and the field', async () => {
      const { status, body } = await execute({
        workflow: { name: 'w', steps: [{ type: 'wait', ms: 1 }, { type: 'click', cssSelector: 5 }] },
      });
      assert.equal(status, 400);
      assert.match(body.error, /^workflow\.steps\[1\]\.cssSelector: /);
    });

    test('an agent step is a 400 saying it needs a language model', async () => {
      const { status, body } = await execute({ workflow: { name: 'w', steps: [{ type: 'agent', task: 'book a flight' }] } });
      assert.equal(status, 400);
      assert.match(body.error, /workflow\.steps\[0\]\.type: step type "agent" needs a language model/);
    });

    test('a visual_quality other than standard or high is a 400 naming visual_quality', async () => {
      const { status, body } = await execute({ workflow: validWorkflow, visual_quality: 'ultra' });
      assert.equal(status, 400);
      assert.match(body.error, /^visual_quality: /);
    });

    test('an input value that is not a string, number or boolean is a 400 naming the input', async () => {
      const { status, body } = await execute({ workflow: validWorkflow, inputs: { q: ['a'] } });
      assert.equal(status, 400);
      assert.match(body.error, /^inputs\.q: /);
    });

    test('a missing required input is a 400 naming it', async () => {
      const { status, body } = await execute({
        workflow: { ...validWorkflow, input_schema: [{ name: 'site', type: 'string', required: true }] },
      });
      assert.equal(status, 400);
      assert.equal(body.error, 'input "site" is required');
    });

    test('a stored workflow name with a path in it is a 400', async () => {
      const { status, body } = await execute({ name: '../package' });
      assert.equal(status, 400);
      assert.match(body.error, /^name: /);
    });

    test('an unknown stored workflow name is a 404', async () => {
      const { status, body } = await execute({ name: 'no-such-workflow' });
      assert.equal(status, 404);
      assert.match(body.error, /^no stored workflow named "no-such-workflow" in \//);
      assert.equal(body.code, 'NOT_FOUND');
    });

    test('none of the refused requests created a session', () => {
      assert.equal([...server.deps.registry.all()].length, 0);
    });
  });

  describe('GET routes', () => {
    test('GET /workflows/<unknown> is a 404 with an error', async () => {
      const res = await get('/workflows/does-not-exist');
      assert.equal(res.status, 404);
      assert.match(res.type, /^application\/json/);
      assert.equal((JSON.parse(res.body) as ErrorBody).error, 'unknown session does-not-exist');
    });

    test('GET /workflows/visual/<unknown>/viewer is a 404 (with a token for that id)', async () => {
      const token = await server.deps.viewerTokens.issue('does-not-exist');
      const res = await get(`/workflows/visual/does-not-exist/viewer?token=${token}`);
      assert.equal(res.status, 404);
      assert.match((JSON.parse(res.body) as ErrorBody).error, /unknown session/);
    });

    test('an unknown route is a 404 in JSON naming the method and path', async () => {
      const res = await get('/no/such/route?x=1');
      assert.equal(res.status, 404);
      assert.match(res.type, /^application\/json/);
      assert.deepEqual(JSON.parse(res.body), { error: 'no route GET /no/such/route', code: 'NOT_FOUND' });
    });

    test('GET /health/visual reports active sessions, events processed and average latency', async () => {
      const res = await get('/health/visual');
      assert.equal(res.status, 200);
      const body = JSON.parse(res.body) as Record<string, unknown>;
      assert.equal(body.status, 'ok');
      assert.equal(typeof body.active_sessions, 'number');
      assert.equal(typeof body.total_events_processed, 'number');
      assert.ok('average_latency' in body);
      assert.equal(body.max_viewers, 100);
      assert.equal(body.event_buffer_size, 1000);
      const delay = body.event_loop_delay_ms as Record<string, number>;
      for (const k of ['p50', 'p99', 'max', 'window_s', 'max_since_start']) assert.equal(typeof delay[k], 'number', k);
    });

    test('GET /health/visual counts live sessions and their events', async (t) => {
      t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
      const before = JSON.parse((await get('/health/visual')).body) as Record<string, number>;
      const session = addSession(false);
      session.ingest(JSON.stringify([{ type: 3, timestamp: 1_000_000 - 20 }, { type: 3, timestamp: 1_000_000 - 40 }]));
      const during = JSON.parse((await get('/health/visual')).body) as Record<string, number>;
      assert.equal(during.active_sessions, (before.active_sessions ?? 0) + 1);
      assert.equal(during.total_events_processed, (before.total_events_processed ?? 0) + 2);
      assert.equal(during.average_latency, 30);
      session.setStatus('succeeded');
      const afterwards = JSON.parse((await get('/health/visual')).body) as Record<string, number>;
      assert.equal(afterwards.active_sessions, before.active_sessions);
    });

    test('GET /workflows/<id> of a known session answers its state', async () => {
      const session = addSession(false);
      const res = await get(`/workflows/${session.id}`);
      assert.equal(res.status, 200);
      const body = JSON.parse(res.body) as Record<string, unknown>;
      assert.equal(body.session_id, session.id);
      assert.equal(body.workflow, 'registered');
      assert.equal(body.status, 'queued');
    });

    test('the viewer of a session without visual is a 404 saying there is nothing to view', async () => {
      const session = addSession(false);
      const res = await get(`/workflows/visual/${session.id}/viewer?token=${await server.deps.viewerTokens.issue(session.id)}`);
      assert.equal(res.status, 404);
      assert.match((JSON.parse(res.body) as ErrorBody).error, /visual_enabled=false/);
    });

    test('the viewer of a visual session is HTML under a restrictive CSP', async () => {
      const session = addSession(true);
      const token = await server.deps.viewerTokens.issue(session.id);
      const res = await server.app.inject({ method: 'GET', url: `/workflows/visual/${session.id}/viewer?token=${token}` });
      assert.equal(res.statusCode, 200);
      assert.match(String(res.headers['content-type']), /^text\/html/);
      assert.match(String(res.headers['content-security-policy']), /default-src 'none'/);
    });

    test('GET /workflows/<id>/screenshot without a failure screenshot is a 404', async () => {
      const session = addSession(false);
      const res = await get(`/workflows/${session.id}/screenshot`);
      assert.equal(res.status, 404);
      assert.match((JSON.parse(res.body) as ErrorBody).error, /no failure screenshot/);
    });
  });
});
