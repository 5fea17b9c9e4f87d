// `npm run demo` on a fresh clone: install what is missing, build, then hand over to `domcast demo`.
// Plain JavaScript with no dependencies, so it runs before `npm install` has.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: 'inherit' });

if (!existsSync(join(root, 'node_modules', 'playwright-core')) || !existsSync(join(root, 'node_modules', 'esbuild'))) {
  console.log('Installing dependencies (npm ci)…');
  run(npm, ['ci', '--no-audit', '--no-fund', '--loglevel=error']);
}
run(process.execPath, [join(root, 'scripts', 'build.mjs')]);
const child = spawn(process.execPath, [join(root, 'dist', 'cli.js'), 'demo', ...process.argv.slice(2)], { cwd: root, stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
