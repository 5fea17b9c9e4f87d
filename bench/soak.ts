/**
 * domcast soak benchmark: does a hostile page take the server down, or slow everyone else?
 *
 *   npm run --silent bench:soak                       (builds, then about 3 minutes; JSON on stdout)
 *   BENCH_SOAK_SECONDS=30 BENCH_SOAK_HOSTILE_SCALE=0.05 npm run --silent bench:soak
 *
 * The real server (`domcast serve`, dist/cli.js) runs in a child process with the README's setup
 * (an API key, ALLOWED_HOSTS=127.0.0.1); pages are served on 127.0.0.1; the viewers are the load
 * bench's WebSocket clients in processes of their own (bench/load-clients.ts). Three phases of
 * BENCH_SOAK_SECONDS / 3 each: `baseline`, ordinary runs of bench/pages/feed.html, one after
 * another, with BENCH_SOAK_VIEWERS viewers in all; `control`, the same beside as many runs of the
 * benign bench/pages/benign.html as there will be hostile ones, run the same way (so the machine
 * carries as many runs and Chromium starts); then `with_hostile`, the same beside hostile runs
 * cycling through test/fixtures/pages/hostile-corpus/. The target compares `with_hostile` with
 * `control`: what hostility costs, not what concurrency costs. Figures: the ordinary viewers'
 * latency and seq integrity in each phase, the server's RSS (VmRSS every 250 ms), event-loop delay
 * (/health/visual), whether it stayed up, and what became of each hostile and control run. See
 * docs/BENCHMARKS.md, section "Soak".
 */
import { createSocket } from 'node:dgram';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { readdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serveStatic, type StaticSite } from '../src/cli/static-site.js';
import { projectRoot } from '../src/common/index.js';
import { TERMINAL_STATUSES } from '../src/protocol/index.js';
import { envInt, envNumber } from './env.js';
import { machineInfo, writeResult } from './results.js';
import type { GroupReport } from './load-ipc.js';
import { machineCpu, TICKS_PER_S, treeCpuTicks } from './proc-stat.js';
import { median, p95Ratios, soakTargets, summarizeDelays, type DelayReading, type PhaseP95s } from './soak-report.js';
import { ServerChild, vmRssBytes, type SessionAnswer } from './soak-server.js';
import { aggregate, Clients, mb, round } from './viewer-clients.js';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const CORPUS_DIR = join(projectRoot, 'test', 'fixtures', 'pages', 'hostile-corpus');

/** All three phases together; each gets a third. */
const SOAK_SECONDS = envInt('BENCH_SOAK_SECONDS', 180, 10, 7200);
const PHASE_MS = Math.round((SOAK_SECONDS / 3) * 1000);
/** Viewers of the ordinary runs, in all (split evenly over the runs going at once). */
const VIEWERS = envInt('BENCH_SOAK_VIEWERS', 100, 1, 2000);
/** Ordinary and hostile runs at once (the machine has 2 cores: each is a Chromium page). The control phase runs as many benign runs as hostile ones. */
const ORDINARY = envInt('BENCH_SOAK_ORDINARY', 2, 1, 20);
const HOSTILE = envInt('BENCH_SOAK_HOSTILE', 2, 0, 20);
/** An ordinary run holds its page this long (a wait, a scroll, a wait), then the next one starts. */
const RUN_SECONDS = envInt('BENCH_SOAK_RUN_SECONDS', 20, 2, 3600);
/** A hostile (or control) run's page is given this long, then the run ends (or is cancelled) and the next page starts. */
const HOSTILE_SECONDS = envInt('BENCH_SOAK_HOSTILE_SECONDS', 15, 2, 3600);
/** Viewers of each hostile (or control) run (in a client process apart from the ordinary viewers', which a huge frame could sink). */
const HOSTILE_VIEWERS = envInt('BENCH_SOAK_HOSTILE_VIEWERS', 2, 0, 50);
/** Sizes and rates of the hostile pages, as a share of the full attack (1). Below 1 the 64 MiB strings of binding-flood are left out. */
const SCALE = envNumber('BENCH_SOAK_HOSTILE_SCALE', 1, 0.001, 1);
/** The RSS bound the server must stay under (docs/SECURITY.md). */
const RSS_BOUND_MB = envNumber('BENCH_SOAK_RSS_BOUND_MB', 1024, 16, 1_000_000);
const CLIENT_PROCESSES = envInt('BENCH_CLIENT_PROCESSES', 2, 1, 8);

