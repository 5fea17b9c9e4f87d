// The end-to-end tests: two files at a time, then the files marked `// e2e: alone (why)` on their
// first line one at a time. The machine (2 cores) is about a third busy with one file at a time:
// most of a test's time is a page's timers and waits. Files that load the machine on purpose, or
// time what it does, run alone.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'test', 'e2e');
const only = process.argv.slice(2);
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.test.ts') && (only.length === 0 || only.some((o) => f.includes(o))))
  .sort()
  .map((f) => join(dir, f));
const alone = files.filter((f) => readFileSync(f, 'utf8').startsWith('// e2e: alone'));
/**
 * The longest files of the two-at-a-time lane (40-105 s each on 2 cores, 2026-12-06) start first,
 * longest first, so that the lane does not end with one of them running alone: the rest fill in
 * beside them. Files are taken in the order given.
 */
const LONGEST = ['cluster-mode', 'live-viewer', 'cli', 'dashboard', 'navigation-policy', 'control', 'embed', 'stream', 'metrics', 'demo', 'engine'];
const rank = (f) => {
  const i = LONGEST.findIndex((name) => f.endsWith(`/${name}.test.ts`));
  return i === -1 ? LONGEST.length : i;
};
const together = files.filter((f) => !alone.includes(f)).sort((a, b) => rank(a) - rank(b));

let failed = false;
for (const [list, concurrency] of [[together, 2], [alone, 1]]) {
  if (list.length === 0) continue;
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, ...list], { stdio: 'inherit' });
  if (run.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
