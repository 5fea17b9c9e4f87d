import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { projectRoot } from '../../src/common/index.js';
import { waitFor } from '../helpers/stack.js';

/**
 * The README's examples are ```sh blocks. The line before a block may say how the test treats it:
 * `<!-- readme-test: skip (why) -->`, or `<!-- readme-test: serves (…) -->` for the commands that
 * start the demo site and the server (this test starts those itself, on free ports). Every other
 * block runs in bash, with DOMCAST_API_KEY set as the README says and this test's ports in place of
 * 3000 and 8080, and must exit 0; each curl in it must get a 2xx answer, JSON when it says it is.
 */
interface Example {
  line: number;
  code: string;
  mode: 'run' | 'skip' | 'serves';
}

function readmeExamples(): Example[] {
  const lines = readFileSync(join(projectRoot, 'README.md'), 'utf8').split('\n');
  const examples: Example[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.trim() !== '```sh') continue;
    const end = lines.findIndex((l, j) => j > i && l.trim() === '```');
    assert.ok(end > i, `README.md:${i + 1}: a sh block that never ends`);
    const marker = /<!--\s*readme-test:\s*(skip|serves)\b/.exec(lines[i - 1] ?? '')?.[1] as 'skip' | 'serves' | undefined;
    examples.push({ line: i + 1, code: lines.slice(i + 1, end).join('\n'), mode: marker ?? 'run' });
    i = end;
  }
  return examples;
}

/** curl that also fails on an HTTP error or a broken JSON answer; sourced before each example. */
const checkedCurl = join(projectRoot, 'test', 'helpers', 'checked-curl.sh');

function spawnOut(cmd: string, args: string[], env: Record<string, string>): { proc: ChildProcess; output: () => string; exit: Promise<number | null> } {
  const proc = spawn(cmd, args, { cwd: projectRoot, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return { proc, output: () => out, exit: new Promise((resolve) => proc.on('exit', resolve)) };
}

describe("the README's examples work as written", () => {
  const examples = readmeExamples();
  const apiKey = randomBytes(24).toString('hex');
  const cli = join(projectRoot, 'dist', 'cli.js');
  let site: ReturnType<typeof spawnOut>;
  let server: ReturnType<typeof spawnOut>;
  let siteUrl: string;
  let base: string;

  before(async () => {
    // The commands of the `serves` block, each on a free port.
    site = spawnOut(process.execPath, [cli, 'demo-site', '--port', '0'], {});
    server = spawnOut(process.execPath, [cli, 'serve'], { PORT: '0', DOMCAST_API_KEY: apiKey, LOG_FORMAT: 'json', DOMCAST_DATA_DIR: mkdtempSync(join(tmpdir(), 'domcast-readme-')) });
    siteUrl = await waitFor('the demo site', () => /The demo site is at (http:\/\/127\.0\.0\.1:\d+)/.exec(site.output())?.[1], 30_000);
    base = await waitFor('the server', () => /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(server.output())?.[1], 30_000);
  });
  after(async () => {
    for (const child of [site, server]) {
      if (child?.proc.exitCode === null) {
        child.proc.kill('SIGTERM');
        await child.exit;
      }
    }
  });

  test('the commands that serve are the ones this test starts', () => {
    const serves = examples.filter((e) => e.mode === 'serves').map((e) => e.code).join('\n');
    assert.match(serves, /^npx domcast demo-site &/m);
    assert.match(serves, /^npx domcast serve\b/m);
    assert.match(serves, /^export DOMCAST_API_KEY=/m);
    assert.ok(examples.filter((e) => e.mode === 'run').length >= 3, 'the README has examples to run');
  });

  for (const example of examples.filter((e) => e.mode === 'run')) {
    test(`README.md:${example.line}: ${example.code.split('\n')[0]!.slice(0, 60)}`, async () => {
      const sitePort = new URL(siteUrl).port;
      const serverPort = new URL(base).port;
      const code = example.code.replace(/\b8080\b/g, sitePort).replace(/\b3000\b/g, serverPort);
      const shell = spawnOut('bash', ['-eo', 'pipefail', '-c', `source '${checkedCurl}'\n${code}`], {
        DOMCAST_API_KEY: apiKey,
        DOMCAST_DATA_DIR: mkdtempSync(join(tmpdir(), 'domcast-readme-')),
      });
      const exit = await shell.exit;
      assert.equal(exit, 0, `README.md:${example.line} failed (exit ${exit}); fix it, or mark it <!-- readme-test: skip (why) -->:\n${code}\n---\n${shell.output()}`);
      if (/\bdomcast run\b/.test(code)) assert.match(shell.output(), /"status": "succeeded"/);
    });
  }

  test('every run the examples started on the server succeeded', async () => {
    const auth = { authorization: `Bearer ${apiKey}` };
    const sessions = await waitFor('the runs to end', async () => {
      const list = (await (await fetch(`${base}/workflows/sessions`, { headers: auth })).json()) as { sessions: { session_id: string; status: string; error: string | null }[] };
      return list.sessions.every((s) => s.status !== 'queued' && s.status !== 'running') ? list.sessions : null;
    }, 60_000, 250);
    assert.ok(sessions.length >= 2, 'the examples started runs');
    for (const s of sessions) assert.equal(s.status, 'succeeded', `${s.session_id}: ${s.error}`);
  });
});
