// The linter and the type checker, side by side (each takes 10-20 s on one core): `npm test` runs
// this before the tests. Each one's output is printed whole once it is done; a failure of either fails.
import { spawn } from 'node:child_process';

const run = (name, args) =>
  new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('close', (code) => {
      if (out.trim() !== '') process.stdout.write(`${name}:\n${out}${out.endsWith('\n') ? '' : '\n'}`);
      resolve({ name, code });
    });
  });

const results = await Promise.all([
  run('eslint', ['node_modules/eslint/bin/eslint.js', '.']),
  run('tsc', ['node_modules/typescript/bin/tsc', '--noEmit']),
]);
const failed = results.filter((r) => r.code !== 0);
for (const r of failed) console.error(`${r.name} failed (exit ${r.code})`);
process.exit(failed.length > 0 ? 1 : 0);
