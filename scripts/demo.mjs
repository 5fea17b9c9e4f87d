// `npm run demo` on a fresh clone: install what is missing, build, then hand over to `domcast demo`.
// Plain JavaScript with no dependencies, so it runs before `npm install` has; says what it does as it goes.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { clock, runWithProgress } from './progress.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const readJson = (file) => JSON.parse(readFileSync(join(root, file), 'utf8'));

const manifest = readJson('package.json');
const wanted = Object.keys({ ...manifest.dependencies, ...manifest.devDependencies });
const missing = wanted.filter((name) => !existsSync(join(root, 'node_modules', name, 'package.json')));
// npm writes node_modules/.package-lock.json when an install completes: without it, one was cut short.
const complete = existsSync(join(root, 'node_modules', '.package-lock.json'));

/** The lockfile's packages that install on this platform, to count them as npm unpacks them. */
function lockedPackages() {
  try {
    const { packages = {} } = readJson('package-lock.json');
    // npm's os/cpu lists name what a package is for ("linux") or not for ("!win32").
    const fits = (list, value) => !list || ((list.every((v) => v.startsWith('!')) || list.includes(value)) && !list.includes(`!${value}`));
    return Object.entries(packages)
      .filter(([path, p]) => path.startsWith('node_modules/') && fits(p.os, process.platform) && fits(p.cpu, process.arch) && fits(p.libc, 'glibc'))
      .map(([path]) => join(root, path, 'package.json'));
  } catch {
    return [];
  }
}

async function step(n, label, options) {
  const { code, ms } = await runWithProgress({ label: `[${n}/3] ${label}`, cwd: root, ...options });
  if (code !== 0) {
    console.error(`[${n}/3] ${label} failed (exit ${code}) after ${clock(ms)}.`);
    process.exit(code);
  }
  console.log(`[${n}/3] ${label}: done in ${clock(ms)}`);
}

if (missing.length === 0 && complete) {
  console.log('[1/3] Dependencies: all installed');
} else {
  const locked = lockedPackages();
  console.log(`[1/3] Installing dependencies with npm ci (${locked.length || 'about 250'} packages; a minute or two, better-sqlite3 compiles natively)`);
  await step(1, 'Installing dependencies', {
    cmd: npm,
    args: ['ci', '--no-audit', '--no-fund', '--loglevel=error'],
    detail: () => {
      const unpacked = locked.filter((f) => existsSync(f)).length;
      // Once every package is unpacked, npm runs their install scripts, then ours (the build).
      return unpacked < locked.length ? `${unpacked}/${locked.length} packages` : 'running install scripts';
    },
  });
}
await step(2, 'Building dist/', { cmd: process.execPath, args: [join(root, 'scripts', 'build.mjs')] });
console.log('[3/3] Starting the demo');
const child = spawn(process.execPath, [join(root, 'dist', 'cli.js'), 'demo', ...process.argv.slice(2)], { cwd: root, stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
