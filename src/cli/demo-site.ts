import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, projectRoot } from '../common/index.js';
import { DEMO_SITE_USAGE, UsageError } from './usage.js';
import { serveStatic, type StaticSite } from './static-site.js';

/** Where the demo site is served, so that workflows/demo.json and the README's examples can name it. */
export const DEMO_SITE_PORT = 8080;

/** The port from `--site-port`/`--port`, a whole number 0–65535 (0: any free port). */
export function parsePort(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) throw new UsageError(`${flag} must be a port number (0–65535), got "${value}"`);
  return port;
}

/**
 * demo/site on 127.0.0.1:`port`. A busy port is a ConfigError that says what to do, unless `fallback`
 * lets the site move to a free port (the demo prints wherever it ended up).
 */
export async function serveDemoSite(port: number, fallback?: (message: string) => void): Promise<StaticSite> {
  const folder = join(projectRoot, 'demo', 'site');
  try {
    return await serveStatic(folder, port);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    if (fallback) {
      fallback(`Port ${port} is busy (another demo site?); serving the demo site on a free port instead.`);
      return serveStatic(folder, 0);
    }
    throw new ConfigError(`127.0.0.1:${port} is already in use (another demo site, or another program): stop it, or choose another port with --port`);
  }
}

/** `domcast demo-site`: serves the demo site (what workflows/demo.json visits) until Ctrl-C. */
export async function demoSiteCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { port: { type: 'string' } } });
  if (positionals.length > 0) throw new UsageError(`usage: ${DEMO_SITE_USAGE}`);
  const site = await serveDemoSite(parsePort('--port', values.port, DEMO_SITE_PORT));
  console.log(`The demo site is at ${site.url}  (Ctrl-C to stop)`);
  console.log(`Run the demo workflow on it: npx domcast run workflows/demo.json -i site_url=${site.url} -i username=ada -i password=secret`);
  const stop = () => void site.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return new Promise<number>(() => {});
}
