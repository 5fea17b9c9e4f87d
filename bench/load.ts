/**
 * domcast load benchmark: many viewers on one server.
 *
 *   npm run --silent bench:load                 (builds, then runs this file; JSON on stdout)
 *   BENCH_SECONDS=10 npm run --silent bench:load
 *
 * The server runs in this process (as in bench/run.ts), Chromium records bench/pages/feed.html, and
 * the viewers are WebSocket clients with permessage-deflate (bench/load-socket.ts) in two separate
 * processes (bench/load-clients.ts, driven through bench/viewer-clients.ts) on 127.0.0.1.
 * Scenarios: one session watched by 1,000 viewers; 20 sessions with 10 viewers each; 100 viewers
 * of a heavy page without, then with, 10 viewers that never read. Figures per scenario: delivery
 * latency (page timestamp → viewer receipt), frames and events per second, lost / duplicated
 * seqs, server CPU and RSS, the client processes' and Chromium's CPU. See docs/BENCHMARKS.md, section "Load".
 */
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { serveStatic, type StaticSite } from '../src/cli/static-site.js';
import type { Session } from '../src/session/index.js';
import { execute, startStack, waitFor, type Stack } from '../test/helpers/stack.js';
import { envInt, envNumber } from './env.js';
import { machineInfo, writeResult } from './results.js';
import { clientKind, sharedDecodeOn } from './load-socket.js';
import { LatencyHistogram, type GroupReport } from './load-ipc.js';
import { machineCpu, TICKS_PER_S, treeCpuTicks } from './proc-stat.js';
import { aggregate, Clients, mb, round } from './viewer-clients.js';
import { threeApiNodes, workerThroughput } from './load-cluster.js';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const PAGES_DIR = join(BENCH_DIR, 'pages');

/** Length of each scenario's measurement window. */
const BENCH_SECONDS = envInt('BENCH_SECONDS', 20, 3, 600);
/** Viewers of the single session in the first scenario. */
const BENCH_VIEWERS = envInt('BENCH_VIEWERS', 1000, 1, 4000);
const ALL_SCENARIOS = ['crowd', 'sessions', 'slow', 'cluster'] as const;
/**
 * Which scenarios run (a comma list; default all): crowd (one session, BENCH_VIEWERS viewers),
 * sessions (20 × 10), slow (baseline + slow consumers), cluster (BENCH_CLUSTER_VIEWERS viewers of
 * one session on one process, then over three API nodes; and one worker against two).
 */
const SCENARIOS: readonly string[] = (() => {
  const raw = process.env.BENCH_SCENARIOS?.trim();
  if (!raw) return ALL_SCENARIOS;
  const list = raw.split(',').map((x) => x.trim());
  const bad = list.filter((x) => !(ALL_SCENARIOS as readonly string[]).includes(x));
  if (bad.length > 0) throw new Error(`BENCH_SCENARIOS: unknown ${bad.join(', ')} (known: ${ALL_SCENARIOS.join(', ')})`);
  return list;
})();
/**
 * The 20-session scenario's pages run their timers this many times slower (feed.html?every=K):
 * Chromium spends about 7 ms of CPU per recorded mutation here (layout, paint, rrweb, the binding),
 * so 20 pages at the full rate would need 2.4 cores by themselves.
 */
const SESSIONS_EVERY = envInt('BENCH_SESSIONS_EVERY', 10, 1, 100);
/** The crowd's page runs its timers this many times slower (feed.html?every=K; below 1: faster, burstier). */
const CROWD_EVERY = envNumber('BENCH_CROWD_EVERY', 1, 0.1, 100);
/** Viewers of the session in the cluster scenario, on one process and then over three API nodes. */
const CLUSTER_VIEWERS = envInt('BENCH_CLUSTER_VIEWERS', 3000, 3, 6000);
/** Short runs in the cluster scenario's throughput batch. */
const CLUSTER_BATCH = envInt('BENCH_CLUSTER_BATCH', 8, 2, 100);
/** Processes the viewers are spread over. */
const CLIENT_PROCESSES = envInt('BENCH_CLIENT_PROCESSES', 2, 1, 8);
/** Log lines the heavy page appends every 100 ms (slow-consumer scenarios). */
const HEAVY_LINES = envInt('BENCH_HEAVY_LINES', 200, 1, 2000);

