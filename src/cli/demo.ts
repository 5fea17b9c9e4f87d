import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { errorMessage, projectRoot } from '../common/index.js';
import { loadConfig } from '../server/index.js';
import { startEmbeddedServer } from './embedded.js';
import { followSteps } from './progress.js';
import { serveStatic } from './static-site.js';

interface ExecuteAnswer {
  session_id: string;
  viewer_url: string | null;
  error?: string;
}

const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);

async function startRun(base: string, apiKey: string, siteUrl: string): Promise<ExecuteAnswer> {
  const res = await fetch(`${base}/workflows/execute`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
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

/** `npm run demo`: the demo site, the server, a visual run of workflows/demo.json, and its viewer URL. */
export async function runDemo(args: string[]): Promise<number> {
  const once = args.includes('--once');
  // The demo is secure by default: its API needs a key, made here unless one is given.
  const apiKey = process.env.DOMCAST_API_KEY || randomBytes(24).toString('hex');
  const config = loadConfig({ LOG_LEVEL: 'warn', ...process.env, DOMCAST_API_KEY: apiKey });
  const site = await serveStatic(join(projectRoot, 'demo', 'site'));
  const { server, base } = await startEmbeddedServer(config);
  const stop = async () => {
    await server.close();
    await site.close();
  };
  console.log(`domcast is serving at ${base}  (demo site at ${site.url})`);
  console.log(`API key: ${apiKey}  (try: curl -H 'Authorization: Bearer ${apiKey}' ${base}/workflows/sessions)`);
  try {
    for (;;) {
      const run = await startRun(base, apiKey, site.url);
      console.log(`\n${bold('Watch it live:')} ${bold(run.viewer_url ?? '(visual streaming is off)')}\n`);
      const session = server.deps.registry.get(run.session_id);
      const status = session ? await followSteps(session, (line) => console.log(line)) : 'unknown';
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