const CORPUS = readdirSync(CORPUS_DIR)
  .filter((f) => f.endsWith('.html'))
  .map((f) => f.slice(0, -'.html'.length))
  .sort();
/** Which hostile pages run, in turn (a comma list of names from the corpus; default all). */
const PAGES: readonly string[] = (() => {
  const raw = process.env.BENCH_SOAK_PAGES?.trim();
  if (!raw) return CORPUS;
  const list = raw.split(',').map((x) => x.trim().replace(/\.html$/, ''));
  const bad = list.filter((x) => !CORPUS.includes(x));
  if (bad.length > 0) throw new Error(`BENCH_SOAK_PAGES: unknown ${bad.join(', ')} (known: ${CORPUS.join(', ')})`);
  return list;
})();

/** The README's setup (plus DOMCAST_API_KEY, a random one: bench/soak-server.ts), with room for every kind of run and every viewer. */
const SERVER_ENV = {
  ALLOWED_HOSTS: '127.0.0.1',
  MAX_CONCURRENT_SESSIONS: String(ORDINARY + HOSTILE + 2),
  VISUAL_WEBSOCKET_MAX_CONNECTIONS: String(2 * (VIEWERS + HOSTILE * HOSTILE_VIEWERS) + 50),
  VISUAL_MAX_CONNECTIONS_PER_IP: String(2 * (VIEWERS + HOSTILE * HOSTILE_VIEWERS) + 50),
  EXECUTE_RATE_LIMIT: '0',
  SHUTDOWN_GRACE_MS: '5000',
  LOG_LEVEL: 'warn',
};

/** After a phase, its runs (cancelled) and their viewers have this long to end. */
const DRAIN_MS = 60_000;
const WATCHDOG_MS = SOAK_SECONDS * 1000 + 3 * DRAIN_MS + 5 * 60_000;

/** The phases, in order, on the same server. */
const PHASES = ['baseline', 'control', 'with_hostile'] as const;
type PhaseName = (typeof PHASES)[number];
/** The page the control phase runs in the hostile slots (bench/pages, served with feed.html). */
const CONTROL_PAGE = 'benign';

/** The phase going on (or draining), for the progress lines; null before the first and after the last. */
let currentPhase: PhaseName | null = null;
const progress = (message: string): void => {
  const phase = currentPhase ? ` ${PHASES.indexOf(currentPhase) + 1}/${PHASES.length} ${currentPhase}` : '';
  process.stderr.write(`[bench:soak ${new Date().toISOString().slice(11, 19)}${phase}] ${message}\n`);
};
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));
const isTerminal = (s: SessionAnswer): boolean => TERMINAL_STATUSES.includes(s.status);

// ---------------------------------------------------------------------------------------------
// Hostile pages

interface Canary {
  udpPort: number;
  tcpPort: number;
  udpPackets: number;
  tcpConnections: number;
  close(): void;
}

/**
 * Where webrtc.html points its STUN server (a UDP socket) and its TURN server (a TCP listener) on
 * 127.0.0.1: counts what the recording browser sends past the HTTP navigation policy.
 */
async function webrtcCanary(): Promise<Canary> {
  const udp = createSocket('udp4');
  const tcp = createTcpServer((socket) => {
    canary.tcpConnections++;
    socket.destroy();
  });
  const canary: Canary = {
    udpPort: 0,
    tcpPort: 0,
    udpPackets: 0,
    tcpConnections: 0,
    close: () => {
      udp.close();
      tcp.close();
    },
  };
  udp.on('message', () => canary.udpPackets++);
  await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
  await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
  canary.udpPort = udp.address().port;
  canary.tcpPort = (tcp.address() as AddressInfo).port;
  return canary;
}

/** The page's URL with its attack sized by BENCH_SOAK_HOSTILE_SCALE. */
function hostileUrl(name: string, site: StaticSite, canary: Canary): string {
  const s = (full: number, min = 1): number => Math.max(min, round(full * SCALE, 3));
  const query = ((): Record<string, string | number> => {
    switch (name) {
      case 'huge-numbers':
        return { mb: s(60, 0.01), count: 3, every: 2000 };
      case 'deep-nesting':
        return { depth: Math.round(s(20_000, 10)), every: 500 };
      case 'proto-tamper':
        return { every: 5, nodes: Math.round(s(20)) };
      case 'binding-flood':
        return { rate: Math.round(s(2000)), kb: s(64, 0.1), huge: SCALE >= 1 ? 1 : 0, hugeEvery: 5000 };
      case 'attr-case':
        return { url: `${site.url}/attr-case-canary`, every: 1000 };
      case 'webrtc':
        return { host: '127.0.0.1', port: canary.udpPort, turnPort: canary.tcpPort, every: 2000 };
      case 'forged-checkpoints':
        return { kb: s(512), every: 50 };
      default:
        return {};
    }
  })();
  const qs = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)])).toString();
  return `${site.url}/${name}.html${qs ? `?${qs}` : ''}`;
}

