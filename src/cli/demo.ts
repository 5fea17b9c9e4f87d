import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, projectRoot } from '../common/index.js';
import { findChromium } from '../browser/index.js';
import { loadConfig, type Config, type Server } from '../server/index.js';
import type { Session } from '../session/index.js';
import { prepareWorkflow, workflowSchema } from '../workflow/index.js';
import { DEMO_PATH, DemoRuns, registerDemoRoute } from './demo-route.js';
import { DEMO_SITE_PORT, parsePort, serveDemoSite } from './demo-site.js';
import { startEmbeddedServer } from './embedded.js';
import { followSteps, replayHint } from './progress.js';
import { readJsonFile } from './run.js';
import { DEMO_USAGE, UsageError } from './usage.js';

const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

const isLoopback = (host: string) => host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);

/** The demo workflow, its placeholders filled for the demo site at `siteUrl`. */
function demoWorkflow(siteUrl: string) {
  const file = join(projectRoot, 'workflows', 'demo.json');
  const workflow = workflowSchema.parse(readJsonFile(file));
  return prepareWorkflow(workflow, { site_url: siteUrl, username: 'ada', password: 'correct horse battery staple' });
}

/**
 * `npm run demo`: the demo site on 127.0.0.1:8080, the server, and a short link (/demo) that
 * starts a run of workflows/demo.json for whoever opens it. `--once` runs it at once and exits.
 */
export async function runDemo(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { once: { type: 'boolean', default: false }, 'site-port': { type: 'string' } },
  });
  if (positionals.length > 0) throw new UsageError(`unexpected "${positionals[0]}"; usage: ${DEMO_USAGE}`);
  const sitePort = parsePort('--site-port', values['site-port'], DEMO_SITE_PORT);
  // The demo is secure by default: its API needs a key, made here unless one is given.
  const apiKey = process.env.DOMCAST_API_KEY || randomBytes(24).toString('hex');
  const loaded = loadConfig({ LOG_LEVEL: 'warn', ...process.env, DOMCAST_API_KEY: apiKey });
  // The short link hands out viewer tokens to whoever opens it: only to this machine.
  if (!isLoopback(loaded.host)) {
    throw new ConfigError(`HOST=${loaded.host}: the demo listens on this machine only (127.0.0.1); for a server others reach, use domcast serve`);
  }
  console.log('Checking for Chromium…');
  const config: Config = { ...loaded, chromiumPath: findChromium({ explicitPath: loaded.chromiumPath, install: true, log: (m) => console.log(m) }) };
  const site = await serveDemoSite(sitePort, (m) => console.log(m));
  const workflow = demoWorkflow(site.url);

  let count = 0;
  let shortLink = '';
  let demoRuns: DemoRuns | undefined;
  const finished: Promise<Session>[] = [];
  const startRun = (server: Server): Session => {
    const n = ++count;
    const session = server.deps.runs.start({ workflow, visual: true, quality: 'standard', privacy: { maskAllInputs: false } });
    console.log(`\n${bold(`Run ${n}`)} of "${workflow.name}" started (session ${session.id}).`);
    finished.push(
      followSteps(session, (line) => console.log(`run ${n}${line}`)).then((status) => {
        const took = session.startedAt && session.endedAt ? ` in ${seconds(session.endedAt - session.startedAt)}` : '';
        console.log(`Run ${n} ${status}${took}${session.error ? `: ${session.error}` : ''}.`);
        if (!values.once) console.log(`Open ${shortLink} again to watch another run; Ctrl-C to stop.`);
        return session;
      }),
    );
    return session;
  };
  const { server, base } = await startEmbeddedServer(config, (m) => console.log(m), (s) => {
    demoRuns = new DemoRuns(() => startRun(s));
    registerDemoRoute(s.app, demoRuns, (id) => s.viewerUrl(id));
  });
  shortLink = `${base}${DEMO_PATH}`;
  const stop = async () => {
    await server.close();
    await site.close();
  };

  console.log(`The demo site is at ${site.url}`);
  console.log(`The API and the dashboard are at ${base}  (API key: ${apiKey})`);
  console.log(`  try: curl -H 'Authorization: Bearer ${apiKey}' ${base}/workflows/sessions`);

  if (values.once) {
    // Not a viewer: `--once` starts the run itself, and its link works only until the run ends.
    demoRuns!.forViewer();
    console.log(`\n${bold('Watch it while it runs:')} ${bold(shortLink)}`);
    const session = await finished[0]!;
    await stop();
    console.log(`The server has stopped. ${replayHint(config, session.id)}`);
    return session.status === 'succeeded' ? 0 : 1;
  }

  console.log(`\n${bold('Watch the demo:')} ${bold(shortLink)}`);
  console.log('Opening it starts a run of workflows/demo.json (about 20 s) and shows it from its first page; Ctrl-C to stop.');
  await new Promise<void>((ok) => {
    let first = 0;
    // Ctrl-C reaches this process twice (from the terminal, and forwarded by scripts/demo.mjs): only a
    // second press, a moment later, skips the orderly stop.
    const onSignal = () => {
      if (first === 0) {
        first = Date.now();
        ok();
      } else if (Date.now() - first > 1000) process.exit(130);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  console.log('\nStopping…');
  await stop();
  return 0;
}
