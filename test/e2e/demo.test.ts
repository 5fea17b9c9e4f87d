import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { projectRoot } from '../../src/common/index.js';

test('the demo runs its workflow to success, prints the viewer URL and exits with --once', async () => {
  const child = spawn(process.execPath, [join(projectRoot, 'dist', 'cli.js'), 'demo', '--once'], {
    cwd: projectRoot,
    env: { ...process.env, PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  assert.equal(code, 0, out);
  assert.match(out, /Watch it live: http:\/\/127\.0\.0\.1:\d+\/workflows\/visual\/[0-9a-f-]{36}\/viewer\?token=[\w.-]+/);
  assert.match(out, /API key: [0-9a-f]{48}/, 'the demo makes an API key and prints it');
  assert.match(out, /✓ 18\. Done/);
  assert.match(out, /Run succeeded/);
});

test('invalid settings stop the server at start with a message naming the variable', async () => {
  const child = spawn(process.execPath, [join(projectRoot, 'dist', 'cli.js'), 'serve'], {
    cwd: projectRoot,
    env: { ...process.env, VISUAL_WEBSOCKET_MAX_CONNECTIONS: 'lots', PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  assert.equal(code, 1);
  assert.match(err, /VISUAL_WEBSOCKET_MAX_CONNECTIONS="lots": must be a whole number/);
});
