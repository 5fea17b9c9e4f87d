// Builds what the browser side needs (page recorder, viewer) and the Node CLI into dist/.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
mkdirSync(join(dist, 'viewer'), { recursive: true });
// The CLI's chunks are named by their content: those of an earlier build would only pile up.
rmSync(join(dist, 'cli-chunks'), { recursive: true, force: true });

const browser = { bundle: true, format: 'iife', platform: 'browser', target: 'es2020', minify: true, legalComments: 'none', logLevel: 'warning' };
const node = { bundle: true, platform: 'node', format: 'esm', target: 'node20', logLevel: 'warning' };
await Promise.all([
  build({ ...browser, entryPoints: [join(root, 'src/browser/page/recorder-entry.ts')], outfile: join(dist, 'page/recorder.js') }),
  build({ ...browser, entryPoints: [join(root, 'src/viewer/main.ts')], outfile: join(dist, 'viewer/viewer.js') }),
  // Loaded in the viewer's head: opens a live run's stream while viewer.js loads (src/viewer/early.ts).
  build({ ...browser, entryPoints: [join(root, 'src/viewer/early.ts')], outfile: join(dist, 'viewer/early.js') }),
  // The operator dashboard at / (src/server/routes/dashboard.ts serves it).
  build({ ...browser, entryPoints: [join(root, 'src/dashboard/main.ts')], outfile: join(dist, 'dashboard/dashboard.js') }),
  // The <domcast-viewer> custom element other sites load with <script type="module"> (GET /embed/domcast-viewer.js).
  build({ ...browser, format: 'esm', entryPoints: [join(root, 'src/embed/element.ts')], outfile: join(dist, 'embed/domcast-viewer.js') }),
  // Prepares large page batches off the event loop (src/session/ingest-pool.ts starts it); bundled whole.
  build({ ...node, entryPoints: [join(root, 'src/session/ingest-worker.ts')], outfile: join(dist, 'ingest-worker.js') }),
  // Relays each Chromium's DevTools pipe to Playwright and drops what a page makes it send past its bounds (src/browser/cdp-relay.ts starts it).
  build({ ...node, packages: 'external', entryPoints: [join(root, 'src/browser/cdp-relay-worker.ts')], outfile: join(dist, 'cdp-relay-worker.js') }),
  // Split: each command's code (and the packages it imports) is a chunk loaded when that command runs
  // (src/cli/main.ts), so `domcast health` and `--help` start in a fraction of the time.
  build({ ...node, packages: 'external', splitting: true, entryPoints: { cli: join(root, 'src/cli/main.ts') }, outdir: dist, chunkNames: 'cli-chunks/[name]-[hash]' }),
]);
copyFileSync(join(root, 'src/viewer/index.html'), join(dist, 'viewer/index.html'));
copyFileSync(join(root, 'src/viewer/viewer.css'), join(dist, 'viewer/viewer.css'));
copyFileSync(join(root, 'node_modules/rrweb/dist/style.css'), join(dist, 'viewer/rrweb.css'));
mkdirSync(join(dist, 'dashboard'), { recursive: true });
copyFileSync(join(root, 'src/dashboard/index.html'), join(dist, 'dashboard/index.html'));
copyFileSync(join(root, 'src/dashboard/dashboard.css'), join(dist, 'dashboard/dashboard.css'));
