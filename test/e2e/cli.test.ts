import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { serveStatic, type StaticSite } from '../../src/cli/static-site.js';
import { projectRoot } from '../../src/common/index.js';

const cli = join(projectRoot, 'dist', 'cli.js');
const shop = join(projectRoot, 'test', 'fixtures', 'workflows', 'shop.json');

function domcast(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [cli, ...args], { cwd: projectRoot, env: { ...process.env, PORT: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
}

describe('domcast run', () => {
  let pages: StaticSite;
  before(async () => {
    pages = await serveStatic(join(projectRoot, 'test', 'fixtures', 'pages'));
  });
  after(async () => {
    await pages?.close();
  });

  test('runs a workflow file with typed inputs: a progress line per step, the viewer URL, outputs as JSON, exit 0', async () => {
    const { code, stdout, stderr } = await domcast(['run', shop, '--input', `base_url=${pages.url}`, '-i', 'qty=4', '-i', 'size=Small', '-i', 'gift=yes', '--visual']);
    assert.equal(code, 0, stderr);
    assert.match(stderr, /Watch it live: http:\/\/127\.0\.0\.1:\d+\/workflows\/visual\/[0-9a-f-]{36}\/viewer\?token=[\w.-]+/);
    const lines = stderr.split('\n').filter((l) => /^\s+✓\s+\d+\. .* \(\d+ ms\)$/.test(l));
    assert.equal(lines.length, 15, stderr);
    const result = JSON.parse(stdout) as { status: string; outputs: Record<string, string> };
    assert.equal(result.status, 'succeeded');
    assert.equal(result.outputs.result, 'Bought 4 x Small');
    assert.equal(result.outputs.after_text, 'clicked Other action');
    // The link dies with the command: what still works is said instead.
    assert.match(stderr, /The viewer link stops working now that the run is over \(--keep-serving keeps it open\)\. Its recording is kept in \S+; replay it with:\n {2}(DOMCAST_DATA_DIR=\S+ )?npx domcast export [0-9a-f-]{36} > run\.json && npx domcast replay run\.json\n$/);
  });

  test('one run starts one Chromium: no browser is launched ahead for a next run', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'domcast-one-')), 'one.json');
    writeFileSync(file, JSON.stringify({ name: 'one', steps: [{ type: 'navigation', url: `${pages.url}/inner.html` }] }));
    const { code, stderr } = await domcast(['run', file], { LOG_LEVEL: 'debug', LOG_FORMAT: 'json' });
    assert.equal(code, 0, stderr);
    assert.equal(stderr.split('\n').filter((l) => l.includes('"msg":"chromium launched"')).length, 1, stderr);
  });

  test('privacy flags reach the run: an invalid --block selector fails it before its first step, naming the field', async () => {
    const { code, stderr } = await domcast(['run', shop, '-i', `base_url=${pages.url}`, '-i', 'qty=1', '-i', 'size=Small', '-i', 'gift=no', '--visual', '--mask-all-inputs', '--block', '.card[']);
    assert.equal(code, 1);
    assert.match(stderr, /block_selector: not a valid CSS selector/);
  });

  test('a failing run prints its failed step and exits 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'domcast-cli-'));
    const file = join(dir, 'broken.json');
    writeFileSync(file, JSON.stringify({ name: 'broken', steps: [{ type: 'navigation', url: `${pages.url}/shop.html` }, { type: 'click', cssSelector: '#ghost', timeoutMs: 500 }] }));
    const { code, stdout, stderr } = await domcast(['run', file]);
    assert.equal(code, 1);
    assert.match(stderr, /✗ {2}2\. click \(\d+ ms\) — step 2 \(click #ghost\) failed: no element matches #ghost within 0\.5 s/);
    assert.equal((JSON.parse(stdout) as { status: string }).status, 'failed');
  });

  test('bad files, inputs and flags are usage errors that say precisely what is wrong (exit 2)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'domcast-cli-'));
    const invalid = join(dir, 'invalid.json');
    writeFileSync(invalid, JSON.stringify({ name: 'x', steps: [{ type: 'navigation', url: 'http://127.0.0.1/' }, { type: 'input', cssSelector: '#a', value: 5 }] }));
    const truncated = join(dir, 'truncated.json');
    writeFileSync(truncated, '{"name": "x", "steps": [');
    const cases: [string[], RegExp][] = [
      [['run', invalid], /invalid\.json is not a valid workflow: steps\[1\]\.value: /],
      [['run', truncated], /truncated\.json is not valid JSON/],
      [['run', join(dir, 'missing.json')], /cannot read .*missing\.json/],
      [['run', shop, '-i', `base_url=${pages.url}`, '-i', 'qty=many', '-i', 'size=Small'], /input "qty" must be a number, got "many"/],
      [['run', shop, '-i', `base_url=${pages.url}`, '-i', 'size=Small'], /input "qty" is required/],
      [['run', shop, '--quality', 'ultra'], /--quality must be standard or high/],
      [['run'], /expected one workflow file/],
    ];
    // One after the other: seven node processes starting at once starve the file running beside this
    // one (a cluster worker's heartbeat lapsed under that burst, 2026-12-06).
    for (const [args, message] of cases) {
      const { code, stderr } = await domcast(args);
      assert.equal(code, 2, `${args.join(' ')}: ${stderr}`);
      assert.match(stderr, message);
    }
  });

  test('a stored workflow runs by its name, as the API takes it (WORKFLOWS_DIR); an unknown name says where it looked', async () => {
    // Stored as `test`, which is also a folder where the command runs (as `demo` is in the project): the folder is not read.
    const stored = mkdtempSync(join(tmpdir(), 'domcast-flows-'));
    writeFileSync(join(stored, 'test.json'), readFileSync(shop));
    const ran = await domcast(['run', 'test', '-i', `base_url=${pages.url}`, '-i', 'qty=2', '-i', 'size=Large', '-i', 'gift=no'], { WORKFLOWS_DIR: stored });
    assert.equal(ran.code, 0, ran.stderr);
    assert.equal((JSON.parse(ran.stdout) as { outputs: Record<string, string> }).outputs.result, 'Bought 2 x Large');
    const none = await domcast(['run', 'no-such-flow'], { WORKFLOWS_DIR: stored });
    assert.equal(none.code, 2);
    assert.match(none.stderr, /no workflow file "no-such-flow", and no stored workflow of that name in \S+domcast-flows-\w+ \(WORKFLOWS_DIR\)/);
  });

  test('serve on a port in use says so and exits 1, without a stack trace', async () => {
    const busy = createServer(() => undefined);
    await new Promise<void>((ok) => busy.listen(0, '127.0.0.1', ok));
    try {
      const port = (busy.address() as AddressInfo).port;
      const { code, stderr } = await domcast(['serve'], { PORT: String(port), HOST: '127.0.0.1', DOMCAST_DATA_DIR: mkdtempSync(join(tmpdir(), 'domcast-cli-')) });
      assert.equal(code, 1);
      assert.match(stderr, new RegExp(`127\\.0\\.0\\.1:${port} is already in use \\(another domcast, or another program\\): stop it, or start on another port with PORT=`));
      assert.doesNotMatch(stderr, /^\s+at /m, 'no stack trace');
    } finally {
      busy.close();
    }
  });

  test('demo-site serves the demo site; on a port in use it says so and exits 1', async () => {
    const site = spawn(process.execPath, [cli, 'demo-site', '--port', '0'], { cwd: projectRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      site.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const url = await new Promise<string>((resolve) => site.stdout.on('data', () => {
        const found = /The demo site is at (http:\/\/127\.0\.0\.1:\d+)[^]*password=secret\n/.exec(out)?.[1];
        if (found) resolve(found);
      }));
      assert.match(out, new RegExp(`npx domcast run workflows/demo\\.json -i site_url=${url.replace(/\./g, '\\.')} -i username=ada -i password=secret`));
      const page = await fetch(`${url}/index.html`);
      assert.equal(page.status, 200);
      assert.match(await page.text(), /Acme Portal/);
      const busy = await domcast(['demo-site', '--port', new URL(url).port]);
      assert.equal(busy.code, 1);
      assert.match(busy.stderr, new RegExp(`^domcast: 127\\.0\\.0\\.1:${new URL(url).port} is already in use \\(another demo site, or another program\\): stop it, or choose another port with --port\n$`));
    } finally {
      site.kill('SIGTERM');
    }
  });

  test('cluster mode refuses at start what cannot work, with a clear message and no stack trace', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'domcast-cli-'));
    const cluster = { DOMCAST_DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/postgres', VIEWER_TOKEN_SECRET: 'cli-test-viewer-token-secret-0123456789abcd', DOMCAST_DATA_DIR: dataDir };
    const [noRedis, notCluster, unreachable, extra] = await Promise.all([
      domcast(['worker'], { DOMCAST_DATA_DIR: dataDir }),
      domcast(['serve', '--with-worker'], { DOMCAST_DATA_DIR: dataDir }),
      // Nothing listens on port 1.
      domcast(['serve'], { ...cluster, DOMCAST_REDIS_URL: 'redis://:s3cret@127.0.0.1:1' }),
      domcast(['serve', '--with-workers'], { DOMCAST_DATA_DIR: dataDir }),
    ]);
    assert.equal(noRedis.code, 1);
    assert.match(noRedis.stderr, /^domcast: domcast worker needs DOMCAST_REDIS_URL \(cluster mode; see docs\/CLUSTER\.md\)\n$/);
    assert.equal(notCluster.code, 1);
    assert.match(notCluster.stderr, /--with-worker is for cluster mode: set DOMCAST_REDIS_URL/);
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.stderr, /domcast: cannot reach Redis at 127\.0\.0\.1:1 \(DOMCAST_REDIS_URL\)/);
    assert.doesNotMatch(unreachable.stderr, /s3cret|^\s+at /m);
    assert.equal(extra.code, 2);
    assert.match(extra.stderr, /serve takes only --with-worker \(got --with-workers\)/);
  });

  test('--help explains run and serve', async () => {
    const { code, stdout } = await domcast(['--help']);
    assert.equal(code, 0);
    assert.match(stdout, /domcast run <workflow\.json \| stored name>/);
    assert.match(stdout, /domcast serve/);
    assert.match(stdout, /domcast demo-site \[--port 8080\]/);
  });
});