/** The server's settings for this bench: limits high enough for the crowd, no API key. */
const SERVER_ENV = {
  VISUAL_WEBSOCKET_MAX_CONNECTIONS: '7000',
  VISUAL_MAX_CONNECTIONS_PER_IP: '7000',
  EXECUTE_RATE_LIMIT: '0',
  MAX_CONCURRENT_SESSIONS: '20',
};

const TARGET_P95_MS = 100;
const TARGET_RSS_GROWTH_MB = 200;
/** "Unchanged within noise": the slow-consumer p95 may exceed the baseline's by this factor or this many ms, whichever is larger. */
const NOISE_RATIO = 1.25;
const NOISE_MS = 5;
/** The hub stops sending to a viewer whose socket holds more than this (src/stream/hub.ts). */
const HUB_BOUND_BYTES = 8 * 1024 * 1024;
/** Slack on top of slow viewers × the hub bound for the RSS check: GC timing, V8 and zlib buffers. */
const RSS_SLACK_MB = 32;

const WARMUP_MS = 2000;
/** rrweb Custom events (type 5) are the server's own step/status events, stamped when appended: not page latency. */
const CUSTOM_EVENT_PREFIX = '{"type":5,';
/** Before each scenario, wait (at most QUIET_MAX_MS) for a second in which other processes use less than this share of one core. */
const QUIET_PERCENT = 30;
const QUIET_MAX_MS = 30_000;
/** The server counts as idle below this share of one core. */
const SERVER_IDLE_PERCENT = 15;
/** Slow viewers read again for this long before their run ends, to show the hub had cut them off. */
const RESUME_MS = 3000;
/** After its run ended, a viewer has this long to get everything and the `end` frame; later ones count as incomplete. */
const COLLECT_TIMEOUT_MS = 15_000;
const WATCHDOG_MS = 10 * 60_000 + 8 * BENCH_SECONDS * 1000;

