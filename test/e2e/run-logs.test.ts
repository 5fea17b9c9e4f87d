import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pino } from 'pino';
import { serveStatic } from '../../src/cli/static-site.js';
import { projectRoot } from '../../src/common/paths.js';
import { createServer } from '../../src/server/app.js';
import { loadConfig } from '../../src/server/config.js';
import { demoWorkflow, execute, waitFor, WsViewer } from '../helpers/stack.js';

interface Line {
  level: number;
  msg: string;
  session?: string;
  [k: string]: unknown;
}

/** Lines that belong to no run: the server's own (its start, its store's schema migration), one per request, and browsers launched ahead of any run (the spare). */
const NOT_A_RUN = new Set(['Server listening at', 'request', 'chromium launched', 'store schema migrated']);

test('the log is JSON lines; every line of a run carries its session id: its start, each step (number from 1, type, ms), a failed step with its selector, refused viewers, its end', async () => {
  const lines: Line[] = [];
  const log = pino({ level: 'debug', base: { app: 'domcast' } }, { write: (l: string) => lines.push(JSON.parse(l) as Line) });
  const config = loadConfig({ PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'debug', DOMCAST_DATA_DIR: mkdtempSync(join(tmpdir(), 'domcast-logs-')) });
  const server = createServer(config, { log });
  const base = await server.listen();
  const site = await serveStatic(join(projectRoot, 'demo', 'site'));
  let ok: string;
  let bad: string;
  try {
    ok = (await execute(base, { workflow: demoWorkflow(site.url, { midWaitMs: 50, holdMs: 50 }), inputs: { user: 'x' }, visual_enabled: true })).body.session_id;
    const failing = { name: 'fails', steps: [{ type: 'navigation', url: `${site.url}/index.html` }, { type: 'click', cssSelector: '#nothing-here', timeoutMs: 300 }] };
    const second = await execute(base, { workflow: failing, visual_enabled: true });
    bad = second.body.session_id;
    // A viewer without its token is refused: that line names the session it asked for.
    const refused = await WsViewer.open(second.body.visual_stream_url!.replace(/token=[^&]+/, 'token=nope'));
    await refused.closed;
    for (const id of [ok, bad]) {
      await waitFor(`${id} to end`, async () => ((await (await fetch(`${base}/workflows/${id}`)).json()) as { ended_at: string | null }).ended_at, 60_000);
    }
  } finally {
    await server.close();
    await site.close();
  }
  const orphans = lines.filter((l) => !l.session && ![...NOT_A_RUN].some((m) => l.msg.startsWith(m)));
  assert.deepEqual(orphans, [], 'every line but the server\'s own, requests and spare browsers names its session');
  const of = (id: string): Line[] => lines.filter((l) => l.session === id);
  const msgs = (id: string): string[] => of(id).map((l) => l.msg);

  assert.equal(msgs(ok)[0], 'run started');
  assert.equal(msgs(ok).at(-1), 'run ended');
  const steps = of(ok).filter((l) => l.msg === 'step done');
  assert.deepEqual(steps.map((l) => l.step), Array.from({ length: 13 }, (_, i) => i + 1), 'one line per step, numbered from 1');
  assert.equal(steps[0]!.type, 'navigation');
  assert.ok(steps.every((l) => typeof l.ms === 'number'));
  assert.equal(of(ok).at(-1)!.status, 'succeeded');

  const failed = of(bad).find((l) => l.msg === 'step failed');
  assert.ok(failed, 'the failed step is logged');
  assert.equal(failed.step, 2);
  assert.equal(failed.selector, '#nothing-here');
  assert.match(String(failed.error), /no element matches #nothing-here/);
  assert.equal(of(bad).at(-1)!.status, 'failed');
  assert.ok(of(bad).some((l) => l.msg === 'viewer refused' && l.code === 4401), 'the refused viewer\'s line names the session');
});
