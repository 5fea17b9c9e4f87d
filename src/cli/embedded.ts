import { createServer, type Config, type Server } from '../server/index.js';

/** The server, in this process; when the chosen port is busy, on a free one, said out loud. */
export async function startEmbeddedServer(config: Config, log: (line: string) => void = console.log): Promise<{ server: Server; base: string }> {
  const server = createServer(config);
  try {
    return { server, base: await server.listen() };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || config.port === 0) throw err;
    await server.close();
    log(`Port ${config.port} is busy; using a free port instead.`);
    const fallback = createServer({ ...config, port: 0 });
    return { server: fallback, base: await fallback.listen() };
  }
}