// ---------------------------------------------------------------------------------------------
// Runs

interface ExecuteBody {
  session_id: string;
  status: string;
  visual_stream_url: string | null;
  error?: string;
}

interface Ctx {
  server: ServerChild;
  /** bench/pages: feed.html for the ordinary runs, benign.html for the control runs. */
  feed: StaticSite;
  corpus: StaticSite;
  canary: Canary;
  clients: Clients;
  /** The hostile runs' viewers, and the control runs' (the same process, so the control costs the same). */
  hostileClients: Clients | null;
  hostileCount: number;
  controlCount: number;
  /** The phase during which the server exited, if it did. */
  diedDuring: string | null;
}

/** What became of one hostile run (or one control run, whose page is `benign`). */
interface HostileOutcome {
  page: string;
  url_query: string;
  session_id: string | null;
  status: string | null;
  error: string | null;
  /** The bench cancelled it: it did not end by itself within its time, or the phase ended. */
  cancelled_by_bench: boolean;
  run_ms: number | null;
  events: SessionAnswer['events'] | null;
  viewers: { opened: number; got_end: number; close_codes: Record<string, number>; late_resets: number; errors: string[] } | null;
  bench_error: string | null;
}

class Phase {
  over = false;
  readonly inFlight = new Set<string>();
  /** Runs the phase cancelled when it ended. */
  readonly cancelled = new Set<string>();
  readonly groups: GroupReport[] = [];
  readonly ordinaryOutcomes: Record<string, number> = {};
  /** The with_hostile phase's hostile runs, or the control phase's benign ones. */
  readonly hostile: HostileOutcome[] = [];
  readonly errors: string[] = [];
  ordinaryStarted = 0;
  connectFailed = 0;
  /** Each ordinary run's own page → server hand-off p95: what of the viewers' latency came before the server passed events on. */
  readonly handoffP95: number[] = [];

  constructor(readonly name: PhaseName) {}

  error(message: string): void {
    if (this.errors.length < 20) this.errors.push(message);
  }
}

async function start(ctx: Ctx, workflow: unknown): Promise<ExecuteBody> {
  const { status, body } = await ctx.server.api<ExecuteBody>('POST', '/workflows/execute', { workflow, visual_enabled: true });
  if (status !== 202 || !body.visual_stream_url) throw new Error(`POST /workflows/execute answered ${status}: ${JSON.stringify(body).slice(0, 300)}`);
  return body;
}

/** Polls the run until `done` says so or it ended; null when `deadline` (performance.now()) or the server's death came first. */
async function pollRun(ctx: Ctx, id: string, done: (s: SessionAnswer) => boolean, deadline: number): Promise<SessionAnswer | null> {
  while (performance.now() < deadline && ctx.server.up) {
    const s = await ctx.server.session(id).catch(() => null);
    if (s && (done(s) || isTerminal(s))) return s;
    await sleep(250);
  }
  return null;
}

