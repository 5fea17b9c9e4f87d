import { createLogger } from '../common/index.js';
import { createServer, type Config, type Server } from '../server/index.js';

/**
 * The server, in this process; when the chosen port is busy, on a free one, said out loud.
 * `prepare` adds what a command serves besides the API (the demo's short link) before it listens.
 * `logTo: 'stderr'` keeps the server's log lines off stdout, for commands whose stdout is their result.
 * `spareBrowser: false`: no browser launched ahead for a next run (a command that makes one run).
 */
export async function startEmbeddedServer(
  config: Config,
  log: (line: string) => void = console.log,
  prepare: (server: Server) => void = () => undefined,
  logTo: 'stdout' | 'stderr' = 'stdout',
  { spareBrowser }: { spareBrowser?: boolean } = {},
): Promise<{ server: Server; base: string }> {
  const options = { log: createLogger(config.logLevel, config.logFormat, logTo), spareBrowser };
  const server = createServer(config, options);
  prepare(server);
  try {
    return { server, base: await server.listen() };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || config.port === 0) throw err;
    await server.close();
    log(`Port ${config.port} is busy; using a free port instead.`);
    const fallback = createServer({ ...config, port: 0 }, options);
    prepare(fallback);
    return { server: fallback, base: await fallback.listen() };
  }
}
