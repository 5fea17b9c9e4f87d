import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'domcast') return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('domcast: cannot find the project root (package.json named "domcast")');
    dir = parent;
  }
}

/** The project root, found from this file's location so it works from `src/` (tsx) and `dist/` alike. */
export const projectRoot = findRoot();

/** Built browser bundles (`npm run build`). */
export const distDir = join(projectRoot, 'dist');

export function readBuiltAsset(relative: string): string {
  const file = join(distDir, relative);
  if (!existsSync(file)) {
    throw new Error(`domcast: built asset ${relative} is missing; run "npm run build" first`);
  }
  return readFileSync(file, 'utf8');
}