/** Ordinary runs one after another, each with its share of the viewers, until the phase is over. */
async function ordinarySlot(ctx: Ctx, phase: Phase, slot: number): Promise<void> {
  const perRun = Math.floor(VIEWERS / ORDINARY) + (slot < VIEWERS % ORDINARY ? 1 : 0);
  while (!phase.over && ctx.server.up) {
    const n = ++phase.ordinaryStarted;
    let id: string | null = null;
    try {
      const run = await start(ctx, {
        name: `soak ordinary ${phase.name} ${n}`,
        steps: [
          { type: 'navigation', url: `${ctx.feed.url}/feed.html`, description: 'open the feed' },
          { type: 'wait', ms: (RUN_SECONDS * 1000) / 2, description: 'watch' },
          { type: 'scroll', scrollX: 0, scrollY: 400, description: 'scroll' },
          { type: 'wait', ms: (RUN_SECONDS * 1000) / 2, description: 'watch more' },
        ],
      });
      id = run.session_id;
      phase.inFlight.add(id);
      // Started while the phase ended: the phase has already cancelled what it knew of.
      if (phase.over) await ctx.server.cancel(id);
      const ready = await pollRun(ctx, id, (s) => s.status === 'running' && (s.current_step ?? 0) >= 1, performance.now() + 60_000);
      if (!ready || isTerminal(ready)) {
        if (!phase.over) phase.error(`ordinary run ${id} did not reach its wait step: ${ready ? `${ready.status} ${ready.error ?? ''}` : 'timed out'}`);
        continue;
      }
      const group = `${phase.name}/ordinary/${n}`;
      const opened = await ctx.clients.open(group, run.visual_stream_url ?? '', perRun, false);
      phase.connectFailed += opened.failed;
      if (opened.failed > 0) phase.error(`ordinary run ${n}: ${opened.failed} viewer(s) failed to connect: ${opened.errors.join('; ')}`);
      phase.groups.push(...(await ctx.clients.collect([group], RUN_SECONDS * 1000 + 30_000)));
      const final = await ctx.server.session(id).catch(() => null);
      const key = final ? final.status : 'unknown';
      if (typeof final?.latency_ms?.p95 === 'number') phase.handoffP95.push(final.latency_ms.p95);
      phase.ordinaryOutcomes[key] = (phase.ordinaryOutcomes[key] ?? 0) + 1;
      if (final?.status === 'failed') phase.error(`ordinary run ${id} failed: ${final.error ?? ''}`);
    } catch (err) {
      if (!phase.over) phase.error(`ordinary run ${n}: ${errorText(err)}`);
      if (!ctx.clients.alive) {
        phase.error('an ordinary viewers\' client process is gone');
        return;
      }
      await sleep(1000);
    } finally {
      if (id) phase.inFlight.delete(id);
    }
  }
}

/**
 * Hostile runs one after another, cycling through the corpus, until the phase is over; or, with
 * `control`, runs of the benign page in exactly the same way (run shape, viewers, cancel rules).
 */
