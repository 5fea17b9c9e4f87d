import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { serveStatic } from '../../src/cli/static-site.js';
import { projectRoot } from '../../src/common/index.js';
import { bodyText, replayedText, demoWorkflow, execute, launchViewerBrowser, startStack, waitFor, type Stack } from '../helpers/stack.js';

const cli = join(projectRoot, 'dist', 'cli.js');

function domcast(args: string[], env: Record<string, string> = {}): { child: ChildProcess; done: Promise<{ code: number | null; stdout: string; stderr: string }>; out: () => string } {
  const child = spawn(process.execPath, [cli, ...args], { cwd: projectRoot, env: { ...process.env, PORT: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return { child, out: () => stdout, done: new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr }))) };
}

describe('export and import', () => {
  let stack: Stack;
  let browser: Browser;
  let dataDir: string;
  let id: string;
  let expected: string;
  let exportText: string;
  const work = mkdtempSync(join(tmpdir(), 'domcast-export-'));

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'domcast-export-data-'));
    stack = await startStack({ BROWSER_ISOLATION: 'run', DOMCAST_DATA_DIR: dataDir });
    browser = await launchViewerBrowser();
    const { body } = await execute(stack.base, { workflow: demoWorkflow(stack.site.url, { midWaitMs: 200, holdMs: 1200 }), inputs: { user: 'alan' }, visual_enabled: true });
    id = body.session_id;
    const session = stack.server.deps.registry.get(id)!;
    await waitFor('the final hold', () => session.currentStep === 12);
    expected = (await stack.server.deps.runs.page(id)!.evaluate(bodyText)) as string;
    await waitFor('the end', () => session.finished);
    exportText = await (await fetch(`${stack.base}/workflows/${id}/events`)).text();
    writeFileSync(join(work, 'run.json'), exportText);
  });
  after(async () => {
    await browser?.close();
    await stack?.close();
  });

  test('domcast export writes the same recording as GET /workflows/{id}/events, with captured assets inlined as data: URLs', async () => {
    const { code, stdout, stderr } = await domcast(['export', id], { DOMCAST_DATA_DIR: dataDir }).done;
    assert.equal(code, 0, stderr);
    assert.deepEqual(JSON.parse(stdout), JSON.parse(exportText));
    // A run whose page has images: the served recording points at our copies, the export carries them.
    const { body } = await execute(stack.base, {
      workflow: { name: 'gallery', steps: [{ type: 'navigation', url: `${stack.site.url}/gallery.html` }, { type: 'wait', ms: 500 }] },
      visual_enabled: true,
    });
    await waitFor('the gallery run to end', () => stack.server.deps.registry.get(body.session_id)?.finished);
    const paths = `/workflows/visual/${body.session_id}/assets/`;
    const served = await waitFor('the stored recording to point at captured assets', async () => {
      await stack.server.deps.store.flush();
      const text = await (await fetch(`${stack.base}/workflows/${body.session_id}/events`)).text();
      return text.includes(paths) ? text : null;
    });
    const gallery = await domcast(['export', body.session_id], { DOMCAST_DATA_DIR: dataDir }).done;
    assert.equal(gallery.code, 0, gallery.stderr);
    const a = JSON.parse(served) as { type: number; timestamp: number }[];
    const b = JSON.parse(gallery.stdout) as { type: number; timestamp: number }[];
    assert.deepEqual(b.map((e) => [e.type, e.timestamp]), a.map((e) => [e.type, e.timestamp]));
    assert.ok(!gallery.stdout.includes(paths), 'the export carries its assets itself');
    assert.equal(gallery.stdout.match(/data:image\/svg\+xml;base64,/g)?.length, 3);
    const missing = await domcast(['export', 'no-such-session'], { DOMCAST_DATA_DIR: dataDir }).done;
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /no recording of session no-such-session/);
  });

  test('the exported file plays in the official rrweb-player and ends on the final page', async () => {
    const player = join(projectRoot, 'node_modules', 'rrweb-player', 'dist');
    copyFileSync(join(player, 'rrweb-player.umd.min.cjs'), join(work, 'rrweb-player.js'));
    copyFileSync(join(player, 'style.css'), join(work, 'rrweb-player.css'));
    writeFileSync(
      join(work, 'index.html'),
      `<!doctype html><html><head><meta charset="utf-8"><link rel="stylesheet" href="rrweb-player.css"></head><body>
<script src="rrweb-player.js"></script>
<script>
  fetch('run.json').then((r) => r.json()).then((events) => {
    const Player = rrwebPlayer.Player || rrwebPlayer.default || rrwebPlayer;
    const player = new Player({ target: document.body, props: { events, autoPlay: false, width: 640, height: 400 } });
    const total = player.getReplayer().getMetaData().totalTime;
    player.goto(total, false);
    window.playerReady = true;
  });
</script></body></html>`,
    );
    const site = await serveStatic(work);
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`${site.url}/index.html`);
      await waitFor('rrweb-player ready', () => page.evaluate(() => (window as unknown as { playerReady?: boolean }).playerReady === true));
      await waitFor('the final page in rrweb-player', async () => (await replayedText(page)) === expected);
      assert.deepEqual(errors, []);
      await page.close();
    } finally {
      await site.close();
    }
  });

  test('domcast replay serves a recording file in our viewer', async () => {
    const run = domcast(['replay', join(work, 'run.json')]);
    try {
      const url = await waitFor('the viewer URL', () => /(http:\/\/\S+\/viewer\?token=\S+)/.exec(run.out())?.[1]);
      const page = await browser.newPage();
      await page.goto(url);
      await waitFor('replay mode', () => page.evaluate(() => document.documentElement.dataset.connection === 'replay'));
      await waitFor('the final page', async () => (await replayedText(page)) === expected);
      // The file has no run behind it: the steps panel comes from the recording's own step marks.
      const rows = await page.$$eval('#steps li', (lis) => lis.map((li) => ({ index: li.dataset.index, state: li.className.split(' ')[0], text: li.querySelector('.d')!.firstChild!.textContent })));
      assert.equal(rows.length, 13, 'a row per step of the recorded run');
      assert.deepEqual(rows.map((r) => r.state), Array(13).fill('succeeded'));
      assert.equal(rows[0]!.text, '1. open');
      assert.equal(await page.getAttribute('#steps li[aria-current=step]', 'data-index'), '12', 'opened at the end: the last step is highlighted');
      await page.close();
    } finally {
      run.child.kill('SIGTERM');
      await run.done;
    }
  });

  test('a corrupt or truncated recording gets a clear error (exit 2)', async () => {
    const cases: [string, string, RegExp][] = [
      ['truncated.json', exportText.slice(0, Math.floor(exportText.length / 2)), /truncated\.json is not valid JSON \(truncated\?\)/],
      ['object.json', '{"events": []}', /object\.json is not an rrweb recording: expected a JSON array of events/],
      ['item.json', '[{"type": 4, "timestamp": 1}, {"hello": "x"}]', /item\.json is not an rrweb recording: item 1 has no numeric "type" and "timestamp"/],
      ['nometa.json', '[{"type": 3, "timestamp": 1, "data": {}}]', /nometa\.json is not a playable rrweb recording: it needs a Meta event followed by a FullSnapshot/],
    ];
    for (const [name, text, message] of cases) {
      writeFileSync(join(work, name), text);
      const { code, stderr } = await domcast(['replay', join(work, name)]).done;
      assert.equal(code, 2, `${name}: ${stderr}`);
      assert.match(stderr, message);
    }
  });
});
