// Every unit test file in one process: they need no isolation from one another (no browser, no
// server of their own that outlives them), and a process per file cost about half a second each.
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const dir = join(dirname(fileURLToPath(import.meta.url)), 'unit');
for (const file of readdirSync(dir).filter((f) => f.endsWith('.test.ts')).sort()) {
  await import(pathToFileURL(join(dir, file)).href);
}