async function hostileSlot(ctx: Ctx, phase: Phase, control: boolean): Promise<void> {
  const kind = control ? 'control' : 'hostile';
  while (!phase.over && ctx.server.up) {
    // Taken once: the other slots move the counter on while this run starts.
    const k = control ? ctx.controlCount++ : ctx.hostileCount++;
    const page = control ? CONTROL_PAGE : (PAGES[k % PAGES.length] ?? 'huge-numbers');
    const url = control ? `${ctx.feed.url}/${CONTROL_PAGE}.html` : hostileUrl(page, ctx.corpus, ctx.canary);
    const outcome: HostileOutcome = {
      page,
      url_query: new URL(url).search,
      session_id: null,
      status: null,
      error: null,
      cancelled_by_bench: false,
      run_ms: null,
      events: null,
      viewers: null,
      bench_error: null,
    };
    const t0 = performance.now();
    let viewers: Promise<void> = Promise.resolve();
    try {
      const run = await start(ctx, {
        name: `soak ${kind} ${page}`,
        steps: [
          { type: 'navigation', url, description: `open ${page}` },
          { type: 'wait', ms: HOSTILE_SECONDS * 1000, description: control ? 'let it run' : 'let it attack' },
        ],
      });
      const id = run.session_id;
      outcome.session_id = id;
      phase.inFlight.add(id);
      if (phase.over) {
        phase.cancelled.add(id);
        await ctx.server.cancel(id);
      }
      const hc = ctx.hostileClients;
      if (hc?.alive && HOSTILE_VIEWERS > 0) {
        const group = `${phase.name}/${kind}/${k}`;
        viewers = hc
          .open(group, run.visual_stream_url ?? '', HOSTILE_VIEWERS, false)
          .then(() => hc.collect([group], HOSTILE_SECONDS * 1000 + DRAIN_MS))
          .then((reports) => {
            const r = aggregate(reports, 1).integrity;
            outcome.viewers = { opened: reports.reduce((n, g) => n + g.opened, 0), got_end: r.viewers_with_end, close_codes: r.close_codes, late_resets: r.late_resets, errors: r.errors };
          })
          .catch((err: unknown) => {
            outcome.viewers = { opened: 0, got_end: 0, close_codes: {}, late_resets: 0, errors: [errorText(err)] };
          });
      }
      let final = await pollRun(ctx, id, () => phase.over, performance.now() + HOSTILE_SECONDS * 1000 + 30_000);
      if (ctx.server.up && (!final || !isTerminal(final))) {
        outcome.cancelled_by_bench = true;
        await ctx.server.cancel(id);
        final = await pollRun(ctx, id, () => false, performance.now() + 20_000);
      }
      outcome.cancelled_by_bench ||= phase.cancelled.has(id);
      if (final) {
        outcome.status = final.status;
        outcome.error = final.error;
        outcome.run_ms = final.duration_ms;
        outcome.events = final.events ?? null;
      } else {
        outcome.status = ctx.server.up ? 'unknown (no answer)' : 'unknown (the server is gone)';
      }
      phase.inFlight.delete(id);
    } catch (err) {
      outcome.bench_error = errorText(err);
      if (!phase.over) await sleep(1000);
    }
    // A hostile client process stuck on a huge frame must not hold the slot forever.
    await Promise.race([viewers, sleep(DRAIN_MS)]);
    outcome.run_ms ??= Math.round(performance.now() - t0);
    phase.hostile.push(outcome);
    progress(`${kind} ${page}: ${outcome.status ?? 'not started'}${outcome.error ? ` (${outcome.error.slice(0, 160)})` : ''}${outcome.bench_error ? ` [${outcome.bench_error.slice(0, 160)}]` : ''}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Watching the server

interface VisualReading {
  at_s: number;
  rss_bytes: number;
  total_events_processed: number;
  events_rejected: number;
  viewer_resets: number;
  viewer_buffered_bytes: number;
  /** Runs' browsers below their share now, and times since start (absent from a server before 2026-12-05). */
  below_share_now: number;
  below_share_since_start: number;
}

interface VisualHealth {
  browsers_below_share?: { now: number; since_start: number };
  rss_bytes: number;
  total_events_processed: number;
  events_rejected: number;
  viewer_resets: number;
  viewer_buffered_bytes: number;
  event_loop_delay_ms?: DelayReading;
}

/** While a phase goes: GET /health every second (3 s to answer), /health/visual every 2 s, VmRSS every 250 ms. */
class Watch {
  private stopped = false;
  readonly visual: VisualReading[] = [];
  /** The event-loop delay windows the server reported, each once. */
  readonly delays: DelayReading[] = [];
  healthAnswered = 0;
  healthFailed = 0;
  /** Longest time without an answer to GET /health, in ms. */
  longestSilenceMs = 0;
  private lastAnswer = performance.now();
  rssMaxBytes = 0;
  private readonly rssTimer: NodeJS.Timeout;
  private readonly loops: Promise<void>[];
  private readonly cpu0: { machine: ReturnType<typeof machineCpu>; tree: Map<number, number>; t: number };

  constructor(private readonly server: ServerChild) {
    this.rssTimer = setInterval(() => {
      const rss = vmRssBytes(server.pid);
      if (rss !== null) this.rssMaxBytes = Math.max(this.rssMaxBytes, rss);
    }, 250);
    this.cpu0 = { machine: machineCpu(), tree: treeCpuTicks(server.pid), t: performance.now() };
    this.loops = [this.healthLoop(), this.visualLoop()];
  }

  private async healthLoop(): Promise<void> {
    while (!this.stopped && this.server.up) {
      const t = performance.now();
      if (await this.server.healthy(3000)) {
        this.healthAnswered++;
        this.lastAnswer = performance.now();
      } else {
        this.healthFailed++;
      }
      this.longestSilenceMs = Math.max(this.longestSilenceMs, performance.now() - this.lastAnswer);
      await sleep(Math.max(0, 1000 - (performance.now() - t)));
    }
  }

  private async visualLoop(): Promise<void> {
    while (!this.stopped && this.server.up) {
      const t = performance.now();
      const h = await this.server.api<VisualHealth>('GET', '/health/visual', undefined, 5000).catch(() => null);
      const d = h?.body.event_loop_delay_ms;
      if (h && d) {
        const b = h.body;
        this.visual.push({ at_s: this.server.seconds(), rss_bytes: b.rss_bytes, total_events_processed: b.total_events_processed, events_rejected: b.events_rejected, viewer_resets: b.viewer_resets, viewer_buffered_bytes: b.viewer_buffered_bytes, below_share_now: b.browsers_below_share?.now ?? 0, below_share_since_start: b.browsers_below_share?.since_start ?? 0 });
        const previous = this.delays.at(-1);
        // Polled every 2 s, a 10 s window is read several times: count it once.
        if (!(previous && previous.p50 === d.p50 && previous.p99 === d.p99 && previous.max === d.max)) this.delays.push(d);
      }
      await sleep(Math.max(0, 2000 - (performance.now() - t)));
    }
  }

  async stop() {
    this.stopped = true;
    clearInterval(this.rssTimer);
    await Promise.all(this.loops);
    const wallS = (performance.now() - this.cpu0.t) / 1000;
    const tree1 = treeCpuTicks(this.server.pid);
    const delta = (pid: number): number => Math.max(0, (tree1.get(pid) ?? 0) - (this.cpu0.tree.get(pid) ?? 0));
    const serverTicks = delta(this.server.pid);
    let chromiumTicks = 0;
    for (const pid of tree1.keys()) if (pid !== this.server.pid) chromiumTicks += delta(pid);
    const m1 = machineCpu();
    const m0 = this.cpu0.machine;
    const pct = (ticks: number): number => round((ticks / TICKS_PER_S / wallS) * 100);
    const first = this.visual[0];
    const last = this.visual.at(-1);
    const grew = (f: (v: VisualReading) => number): number | null => (first && last ? f(last) - f(first) : null);
    return {
      health: { answered: this.healthAnswered, unanswered: this.healthFailed, longest_silence_ms: Math.round(Math.max(this.longestSilenceMs, performance.now() - this.lastAnswer)) },
      rss_max_mb: mb(this.rssMaxBytes),
      event_loop_delay_ms: summarizeDelays(this.delays),
      events_processed: grew((v) => v.total_events_processed),
      events_rejected: grew((v) => v.events_rejected),
      viewer_resets: grew((v) => v.viewer_resets),
      viewer_buffered_max_mb: this.visual.length ? mb(Math.max(...this.visual.map((v) => v.viewer_buffered_bytes))) : null,
      // The CPU governor (src/browser/cpu-governor.ts): browsers moved below the others in the phase, and most at once.
      browsers_below_share: { moved: grew((v) => v.below_share_since_start), most_at_once: this.visual.length ? Math.max(...this.visual.map((v) => v.below_share_now)) : null },
      cpu_percent_of_one_core: { server: pct(serverTicks), chromium: pct(chromiumTicks), machine_busy_percent_of_all: m0 && m1 && m1.total > m0.total ? round(((m1.busy - m0.busy) / (m1.total - m0.total)) * 100) : null },
    };
  }
}

// ---------------------------------------------------------------------------------------------
// Phases

async function runPhase(ctx: Ctx, name: PhaseName) {
  currentPhase = name;
  const beside =
    name === 'with_hostile' ? `, ${HOSTILE} hostile run(s) at once (${PAGES.join(', ')})` : name === 'control' ? `, ${HOSTILE} control run(s) of ${CONTROL_PAGE}.html at once` : '';
  progress(`${ORDINARY} ordinary run(s) at once with ${VIEWERS} viewer(s)${beside}, ${round(PHASE_MS / 1000)} s`);
  const phase = new Phase(name);
  const watch = new Watch(ctx.server);
  await ctx.clients.measure(true);
  const t0 = performance.now();
  const slots = [
    ...Array.from({ length: ORDINARY }, (_, i) => ordinarySlot(ctx, phase, i)),
    ...(name === 'baseline' ? [] : Array.from({ length: HOSTILE }, () => hostileSlot(ctx, phase, name === 'control'))),
  ];
  await Promise.race([sleep(PHASE_MS), ctx.server.exited]);
  phase.over = true;
  const windowS = (performance.now() - t0) / 1000;
  const clientWindow = await ctx.clients.measure(false).catch((err: unknown) => ({ error: errorText(err) }));
  if (ctx.server.up) {
    for (const id of phase.inFlight) phase.cancelled.add(id);
    await Promise.all([...phase.inFlight].map((id) => ctx.server.cancel(id)));
  } else {
    ctx.diedDuring ??= name;
  }
  const drained = await Promise.race([Promise.all(slots).then(() => true), sleep(DRAIN_MS).then(() => false)]);
  if (!drained) phase.error(`the phase's runs and viewers had not all ended ${DRAIN_MS / 1000} s after it`);
  const server = await watch.stop();
  const delivered = aggregate(phase.groups, windowS);
  const l = delivered.latency_ms;
  progress(
    `ordinary p50 ${l.p50} / p95 ${l.p95} / p99 ${l.p99} ms over ${l.samples} deliveries; lost ${delivered.integrity.lost}, dup ${delivered.integrity.duplicated}, late resets ${delivered.integrity.late_resets}, incomplete ${delivered.integrity.incomplete_viewers}; ` +
      `page → server hand-off p95 per run: median ${median(phase.handoffP95)} ms; server RSS max ${server.rss_max_mb} MB, loop delay p99 worst window ${server.event_loop_delay_ms.p99_worst_window} ms, /health unanswered ${server.health.unanswered}; server ${ctx.server.up ? 'up' : 'GONE'}`,
  );
  return {
    window_s: round(windowS),
    ordinary_runs: { started: phase.ordinaryStarted, ended: phase.ordinaryOutcomes, viewers_each: Math.ceil(VIEWERS / ORDINARY) },
    latency_ms: l,
    /** Per ordinary run, p95 of page timestamp → the server's hand-off (GET /workflows/{id}): the part of `latency_ms` spent before the server had the events. */
    handoff_p95_ms_of_runs: { median: median(phase.handoffP95), max: phase.handoffP95.length ? Math.max(...phase.handoffP95) : null },
    frames_per_s: delivered.frames_per_s,
    events_per_s: delivered.events_per_s,
    integrity: {
      ...delivered.integrity,
      failed_connections: phase.connectFailed,
      /** Runs whose viewers did not all end on the `end` frame's lastSeq: their seq ranges, to tell a cut stream from a wrong lastSeq. */
      incomplete_runs: phase.groups
        .filter((g) => g.seq.incomplete_viewers > 0)
        .slice(0, 5)
        .map((g) => ({ group: g.group, incomplete_viewers: g.seq.incomplete_viewers, got_end: g.got_end, first_seq: g.seq.first_seq, last_seq: g.seq.last_seq, end_last_seq: g.seq.end_last_seq, close_codes: g.close_codes })),
    },
    server,
    clients: clientWindow,
    /** The with_hostile phase's hostile runs, one by one. */
    hostile_runs: name === 'with_hostile' ? phase.hostile : null,
    /** The control phase's benign runs, one by one (as hostile_runs). */
    control_runs: name === 'control' ? phase.hostile : null,
    errors: phase.errors,
  };
}

type PhaseResult = Awaited<ReturnType<typeof runPhase>>;

const intact = (p: PhaseResult): boolean =>
  p.integrity.lost === 0 && p.integrity.duplicated === 0 && p.integrity.late_resets === 0 && p.integrity.incomplete_viewers === 0 && p.integrity.failed_connections === 0;

const crashed = (r: HostileOutcome): boolean => /crash|browser process exited|Target (page, context or browser )?(has been )?closed/i.test(r.error ?? '');

function hostileSummary(runs: readonly HostileOutcome[]) {
  const byPage: Record<string, { runs: number; statuses: Record<string, number>; errors: string[] }> = {};
  for (const r of runs) {
    const p = (byPage[r.page] ??= { runs: 0, statuses: {}, errors: [] });
    p.runs++;
    const key = `${r.status ?? 'not started'}${r.cancelled_by_bench ? ' (cancelled by the bench)' : ''}`;
    p.statuses[key] = (p.statuses[key] ?? 0) + 1;
    for (const e of [r.error, r.bench_error]) if (e && !p.errors.includes(e.slice(0, 300)) && p.errors.length < 3) p.errors.push(e.slice(0, 300));
  }
  return byPage;
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const startedAt = Date.now();
  const loadAtStart = loadavg()[0] ?? 0;
  progress(`starting (phases ${PHASES.join(', ')}, ${round(PHASE_MS / 1000)} s each; BENCH_SOAK_SECONDS=${SOAK_SECONDS}, BENCH_SOAK_VIEWERS=${VIEWERS}, ${ORDINARY} ordinary + ${HOSTILE} hostile at once, BENCH_SOAK_HOSTILE_SCALE=${SCALE}, pages ${PAGES.join(',')})`);
  const canary = await webrtcCanary();
  const feed = await serveStatic(join(BENCH_DIR, 'pages'));
  const corpus = await serveStatic(CORPUS_DIR);
  const server = await ServerChild.start(SERVER_ENV);
  progress(`server pid ${server.pid} on ${server.base}`);
  const stopEverything = (): void => server.killNow();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      stopEverything();
      process.exit(130);
    });
  }
  const watchdog = setTimeout(() => {
    progress(`watchdog: still running after ${WATCHDOG_MS / 1000} s, giving up`);
    stopEverything();
    process.exit(2);
  }, WATCHDOG_MS);
  watchdog.unref();
  server.exited.then((exit) => progress(`the server exited (code ${exit.code}, signal ${exit.signal}) at ${exit.at_s} s`), () => undefined);

  const clients = Clients.start(CLIENT_PROCESSES);
  const hostileClients = HOSTILE > 0 && HOSTILE_VIEWERS > 0 ? Clients.start(1) : null;
  const ctx: Ctx = { server, feed, corpus, canary, clients, hostileClients, hostileCount: 0, controlCount: 0, diedDuring: null };
  try {
    const baseline = await runPhase(ctx, 'baseline');
    const control = server.up ? await runPhase(ctx, 'control') : null;
    const withHostile = server.up ? await runPhase(ctx, 'with_hostile') : null;
    currentPhase = null;

    const answeredAtEnd = server.up && (await server.healthy(10_000));
    const finalVisual = answeredAtEnd ? await server.api<VisualHealth>('GET', '/health/visual', undefined, 10_000).catch(() => null) : null;
    const exit = server.exit;
    const serverUp = exit === null && answeredAtEnd;
    const serverDown = exit
      ? `the process exited (code ${exit.code}, signal ${exit.signal}) ${exit.at_s} s after it started, during the ${ctx.diedDuring ?? 'last'} phase; stderr: ${server.output.report().stderr_tail.slice(-6).join(' | ').slice(0, 1500)}`
      : answeredAtEnd
        ? null
        : 'the process is alive but did not answer GET /health within 10 s at the end';
    const hostileRuns = withHostile?.hostile_runs ?? [];
    const controlRuns = control?.control_runs ?? [];
    const p95: PhaseP95s = { baseline: baseline.latency_ms.p95, control: control?.latency_ms.p95 ?? null, withHostile: withHostile?.latency_ms.p95 ?? null };
    const targets = soakTargets({
      serverUp,
      serverDown,
      rssMaxBytes: server.rssMaxBytes > 0 ? server.rssMaxBytes : null,
      rssBoundBytes: RSS_BOUND_MB * 1024 * 1024,
      p95,
    });
    const result = {
      bench: 'domcast-soak',
      date: new Date().toISOString(),
      machine: machineInfo(loadAtStart),
      config: {
        soak_seconds: SOAK_SECONDS,
        phases: PHASES,
        phase_seconds: round(PHASE_MS / 1000),
        viewers: VIEWERS,
        ordinary_at_once: ORDINARY,
        hostile_at_once: HOSTILE,
        ordinary_run_seconds: RUN_SECONDS,
        hostile_run_seconds: HOSTILE_SECONDS,
        hostile_viewers_each: HOSTILE_VIEWERS,
        hostile_scale: SCALE,
        hostile_pages: PAGES,
        control_page: `bench/pages/${CONTROL_PAGE}.html`,
        control_at_once: HOSTILE,
        client_processes: CLIENT_PROCESSES,
        server_env: { ...SERVER_ENV, DOMCAST_API_KEY: '(random, 48 hex characters)' },
      },
      pass: Object.values(targets).every((c) => c.pass),
      targets,
      /** with_hostile ÷ baseline, with_hostile ÷ control (the target's), control ÷ baseline. */
      ...p95Ratios(p95),
      p95_ms: { baseline: p95.baseline, control: p95.control, with_hostile: p95.withHostile },
      ordinary_viewers_intact: { baseline: intact(baseline), control: control ? intact(control) : null, with_hostile: withHostile ? intact(withHostile) : null },
      server: {
        up: serverUp,
        what_happened: serverDown,
        pid: server.pid,
        exit,
        died_during_phase: ctx.diedDuring,
        rss_max_bytes: server.rssMaxBytes,
        rss_bound_bytes: RSS_BOUND_MB * 1024 * 1024,
        rss_max_mb: mb(server.rssMaxBytes),
        event_loop_delay_ms_at_end: finalVisual?.body.event_loop_delay_ms ?? null,
        output: server.output.report(),
        rss_series_s_mb: server.rssSeries,
      },
      crashes: {
        server_exited: exit !== null,
        hostile_runs_with_a_crashed_page_or_browser: hostileRuns.filter(crashed).length,
        control_runs_with_a_crashed_page_or_browser: controlRuns.filter(crashed).length,
      },
      hostile: { runs: hostileRuns.length, by_page: hostileSummary(hostileRuns), webrtc_canary: { udp_packets: canary.udpPackets, tcp_connections: canary.tcpConnections } },
      control: { runs: controlRuns.length, by_page: hostileSummary(controlRuns) },
      phases: { baseline, control, with_hostile: withHostile },
      duration_s: round((Date.now() - startedAt) / 1000),
    };
    writeResult('soak-latest.json', result);
    const failed = Object.entries(targets).filter(([, c]) => !c.pass).map(([k]) => k);
    progress(`done in ${result.duration_s} s; ${failed.length ? `missed: ${failed.join(', ')}` : 'every target met'}; written to bench/results/soak-latest.json`);
  } finally {
    await Promise.all([clients.stop(), hostileClients?.stop()]);
    await server.stop();
    await Promise.all([feed.close(), corpus.close()]);
    canary.close();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    progress(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
