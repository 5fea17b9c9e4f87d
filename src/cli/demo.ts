import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { errorMessage, projectRoot } from '../common/index.js';
import { createServer, loadConfig, type Config, type Server } from '../server/index.js';
import { serveStatic } from './static-site.js';

interface ExecuteAnswer {
  session_id: string;
  viewer_url: string | null;
  error?: string;
}

const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);

/** The demo still runs when the chosen port is busy: on a free one, said out loud. */
async function startServer(config: Config): Promise<{ server: Server; base: string }> {
  const server = createServer(config);
  try {
    return { server, base: await server.listen() };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || config.port === 0) throw err;
    await server.close();
    console.log(`Port ${config.port} is busy; using a free port instead.`);
    const fallback = createServer({ ...config, port: 0 });
    return { server: fallback, base: await fallback.listen() };
  }
}

async function startRun(base: string, siteUrl: string): Promise<ExecuteAnswer> {
  const res = await fetch(`${base}/workflows/execute`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      workflow: JSON.parse(readFileSync(join(projectRoot, 'workflows', 'demo.json'), 'utf8')) as unknown,
      inputs: { site_url: siteUrl, username: 'ada', password: 'correct horse battery staple' },
      visual_enabled: true,
      visual_quality: 'standard',
    }),
  });
  const body = (await res.json()) as ExecuteAnswer;
  if (!res.ok) throw new Error(`POST /workflows/execute answered ${res.status}: ${body.error ?? ''}`);
  return body;
}

/** Follows a run in the terminal, a line per step; resolves with its final status. */
function follow(server: Server, sessionId: string): Promise<string> {
  const session = server.deps.registry.get(sessionId);
  if (!session) return Promise.resolve('unknown');
  const printed = new Set<string>();
  return new Promise((done) => {
    const onStatus = () => {
      for (const s of session.steps) {
        const key = `${s.index}:${s.state}`;
        if (printed.has(key) || s.state === 'pending' || s.state === 'running' || s.state === 'skipped') continue;
        printed.add(key);
        const mark = s.state === 'succeeded' ? '✓' : '✗';
        console.log(`  ${mark} ${String(s.index + 1).padStart(2)}. ${s.description ?? s.type} (${s.durationMs ?? 0} ms)${s.error ? ` — ${s.error}` : ''}`);
      }
      if (session.finished) {
        session.off('status', onStatus);
        done(session.status);
      }
    };
    session.on('status', onStatus);
  });
}

/** `npm run demo`: the demo site, the server, a visual run of workflows/demo.json, and its viewer URL. */
export async function runDemo(args: string[]): Promise<number> {
  const once = args.includes('--once');
  const config = loadConfig({ LOG_LEVEL: 'warn', ...process.env });
  const site = await serveStatic(join(projectRoot, 'demo', 'site'));
  const { server, base } = await startServer(config);
  const stop = async () => {
    await server.close();
    await site.close();
  };
  console.log(`domcast is serving at ${base}  (demo site at ${site.url})`);
  try {
    for (;;) {
      const run = await startRun(base, site.url);
      console.log(`\n${bold('Watch it live:')} ${bold(run.viewer_url ?? '(visual streaming is off)')}\n`);
      const status = await follow(server, run.session_id);
      console.log(`\nRun ${status}. The viewer still shows its final page: ${run.viewer_url}`);
      if (once) {
        await stop();
        return status === 'succeeded' ? 0 : 1;
      }
      if (!process.stdin.isTTY) {
        console.log('Serving until Ctrl-C.');
        await new Promise(() => {});
      }
      console.log('Press Enter to run the demo again, Ctrl-C to stop.');
      await new Promise<void>((ok) => {
        const rl = createInterface({ input: process.stdin });
        rl.once('line', () => {
          rl.close();
          ok();
        });
      });
    }
  } catch (err) {
    console.error(`demo failed: ${errorMessage(err)}`);
    await stop();
    return 1;
  }
}