const progress = (message: string): void => {
  process.stderr.write(`[bench:load ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
};
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const rssMb = (): number => mb(process.memoryUsage().rss);
/** With --expose-gc (as `npm run bench:load` runs it), a collection before each RSS baseline makes them comparable. */
const collectGarbage = (): void => (globalThis as { gc?: () => void }).gc?.();

// ---------------------------------------------------------------------------------------------
// Server observations

interface VisualHealth {
  total_events_processed: number;
}

async function visualHealth(base: string): Promise<VisualHealth> {
  const res = await fetch(`${base}/health/visual`);
  if (!res.ok) throw new Error(`GET /health/visual answered HTTP ${res.status}`);
  return (await res.json()) as VisualHealth;
}

/**
 * Load over a window: the server process's CPU (all its threads, zlib's included) and event-loop
 * delay; the CPU of the client process, of Chromium (every other process below this one), and of
 * every process that is not ours (other work on the machine, which on 2 cores shows up in the tails).
 */
class WindowLoad {
  private readonly machine0 = machineCpu();
  private readonly tree0 = treeCpuTicks(process.pid);
  private readonly cpu0 = process.cpuUsage();
  private readonly t0 = performance.now();
  private readonly eld: IntervalHistogram = monitorEventLoopDelay({ resolution: 5 });

  constructor(private readonly clientPids: readonly number[]) {
    this.eld.enable();
  }

  stop() {
    this.eld.disable();
    const wallMs = performance.now() - this.t0;
    const cpu = process.cpuUsage(this.cpu0);
    const machine1 = machineCpu();
    const tree1 = treeCpuTicks(process.pid);
    const delta = (pid: number): number => Math.max(0, (tree1.get(pid) ?? 0) - (this.tree0.get(pid) ?? tree1.get(pid) ?? 0));
    let ours = 0;
    let chromium = 0;
    for (const pid of tree1.keys()) {
      const d = delta(pid);
      ours += d;
      if (pid !== process.pid && !this.clientPids.includes(pid)) chromium += d;
    }
    const pct = (ticks: number): number => round((ticks / TICKS_PER_S / (wallMs / 1000)) * 100);
    const ms = (ns: number): number => round(ns / 1e6);
    const machine = this.machine0 && machine1 && machine1.total > this.machine0.total ? { busy: machine1.busy - this.machine0.busy, total: machine1.total - this.machine0.total } : null;
    return {
      wall_s: round(wallMs / 1000, 2),
      cpu_percent_of_one_core: round(((cpu.user + cpu.system) / 1000 / wallMs) * 100),
      event_loop_delay_ms: { p50: ms(this.eld.percentile(50)), p99: ms(this.eld.percentile(99)), max: ms(this.eld.max) },
      machine_cpu_busy_percent: machine ? round((machine.busy / machine.total) * 100) : null,
      chromium_cpu_percent_of_one_core: pct(chromium),
      other_processes_cpu_percent_of_one_core: machine ? pct(Math.max(0, machine.busy - ours)) : null,
    };
  }
}

/**
 * Waits (at most `maxMs`) for a second in which the server process is nearly idle (it may still be
 * busy with the previous scenario's viewers) and processes not ours use less than `percent` of a core.
 */
async function awaitQuiet(clientPids: readonly number[], percent: number, maxMs: number) {
  const started = performance.now();
  let last: ReturnType<WindowLoad['stop']> | null = null;
  while (performance.now() - started < maxMs) {
    const w = new WindowLoad(clientPids);
    await sleep(1000);
    last = w.stop();
    if (last.cpu_percent_of_one_core < SERVER_IDLE_PERCENT && (last.other_processes_cpu_percent_of_one_core ?? 0) < percent) break;
  }
  return {
    waited_s: round((performance.now() - started) / 1000),
    server_cpu_percent_of_one_core: last?.cpu_percent_of_one_core ?? null,
    other_processes_cpu_percent_of_one_core: last?.other_processes_cpu_percent_of_one_core ?? null,
  };
}

/** RSS of this process (the server): the peak (every 100 ms) and a series (every 500 ms) with named marks. */
class RssTrace {
  peak = process.memoryUsage().rss;
  readonly series: [number, number][] = [];
  readonly marks: Record<string, number> = {};
  private readonly t0 = performance.now();
  private ticks = 0;
  private readonly timer = setInterval(() => {
    const rss = process.memoryUsage().rss;
    this.peak = Math.max(this.peak, rss);
    if (this.ticks++ % 5 === 0) this.series.push([this.at(), mb(rss)]);
  }, 100);

  private at(): number {
    return round((performance.now() - this.t0) / 1000);
  }

  mark(name: string): void {
    this.marks[name] = this.at();
  }

  /** Highest RSS sample between two marks (inclusive), in MB. */
  peakBetween(from: string, to: string): number | null {
    const a = this.marks[from];
    const b = this.marks[to];
    if (a === undefined || b === undefined) return null;
    const xs = this.series.filter(([t]) => t >= a && t <= b).map(([, v]) => v);
    return xs.length ? Math.max(...xs) : null;
  }

  /** Sample nearest to a mark, in MB. */
  near(name: string): number | null {
    const t = this.marks[name];
    if (t === undefined || this.series.length === 0) return null;
    let best = this.series[0];
    for (const s of this.series) if (best === undefined || Math.abs(s[0] - t) < Math.abs(best[0] - t)) best = s;
    return best?.[1] ?? null;
  }

  stop(): number {
    clearInterval(this.timer);
    this.peak = Math.max(this.peak, process.memoryUsage().rss);
    return this.peak;
  }
}

// ---------------------------------------------------------------------------------------------
// Scenarios

interface Spec {
  key: string;
  sessions: number;
  viewersPerSession: number;
  slowPerSession: number;
  /** Query string of bench/pages/feed.html. */
  query: string;
}

interface Run {
  id: string;
  streamUrl: string;
  session: Session;
}

async function startRun(stack: Stack, pages: StaticSite, spec: Spec, i: number): Promise<Run> {
  const { status, body } = await execute(stack.base, {
    workflow: {
      name: `bench load ${spec.key} ${i + 1}`,
      steps: [
        { type: 'navigation', url: `${pages.url}/feed.html${spec.query}`, description: 'open the feed' },
        // Longer than the scenario: the bench cancels the run once it has measured.
        { type: 'wait', ms: (BENCH_SECONDS + 300) * 1000, description: 'hold' },
      ],
    },
    visual_enabled: true,
  });
  if (status !== 202 || !body.visual_stream_url) throw new Error(`POST /workflows/execute answered ${status}: ${JSON.stringify(body).slice(0, 300)}`);
  const session = stack.server.deps.registry.get(body.session_id);
  if (!session) throw new Error(`session ${body.session_id} is not in the registry`);
  // The URL exactly as the API gave it: it carries the viewer token.
  return { id: body.session_id, streamUrl: body.visual_stream_url, session };
}

async function cancel(stack: Stack, id: string): Promise<void> {
  const res = await fetch(`${stack.base}/workflows/${encodeURIComponent(id)}/cancel`, { method: 'POST' });
  if (!res.ok && res.status !== 409) throw new Error(`POST /workflows/${id}/cancel answered HTTP ${res.status}`);
}

function bytesBeforeReset(groups: readonly GroupReport[]): { min: number; max: number } | null {
  const mins = groups.map((g) => g.resumed?.bytes_before_reset.min).filter((x): x is number => typeof x === 'number');
  const maxs = groups.map((g) => g.resumed?.bytes_before_reset.max).filter((x): x is number => typeof x === 'number');
  return mins.length > 0 ? { min: mb(Math.min(...mins)), max: mb(Math.max(...maxs)) } : null;
}

async function runScenario(stack: Stack, pages: StaticSite, clients: Clients, spec: Spec) {
  const viewers = spec.sessions * spec.viewersPerSession;
  const slow = spec.sessions * spec.slowPerSession;
  progress(`${spec.key}: ${spec.sessions} session(s), ${viewers} viewer(s)${slow ? ` + ${slow} that never read` : ''}, feed.html${spec.query}`);
  const quiet = await awaitQuiet(clients.pids, QUIET_PERCENT, QUIET_MAX_MS);
  if (quiet.waited_s > 1.5) progress(`${spec.key}: waited ${quiet.waited_s} s for a quiet machine (last second: server ${quiet.server_cpu_percent_of_one_core}%, other processes ${quiet.other_processes_cpu_percent_of_one_core}% of a core)`);
  collectGarbage();
  const rssBefore = rssMb();
  const trace = new RssTrace();

  const runs = await Promise.all(Array.from({ length: spec.sessions }, (_, i) => startRun(stack, pages, spec, i)));
  await waitFor(
    'every session to be in its wait step with a checkpoint',
    () => {
      const ended = runs.find((r) => r.session.finished);
      if (ended) throw new Error(`run ${ended.id} ended ${ended.session.status} before its wait step: ${ended.session.error ?? 'no error'}`);
      return runs.every((r) => r.session.status === 'running' && r.session.currentStep === 1 && r.session.log.checkpointSeq > 0);
    },
    // Each run starts a Chromium of its own (BROWSER_ISOLATION=run), two at a time: on 2 cores 20 of
    // them take minutes to be up, and that is the machine, not a failure (the figure is in the JSON).
    Math.max(120_000, spec.sessions * 20_000),
    50,
  ).catch((err: unknown) => {
    const states = runs.map((r) => `${r.session.status}/step ${r.session.currentStep}/checkpoint ${r.session.log.checkpointSeq}`);
    throw new Error(`${err instanceof Error ? err.message : String(err)}; runs: ${[...new Set(states)].join(', ')}`);
  });
  trace.mark('sessions_ready');
  progress(`${spec.key}: every run in its wait step after ${trace.marks.sessions_ready} s`);

  progress(`${spec.key}: connecting the viewers`);
  const connectLoad = new WindowLoad(clients.pids);
  const groupsOf = (kind: 'normal' | 'slow') => runs.map((_, i) => `${spec.key}/${i}/${kind}`);
  const opened = await Promise.all(
    runs.flatMap((r, i) => [
      clients.open(`${spec.key}/${i}/normal`, r.streamUrl, spec.viewersPerSession, false),
      ...(spec.slowPerSession > 0 ? [clients.open(`${spec.key}/${i}/slow`, r.streamUrl, spec.slowPerSession, true)] : []),
    ]),
  );
  const connect = {
    ms: Math.max(...opened.map((o) => o.ms)),
    failed: opened.reduce((n, o) => n + o.failed, 0),
    errors: [...new Set(opened.flatMap((o) => o.errors))],
    server: connectLoad.stop(),
  };
  trace.mark('connected');
  progress(`${spec.key}: ${opened.reduce((n, o) => n + o.opened, 0)} viewer(s) connected in ${connect.ms} ms${connect.failed ? `, ${connect.failed} failed: ${connect.errors.join('; ')}` : ''}`);

  await sleep(WARMUP_MS);
  const h0 = await visualHealth(stack.base);
  const load = new WindowLoad(clients.pids);
  await clients.measure(true);
  trace.mark('window_start');
  // Subscribed after the hub's channel, so called once the batch was handed to every viewer's socket.
  const handoff = new LatencyHistogram();
  const unsubscribe = runs.map((r) =>
    r.session.log.subscribe((batch) => {
      const now = Date.now();
      batch.timestamps.forEach((ts, i) => {
        if (!batch.events[i]?.startsWith(CUSTOM_EVENT_PREFIX)) handoff.add(now - ts);
      });
    }),
  );
  await sleep(BENCH_SECONDS * 1000);
  for (const off of unsubscribe) off();
  const clientWindow = await clients.measure(false);
  trace.mark('window_end');
  const server = load.stop();
  const h1 = await visualHealth(stack.base);
  const allRunning = runs.every((r) => r.session.status === 'running' && r.session.currentStep === 1);

  if (slow > 0) {
    progress(`${spec.key}: the slow viewers read again for ${RESUME_MS / 1000} s`);
    await clients.resume(groupsOf('slow'));
    await sleep(RESUME_MS);
  }
  await Promise.all(runs.map((r) => cancel(stack, r.id)));
  await waitFor('the runs to end', () => runs.every((r) => r.session.finished), 30_000, 50);
  const lastSeqs = runs.map((r) => r.session.log.lastSeq);
  const collected = await clients.collect([...groupsOf('normal'), ...groupsOf('slow')], COLLECT_TIMEOUT_MS);
  trace.mark('ended');
  const rssPeak = mb(trace.stop());
  collectGarbage();
  await sleep(500);
  const rssEnd = rssMb();

  const normal = collected.filter((g) => !g.slow);
  const slowGroups = collected.filter((g) => g.slow);
  const delivered = aggregate(normal, server.wall_s);
  const eventsIngested = h1.total_events_processed - h0.total_events_processed;
  const result = {
    sessions: spec.sessions,
    viewers,
    slow_viewers: slow,
    page: `feed.html${spec.query}`,
    window_s: server.wall_s,
    runs_in_steady_state_throughout: allRunning,
    final_last_seq: { min: Math.min(...lastSeqs), max: Math.max(...lastSeqs) },
    connect,
    latency_ms: delivered.latency_ms,
    /** Page timestamp → batch handed to every viewer socket, in the server (page, recorder batching, binding, log, fan-out). */
    server_handoff_latency_ms: handoff.summary(),
    ingest_events_per_s: round(eventsIngested / server.wall_s),
    frames_per_s: delivered.frames_per_s,
    events_per_s: delivered.events_per_s,
    events_per_s_per_viewer: delivered.events_per_s_per_viewer,
    payload_mb_per_s: delivered.payload_mb_per_s,
    wire_mb_per_s: delivered.wire_mb_per_s,
    integrity: delivered.integrity,
    server: {
      cpu_percent_of_one_core: server.cpu_percent_of_one_core,
      event_loop_delay_ms: server.event_loop_delay_ms,
      rss_mb: {
        before: rssBefore,
        at_window_start: trace.near('window_start'),
        at_window_end: trace.near('window_end'),
        peak: rssPeak,
        end: rssEnd,
        growth: round(rssPeak - rssBefore),
      },
    },
    clients: clientWindow,
    chromium: { cpu_percent_of_one_core: server.chromium_cpu_percent_of_one_core },
    machine: {
      cpu_busy_percent: server.machine_cpu_busy_percent,
      other_processes_cpu_percent_of_one_core: server.other_processes_cpu_percent_of_one_core,
      waited_for_quiet_before: quiet,
    },
    slow:
      slow > 0
        ? {
            ...aggregate(slowGroups, server.wall_s).integrity,
            cut_off_and_reset: slowGroups.reduce((n, g) => n + (g.resumed?.got_reset_after_resume ?? 0), 0),
            /** What a slow viewer read once it resumed, up to that reset: its initial reset, then what the server and kernel held. */
            bytes_read_before_reset_mb: bytesBeforeReset(slowGroups),
          }
        : null,
    rss_trace: { marks: trace.marks, series_s_mb: trace.series },
  };
  const l = result.latency_ms;
  progress(
    `${spec.key}: p50 ${l.p50} / p95 ${l.p95} / p99 ${l.p99} ms over ${l.samples} deliveries (server hand-off p95 ${result.server_handoff_latency_ms.p95} ms); ${result.frames_per_s} frames/s; ` +
      `lost ${result.integrity.lost}, dup ${result.integrity.duplicated}, late resets ${result.integrity.late_resets}; ` +
      `server ${server.cpu_percent_of_one_core}% CPU, Chromium ${server.chromium_cpu_percent_of_one_core}%, others ${server.other_processes_cpu_percent_of_one_core}%, RSS ${rssBefore} → ${rssPeak} MB; clients ${clientWindow.cpu_percent_of_one_core}% CPU (busiest process ${clientWindow.busiest_process_cpu_percent}%)`,
  );
  return result;
}

type ScenarioResult = Awaited<ReturnType<typeof runScenario>>;

const clean = (r: ScenarioResult): boolean =>
  r.integrity.lost === 0 && r.integrity.duplicated === 0 && r.integrity.late_resets === 0 && r.integrity.incomplete_viewers === 0 && r.connect.failed === 0;

interface Check {
  value: unknown;
  target: string;
  pass: boolean;
}

/** Every target of the issue that the scenarios which ran can answer. */
function targets(crowd: ScenarioResult | null, many: ScenarioResult | null, base: ScenarioResult | null, withSlow: ScenarioResult | null): Record<string, Check> {
  const checks: Record<string, Check> = {};
  if (crowd) {
    const p95 = crowd.latency_ms.p95;
    checks.crowd_p95_under_100_ms = { value: p95, target: `< ${TARGET_P95_MS} ms, ${crowd.viewers} viewers of one session`, pass: p95 !== null && p95 < TARGET_P95_MS };
    checks.crowd_rss_growth_under_200_mb = { value: crowd.server.rss_mb.growth, target: `< ${TARGET_RSS_GROWTH_MB} MB`, pass: crowd.server.rss_mb.growth < TARGET_RSS_GROWTH_MB };
  }
  const ran = [crowd, many, base, withSlow].filter((r): r is ScenarioResult => r !== null);
  const total = (f: (r: ScenarioResult) => number) => ran.reduce((n, r) => n + f(r), 0);
  checks.no_lost_or_duplicated_events = {
    value: {
      lost: total((r) => r.integrity.lost),
      duplicated: total((r) => r.integrity.duplicated),
      late_resets: total((r) => r.integrity.late_resets),
      incomplete_viewers: total((r) => r.integrity.incomplete_viewers),
      failed_connections: total((r) => r.connect.failed),
    },
    target: 'all 0, over every normal viewer of every scenario',
    pass: ran.every(clean),
  };
  if (base && withSlow) {
    const baseP95 = base.latency_ms.p95;
    const slowP95 = withSlow.latency_ms.p95;
    const slowCount = withSlow.slow_viewers;
    const extraRss = round(withSlow.server.rss_mb.growth - base.server.rss_mb.growth);
    const rssBound = round(mb(slowCount * HUB_BOUND_BYTES) + RSS_SLACK_MB);
    const cutOff = withSlow.slow?.cut_off_and_reset ?? 0;
    checks.slow_consumers_leave_p95_unchanged = {
      value: { baseline_p95: baseP95, with_slow_p95: slowP95, ratio: baseP95 && slowP95 !== null ? round(slowP95 / baseP95, 2) : null },
      target: `≤ max(${NOISE_RATIO} × baseline, baseline + ${NOISE_MS} ms)`,
      pass: baseP95 !== null && slowP95 !== null && slowP95 <= Math.max(baseP95 * NOISE_RATIO, baseP95 + NOISE_MS),
    };
    checks.slow_consumers_rss_bounded = {
      value: { extra_growth_mb: extraRss, bound_mb: rssBound },
      target: `RSS growth minus the baseline's ≤ slow viewers × 8 MiB + ${RSS_SLACK_MB} MB`,
      pass: extraRss <= rssBound,
    };
    checks.slow_consumers_hit_the_hub_bound = {
      value: cutOff,
      target: `all ${slowCount} slow viewers were cut off (a reset once they read again)`,
      pass: cutOff === slowCount,
    };
  }
  return checks;
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const watchdog = setTimeout(() => {
    progress(`watchdog: still running after ${WATCHDOG_MS / 1000} s, giving up`);
    process.exit(2);
  }, WATCHDOG_MS);
  watchdog.unref();

  const startedAt = Date.now();
  const loadAtStart = loadavg()[0] ?? 0;
  progress(`starting (BENCH_SECONDS=${BENCH_SECONDS}, BENCH_VIEWERS=${BENCH_VIEWERS}, BENCH_SCENARIOS=${SCENARIOS.join(',')}, BENCH_HEAVY_LINES=${HEAVY_LINES})`);
  const stack = await startStack(SERVER_ENV);
  const pages = await serveStatic(PAGES_DIR);
  const clients = Clients.start(CLIENT_PROCESSES);
  try {
    const crowd = SCENARIOS.includes('crowd')
      ? await runScenario(stack, pages, clients, { key: 'one_session_crowd', sessions: 1, viewersPerSession: BENCH_VIEWERS, slowPerSession: 0, query: CROWD_EVERY === 1 ? '' : `?every=${CROWD_EVERY}` })
      : null;
    const many = SCENARIOS.includes('sessions')
      ? await runScenario(stack, pages, clients, { key: 'twenty_sessions', sessions: 20, viewersPerSession: 10, slowPerSession: 0, query: `?every=${SESSIONS_EVERY}` })
      : null;
    const heavy = `?lines=${HEAVY_LINES}`;
    const base = SCENARIOS.includes('slow')
      ? await runScenario(stack, pages, clients, { key: 'heavy_baseline', sessions: 1, viewersPerSession: 100, slowPerSession: 0, query: heavy })
      : null;
    const withSlow = SCENARIOS.includes('slow')
      ? await runScenario(stack, pages, clients, { key: 'heavy_with_slow', sessions: 1, viewersPerSession: 100, slowPerSession: 10, query: heavy })
      : null;
    const clusterBaseline = SCENARIOS.includes('cluster')
      ? await runScenario(stack, pages, clients, { key: 'cluster_baseline_one_process', sessions: 1, viewersPerSession: CLUSTER_VIEWERS, slowPerSession: 0, query: '' })
      : null;
    const clusterOptions = { pages, clients, seconds: BENCH_SECONDS, viewers: CLUSTER_VIEWERS, batch: CLUSTER_BATCH, warmupMs: WARMUP_MS, collectTimeoutMs: COLLECT_TIMEOUT_MS, env: SERVER_ENV, progress };
    const cluster = SCENARIOS.includes('cluster') ? await threeApiNodes(clusterOptions) : null;
    const throughput = SCENARIOS.includes('cluster') ? await workerThroughput(clusterOptions) : null;
    const checks = targets(crowd, many, base, withSlow);
    if (cluster && clusterBaseline && throughput) {
      const p95 = cluster.latency_ms.p95;
      checks.cluster_p95_under_100_ms = {
        value: { three_api_nodes_p95: p95, one_process_p95: clusterBaseline.latency_ms.p95, ratio: p95 !== null && clusterBaseline.latency_ms.p95 ? round(p95 / clusterBaseline.latency_ms.p95, 2) : null },
        target: `< ${TARGET_P95_MS} ms, ${CLUSTER_VIEWERS} viewers over 3 API nodes`,
        pass: p95 !== null && p95 < TARGET_P95_MS,
      };
      checks.cluster_nothing_lost_or_duplicated = {
        value: { lost: cluster.integrity.lost, duplicated: cluster.integrity.duplicated, late_resets: cluster.integrity.late_resets, incomplete_viewers: cluster.integrity.incomplete_viewers, failed_connections: cluster.connect.failed },
        target: 'all 0',
        pass: cluster.integrity.lost === 0 && cluster.integrity.duplicated === 0 && cluster.integrity.late_resets === 0 && cluster.integrity.incomplete_viewers === 0 && cluster.connect.failed === 0,
      };
      checks.two_workers_about_half_the_time = { value: throughput.ratio, target: "two workers' time ≤ 0.6 × one worker's", pass: throughput.ratio <= 0.6 };
    }

    const result = {
      bench: 'domcast-load',
      date: new Date().toISOString(),
      machine: machineInfo(loadAtStart),
      config: { bench_seconds: BENCH_SECONDS, bench_viewers: BENCH_VIEWERS, cluster_viewers: CLUSTER_VIEWERS, cluster_batch: CLUSTER_BATCH, scenarios: SCENARIOS, heavy_lines: HEAVY_LINES, crowd_every: CROWD_EVERY, client: clientKind(), client_shared_decode: sharedDecodeOn(), client_processes: CLIENT_PROCESSES, warmup_s: WARMUP_MS / 1000, server_env: SERVER_ENV },
      pass: Object.values(checks).every((c) => c.pass),
      targets: checks,
      scenarios: {
        one_session_crowd: crowd,
        twenty_sessions: many,
        slow_consumers:
          base && withSlow
            ? {
                baseline: base,
                with_slow: withSlow,
                p50_ratio: base.latency_ms.p50 && withSlow.latency_ms.p50 !== null ? round(withSlow.latency_ms.p50 / base.latency_ms.p50, 2) : null,
                p95_ratio: base.latency_ms.p95 && withSlow.latency_ms.p95 !== null ? round(withSlow.latency_ms.p95 / base.latency_ms.p95, 2) : null,
              }
            : null,
        cluster: cluster && clusterBaseline ? { baseline_one_process: clusterBaseline, three_api_nodes: cluster, throughput } : null,
      },
      duration_s: round((Date.now() - startedAt) / 1000),
    };
    writeResult('load-latest.json', result);
    const failed = Object.entries(checks).filter(([, c]) => !c.pass).map(([k]) => k);
    progress(`done in ${result.duration_s} s; ${failed.length ? `missed: ${failed.join(', ')}` : 'every target met'}; written to bench/results/load-latest.json`);
  } finally {
    await clients.stop();
    await stack.close().catch((err: unknown) => progress(`closing the server: ${String(err)}`));
    await pages.close();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    progress(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
