import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import type { Logger } from '../../src/common/index.js';
import { createServer, loadConfig, type Server } from '../../src/server/index.js';

/** Through fastify's inject, no browser: who may scrape /metrics, and what request lines say. */
const KEY = 'unit-test-api-key-0123456789';
const METRICS_TOKEN = 'unit-test-metrics-token-0123';

function makeServer(env: Record<string, string> = {}, log?: Logger): Server {
  const config = loadConfig({
    PORT: '0',
    LOG_LEVEL: 'silent',
    CHROMIUM_PATH: '/nonexistent/domcast-unit-test-chromium',
    DOMCAST_DATA_DIR: mkdtempSync(join(tmpdir(), 'domcast-unit-')),
    ...env,
  });
  return createServer(config, log ? { log } : {});
}

async function scrape(server: Server, bearer?: string): Promise<{ status: number; body: string; type: string }> {
  const res = await server.app.inject({ method: 'GET', url: '/metrics', headers: bearer ? { authorization: `Bearer ${bearer}` } : {} });
  return { status: res.statusCode, body: res.body, type: String(res.headers['content-type']) };
}

describe('GET /metrics access', () => {
  test('with an API key: 401 without it, 200 with it; the metrics token is not needed', async () => {
    const server = makeServer({ DOMCAST_API_KEY: KEY });
    try {
      assert.equal((await scrape(server)).status, 401);
      assert.equal((await scrape(server, 'wrong-key-wrong-key-wrong')).status, 401);
      const ok = await scrape(server, KEY);
      assert.equal(ok.status, 200);
      assert.match(ok.type, /^text\/plain; version=0\.0\.4/);
      assert.match(ok.body, /^# HELP domcast_events_total /m);
      assert.match(ok.body, /^domcast_process_cpu_seconds_total /m, 'Node default metrics, prefixed');
    } finally {
      await server.close();
    }
  });

  test('with METRICS_TOKEN: the token or the API key opens it; the token opens nothing else', async () => {
    const server = makeServer({ DOMCAST_API_KEY: KEY, METRICS_TOKEN });
    try {
      assert.equal((await scrape(server)).status, 401);
      assert.equal((await scrape(server, METRICS_TOKEN)).status, 200);
      assert.equal((await scrape(server, KEY)).status, 200);
      const api = await server.app.inject({ method: 'GET', url: '/workflows/sessions', headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
      assert.equal(api.statusCode, 401);
    } finally {
      await server.close();
    }
  });

  test('METRICS_TOKEN without an API key still closes /metrics (the API stays open)', async () => {
    const server = makeServer({ METRICS_TOKEN });
    try {
      assert.equal((await scrape(server)).status, 401);
      assert.equal((await scrape(server, METRICS_TOKEN)).status, 200);
      assert.equal((await server.app.inject({ method: 'GET', url: '/workflows/sessions' })).statusCode, 200);
    } finally {
      await server.close();
    }
  });

  test('neither set: open, as the API is', async () => {
    const server = makeServer();
    try {
      assert.equal((await scrape(server)).status, 200);
    } finally {
      await server.close();
    }
  });

  test('each scrape reads the current figures, and two servers in one process keep their own', async () => {
    const a = makeServer();
    const b = makeServer();
    try {
      await a.app.ready(); // the registry (and its histogram's observer) is made with the routes
      a.deps.metrics.totalEventsProcessed = 7;
      a.deps.metrics.runsEnded.set('failed', 2);
      a.deps.metrics.latencyObserver?.(3);
      const text = (await scrape(a)).body;
      assert.match(text, /^domcast_events_total 7$/m);
      assert.match(text, /^domcast_runs_finished_total\{status="failed"\} 2$/m);
      assert.match(text, /^domcast_errors_total\{type="failed_run"\} 2$/m);
      assert.match(text, /^domcast_delivery_lag_seconds_bucket\{le="0.001"\} 0$/m);
      assert.match(text, /^domcast_delivery_lag_seconds_bucket\{le="0.005"\} 1$/m);
      assert.match(text, /^domcast_delivery_lag_seconds_count 1$/m);
      assert.match((await scrape(b)).body, /^domcast_events_total 0$/m);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('request logs', () => {
  test('one line per request with method, route, path, status and ms; never the query string (viewer tokens travel there)', async () => {
    const lines: Record<string, unknown>[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
    const server = makeServer({ DOMCAST_API_KEY: KEY }, log as unknown as Logger);
    try {
      const token = 'eyJhbGciOiJIUzI1NiJ9.secret-viewer-token.signature';
      await server.app.inject({ method: 'GET', url: `/workflows/some-id/events?token=${token}` });
      await server.app.inject({ method: 'GET', url: `/workflows/visual/some-id/viewer?token=${token}&t=5` });
      await server.app.inject({ method: 'GET', url: '/health' });
      const requests = lines.filter((l) => l.msg === 'request');
      assert.equal(requests.length, 3, JSON.stringify(lines));
      assert.deepEqual(
        requests.map((r) => [r.method, r.route, r.path, r.status]),
        [
          ['GET', '/workflows/:id/events', '/workflows/some-id/events', 401],
          ['GET', '/workflows/visual/:id/viewer', '/workflows/visual/some-id/viewer', 401],
          ['GET', '/health', '/health', 200],
        ],
      );
      for (const r of requests) assert.equal(typeof r.ms, 'number');
      assert.ok(!lines.some((l) => JSON.stringify(l).includes('secret-viewer-token')), 'a token was logged');
    } finally {
      await server.close();
    }
  });
});
