import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { projectRoot } from '../../src/common/index.js';
import { launchViewerBrowser, replayedText, waitFor } from '../helpers/stack.js';

const cli = join(projectRoot, 'dist', 'cli.js');

interface Child {
  proc: ChildProcessWithoutNullStreams;
  output: () => string;
  exit: Promise<number | null>;
}

function start(args: string[], env: Record<string, string> = {}): Child {
  const proc = spawn(process.execPath, args, { cwd: projectRoot, env: { ...process.env, PORT: '0', ...env }, stdio: 'pipe' });
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exit = new Promise<number | null>((resolve) => proc.on('exit', resolve));
  return { proc, output: () => out, exit };
}

/** GET without following redirects, with the Host header chosen (fetch will not set one). */
function get(url: string, host?: string): Promise<{ status: number; location: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: host ? { host } : {} }, (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, location: res.headers.location });
    });
    req.on('error', reject).end();
  });
}

const sessionOf = (location: string | undefined) => /^\/workflows\/visual\/([0-9a-f-]{36})\/viewer\?token=[\w.-]+$/.exec(location ?? '')?.[1];

test('npm run demo -- --once: a line per phase, a short link while the run goes, no link once it is over, and how to replay it', async () => {
  const data = mkdtempSync(join(tmpdir(), 'domcast-demo-'));
  const demo = start([join(projectRoot, 'scripts', 'demo.mjs'), '--once', '--site-port', '0'], { DOMCAST_DATA_DIR: data });
  const code = await demo.exit;
  const out = demo.output();
  assert.equal(code, 0, out);
  assert.match(out, /^\[1\/3\] Dependencies: all installed$/m);
  assert.match(out, /^\[2\/3\] Building dist\/: done in \d+:\d\d$/m);
  assert.match(out, /^\[3\/3\] Starting the demo$/m);
  assert.match(out, /API key: [0-9a-f]{48}/, 'the demo makes an API key and prints it');
  assert.match(out, /^Watch it while it runs: http:\/\/127\.0\.0\.1:\d+\/demo$/m, 'a short link');
  assert.match(out, /^run 1 {2}✓ 18\. Done/m);
  assert.match(out, /^Run 1 succeeded in \d+\.\d s\.$/m);
  assert.doesNotMatch(out, /token=/, 'no viewer link that dies with the process');
  assert.doesNotMatch(out, /still shows/);
  const after = out.slice(out.indexOf('Run 1 succeeded'));
  assert.doesNotMatch(after, /http:\/\//, 'after the run, no link at all: the server is gone');
  const hint = /The server has stopped\. Its recording is kept in \S+; replay it with:\n {2}DOMCAST_DATA_DIR=\S+ npx domcast export ([0-9a-f-]{36}) > run\.json && npx domcast replay run\.json/.exec(out);
  assert.ok(hint, out);

  // The replay hint works: the export is the run's recording.
  const exported = start([cli, 'export', hint[1]!], { DOMCAST_DATA_DIR: data });
  assert.equal(await exported.exit, 0, exported.output());
  const events = JSON.parse(exported.output()) as { type: number }[];
  assert.ok(events.length > 20 && events.some((e) => e.type === 2), 'a recording with a full snapshot');
});

test('domcast demo: the first viewer of the short link starts a run and sees it from its first page; later ones join it or start the next', async () => {
  const apiKey = randomBytes(24).toString('hex');
  const demo = start([cli, 'demo', '--site-port', '0'], { DOMCAST_DATA_DIR: mkdtempSync(join(tmpdir(), 'domcast-demo-')), DOMCAST_API_KEY: apiKey });
  const browser = await launchViewerBrowser();
  try {
    const link = await waitFor('the short link', () => /^Watch the demo: (http:\/\/127\.0\.0\.1:\d+\/demo)$/m.exec(demo.output())?.[1], 60_000);
    await new Promise((r) => setTimeout(r, 1000));
    assert.doesNotMatch(demo.output(), /Run 1/, 'no run before anyone watches');

    const page = await browser.newPage();
    await page.goto(link);
    const first = /^\/workflows\/visual\/([0-9a-f-]{36})\/viewer$/.exec(new URL(page.url()).pathname)?.[1];
    assert.ok(first, page.url());
    assert.match(demo.output(), new RegExp(`Run 1 of "Acme Portal tour" started \\(session ${first}\\)`));
    // Someone else opening the link while the run is still at its start joins it.
    const joined = await get(link);
    assert.equal(joined.status, 303);
    assert.equal(sessionOf(joined.location), first);

    // The viewer shows the sign-in page, the run's first: it joined at the start.
    await waitFor('the viewer shows the first page', async () => (await replayedText(page)).includes('Any username and password will do'));

    // Only this machine gets links: a request naming another host (DNS rebinding) is refused.
    assert.equal((await get(link, 'evil.example')).status, 403);

    // Ended early (the run to its end is the --once test's): cancelled through the API, with the key.
    const cancel = await fetch(`${new URL(link).origin}/workflows/${first}/cancel`, { method: 'POST', headers: { authorization: `Bearer ${apiKey}` } });
    assert.equal(cancel.status, 202, await cancel.text());
    await waitFor('the run ends', () => /^Run 1 cancelled/m.test(demo.output()), 60_000);
    assert.match(demo.output(), new RegExp(`^Open ${link.replace(/[.]/g, '\\.')} again to watch another run`, 'm'));
    const next = await get(link);
    assert.equal(next.status, 303);
    const second = sessionOf(next.location);
    assert.ok(second && second !== first, 'a run that is over is not joined: the link starts the next');
    await waitFor('run 2 starts', () => /Run 2 of "Acme Portal tour" started/.test(demo.output()));
  } finally {
    await browser.close();
    demo.proc.kill('SIGINT');
  }
  assert.equal(await demo.exit, 0, demo.output());
  assert.match(demo.output(), /Stopping…/);
});

test('installing shows progress: a status line every interval off a terminal, the command output on lines of its own', async () => {
  const progress = pathToFileURL(join(projectRoot, 'scripts', 'progress.mjs')).href;
  const script = `
    const { runWithProgress } = await import(${JSON.stringify(progress)});
    const r = await runWithProgress({ label: 'Installing', cmd: process.execPath, args: ['-e', 'setTimeout(() => console.log("added 3 packages"), 1100)'],
      tty: false, everyMs: 300, detail: () => '2/3 packages' });
    console.log('exit', r.code);`;
  const child = start(['--input-type=module', '-e', script]);
  assert.equal(await child.exit, 0, child.output());
  const lines = child.output().trim().split('\n');
  assert.ok(lines.filter((l) => /^ {2}… Installing · 2\/3 packages · 0:0\d$/.test(l)).length >= 2, child.output());
  assert.ok(lines.includes('added 3 packages'));
  assert.equal(lines.at(-1), 'exit 0');
});

test('the demo refuses an address other machines reach: its short link hands out viewer links', async () => {
  const demo = start([cli, 'demo'], { HOST: '0.0.0.0' });
  assert.equal(await demo.exit, 1);
  assert.match(demo.output(), /^domcast: HOST=0\.0\.0\.0: the demo listens on this machine only \(127\.0\.0\.1\); for a server others reach, use domcast serve$/m);
});

test('invalid settings stop the server at start with a message naming the variable', async () => {
  const serve = start([cli, 'serve'], { VISUAL_WEBSOCKET_MAX_CONNECTIONS: 'lots' });
  assert.equal(await serve.exit, 1);
  assert.match(serve.output(), /VISUAL_WEBSOCKET_MAX_CONNECTIONS="lots": must be a whole number/);
});
