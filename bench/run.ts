/**
 * domcast benchmark: glass-to-glass latency, bandwidth against a CDP screencast, ingest throughput.
 *
 *   npm run bench                      (builds, then runs this file)
 *   BENCH_SECONDS=5 npm run bench      (quick run: 5 s latency window)
 *   BENCH_ONLY=latency npm run bench   (latency, its bare-pipeline baseline and late join only)
 *   BENCH_ONLY=bandwidth npm run bench (a viewer's bytes for the demo workflow against a CDP screencast only)
 *   BENCH_ONLY=control npm run bench   (take control: a click in the viewer to the change in that viewer; bench/control.ts)
 *
 * Everything runs on 127.0.0.1 with the real server (in this process) and real Chromium.
 * The result is JSON on stdout and in bench/results/latest.json; progress goes to stderr.
 * See docs/BENCHMARKS.md for what each figure means.
 */
import { createServer as createTcpServer, connect as tcpConnect, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay, PerformanceObserver, type IntervalHistogram } from 'node:perf_hooks';
import type { Browser } from 'playwright-core';
import { serveStatic, type StaticSite } from '../src/cli/static-site.js';
import type { Session } from '../src/session/index.js';
import { execute, launchViewerBrowser, startStack, waitFor, WsViewer, type Stack } from '../test/helpers/stack.js';
import { startBarePipeline } from './bare.js';
import { measureControl } from './control.js';
import { envNumber } from './env.js';
import { machineInfo, writeResult } from './results.js';
import { machineCpu } from './proc-stat.js';
import { measureDiskPerMinute, measureStoreWrites } from './store.js';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const PAGES_DIR = join(BENCH_DIR, 'pages');

/** Length of each measurement window, in seconds. */
const BENCH_SECONDS = envNumber('BENCH_SECONDS', 30, 1, 600);
const LATENCY_TARGET_P95_MS = 50;
const LATENCY_WARMUP_MS = 2000;
const LATE_JOIN_TRIES = 20;
const LATE_JOIN_TARGET_P95_MS = 300;
/** Issue 12: a viewer downloads (stream and assets together) at least this many times fewer bytes than the screencast. */
const BANDWIDTH_TARGET_RATIO = 200;
/** The churn runs' wait step: long enough for every page to start on a loaded machine; they are cancelled after the window. */
const INGEST_WAIT_MS = 60_000;
const INGEST_WINDOW_MS = 8_000;
/** Hard stop: whatever happens, the process ends (bounded run). */
const WATCHDOG_MS = 10 * 60_000 + BENCH_SECONDS * 1000;

const progress = (message: string): void => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
};
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const round = (v: number, digits = 1): number => Math.round(v * 10 ** digits) / 10 ** digits;

// ---------------------------------------------------------------------------------------------
// Small statistics

interface Distribution {
  samples: number;
  mean: number | null;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  max: number | null;
  min: number | null;
}

/** Nearest-rank percentiles. */
function distribution(values: readonly number[]): Distribution {
  if (values.length === 0) return { samples: 0, mean: null, p50: null, p95: null, p99: null, max: null, min: null };
  const sorted = [...values].sort((a, b) => a - b);
  const pick = (p: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? Number.NaN;
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    samples: sorted.length,
    mean: round(sum / sorted.length),
    p50: pick(50),
    p95: pick(95),
    p99: pick(99),
    max: sorted[sorted.length - 1] ?? null,
    min: sorted[0] ?? null,
  };
}

// ---------------------------------------------------------------------------------------------
// Server observations

interface VisualHealth {
  total_events_processed: number;
  average_latency: number | null;
  latency_p95: number | null;
  latency_samples: number;
  batches_processed: number;
  viewers: number;
  active_sessions: number;
  rss_bytes: number;
}

async function visualHealth(base: string): Promise<VisualHealth> {
  const res = await fetch(`${base}/health/visual`);
  if (!res.ok) throw new Error(`GET /health/visual answered HTTP ${res.status}`);
  return (await res.json()) as VisualHealth;
}

function sessionOf(stack: Stack, id: string): Session {
  const session = stack.server.deps.registry.get(id);
  if (!session) throw new Error(`session ${id} is not in the registry`);
  return session;
}

async function startRun(stack: Stack, body: unknown): Promise<{ id: string; streamUrl: string; viewerUrl: string }> {
  const { status, body: answer } = await execute(stack.base, body);
  if (status !== 202 || !answer.visual_stream_url || !answer.viewer_url) {
    throw new Error(`POST /workflows/execute answered ${status}: ${JSON.stringify(answer).slice(0, 300)}`);
  }
  return { id: answer.session_id, streamUrl: answer.visual_stream_url, viewerUrl: answer.viewer_url };
}

/** Peak RSS of this process (the server runs in it), sampled every 50 ms while running. */
class RssSampler {
  peak = process.memoryUsage().rss;
  private readonly timer = setInterval(() => {
    this.peak = Math.max(this.peak, process.memoryUsage().rss);
  }, 50);

  stop(): number {
    clearInterval(this.timer);
    this.peak = Math.max(this.peak, process.memoryUsage().rss);
    return this.peak;
  }
}

const mb = (bytes: number): number => round(bytes / (1024 * 1024));

/**
 * What else was going on during a window: how busy the whole machine was (every process, ours and
 * others', as a share of all cores) and the event-loop delay of this process, which hosts the server.
 */
class Conditions {
  private readonly cpu0 = machineCpu();
  private readonly eld: IntervalHistogram = monitorEventLoopDelay({ resolution: 5 });
  /** This process's garbage collections in the window (the server's pauses: a tail suspect). */
  private readonly gcs: number[] = [];
  private readonly gc = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) this.gcs.push(e.duration);
  });

  constructor() {
    this.eld.enable();
    this.gc.observe({ entryTypes: ['gc'] });
  }

  stop() {
    this.eld.disable();
    this.gc.disconnect();
    const cpu1 = machineCpu();
    const ms = (ns: number): number => round(ns / 1e6);
    const busy = this.cpu0 && cpu1 && cpu1.total > this.cpu0.total ? round(((cpu1.busy - this.cpu0.busy) / (cpu1.total - this.cpu0.total)) * 100) : null;
    return {
      machine_cpu_busy_percent: busy,
      event_loop_delay_ms: { p50: ms(this.eld.percentile(50)), p99: ms(this.eld.percentile(99)), max: ms(this.eld.max) },
      server_gc: { count: this.gcs.length, total_ms: round(this.gcs.reduce((a, b) => a + b, 0)), max_ms: round(Math.max(0, ...this.gcs)) },
    };
  }
}

// ---------------------------------------------------------------------------------------------
// 1. Glass-to-glass latency

/**
 * Installed in the viewer page (as plain JS text, so nothing from the TS toolchain leaks into it).
 * A MutationObserver on the replayed #now records `Date.now() - value` the moment the replayer
 * changes it; a requestAnimationFrame loop records the same for the first frame that shows a new
 * value, and re-attaches the observer whenever the replayed element is replaced (a new iframe or a
 * rebuilt document after a full snapshot).
 */
const SAMPLER = `(() => {
  const st = { mo: [], raf: [], long: [], lastMo: null, lastRaf: null, el: null, observer: null, attaches: 0, frames: 0, running: true, timer: 0 };
  // The viewer's own stalls (script, style, layout over 50 ms): what the replay costs its page.
  try { new PerformanceObserver((l) => { for (const e of l.getEntries()) if (st.running) st.long.push(e.duration); }).observe({ type: 'longtask' }); } catch {}
  const find = () => {
    const iframe = document.querySelector('.replayer-wrapper iframe');
    const doc = iframe ? iframe.contentDocument : null;
    return doc ? doc.getElementById('now') : null;
  };
  const sample = (el, list, key) => {
    const seen = Date.now();
    const value = Number(el.textContent);
    if (!Number.isFinite(value) || value <= 0 || value === st[key]) return;
    st[key] = value;
    list.push(seen - value);
  };
  const attach = () => {
    const el = find();
    if (el === st.el || !st.running) return;
    if (st.observer) st.observer.disconnect();
    st.observer = null;
    st.el = el;
    if (!el) return;
    st.attaches++;
    // The value already shown changed at an unknown time: not a sample.
    st.lastMo = Number(el.textContent);
    st.observer = new MutationObserver(() => { if (st.el && st.el.isConnected) sample(st.el, st.mo, 'lastMo'); });
    st.observer.observe(el, { childList: true, characterData: true, subtree: true });
  };
  const frame = () => {
    if (!st.running) return;
    st.frames++;
    attach();
    if (st.el && st.el.isConnected) sample(st.el, st.raf, 'lastRaf');
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
  st.timer = setInterval(attach, 25);
  window.__bench = {
    ready: () => st.el !== null && st.mo.length > 0,
    drain: () => {
      const out = { mo: st.mo, raf: st.raf, frames: st.frames, attaches: st.attaches, long: st.long };
      st.mo = []; st.raf = []; st.frames = 0; st.attaches = 0; st.long = [];
      return out;
    },
    take: () => {
      st.running = false;
      clearInterval(st.timer);
      if (st.observer) st.observer.disconnect();
      return { mo: st.mo, raf: st.raf, frames: st.frames, attaches: st.attaches, long: st.long };
    },
  };
})()`;

interface SamplerResult {
  mo: number[];
  raf: number[];
  frames: number;
  attaches: number;
  /** Long tasks (> 50 ms) of the viewer page, ms. */
  long: number[];
}

/**
 * Opens `viewerUrl` in `browser`, waits for the replayed clock to tick, drops a warm-up, then
 * samples for `seconds`: the same probe for domcast's viewer and the bare pipeline's.
 */
async function sampleViewer(browser: Browser, viewerUrl: string, seconds: number, collect?: string) {
  const page = await browser.newPage();
  try {
    await page.goto(viewerUrl);
    await page.evaluate(SAMPLER);
    await waitFor('the replayed #now to tick in the viewer', () => page.evaluate('window.__bench.ready()'), 30_000, 50);
    // Warm-up: the first second or so after the viewer opens is the viewer's Chromium loading and
    // building the page, which on 2 cores also starves the recorded page. Reported apart.
    await page.evaluate('window.__bench.drain()');
    await sleep(LATENCY_WARMUP_MS);
    const warmup = (await page.evaluate('window.__bench.drain()')) as SamplerResult;
    const conditions = new Conditions();
    const started = Date.now();
    await sleep(seconds * 1000);
    const sampled = (await page.evaluate('window.__bench.take()')) as SamplerResult;
    const windowMs = Date.now() - started;
    const collected: unknown = collect ? await page.evaluate(collect) : undefined;
    return { warmup, sampled, windowMs, conditions: conditions.stop(), collected };
  } finally {
    await page.close().catch(() => undefined);
  }
}

function latencyFigures({ warmup, sampled, windowMs, conditions }: Awaited<ReturnType<typeof sampleViewer>>) {
  return {
    window_s: round(windowMs / 1000),
    clock_interval_ms: 20,
    expected_samples: Math.round(windowMs / 20),
    warmup_s: LATENCY_WARMUP_MS / 1000,
    warmup_mutation_observer_ms: distribution(warmup.mo),
    mutation_observer_ms: distribution(sampled.mo),
    raf_ms: distribution(sampled.raf),
    viewer_frames: sampled.frames,
    viewer_frame_rate: round(sampled.frames / (windowMs / 1000)),
    observer_reattaches: sampled.attaches,
    viewer_long_tasks: { count: sampled.long.length, max_ms: round(Math.max(0, ...sampled.long)), total_ms: round(sampled.long.reduce((a, b) => a + b, 0)) },
    conditions,
  };
}

async function measureLatency(stack: Stack, pages: StaticSite, browser: Browser, seconds = BENCH_SECONDS) {
  progress(`latency: clock page for ${seconds} s, sampled in the real viewer`);
  const run = await startRun(stack, {
    workflow: {
      name: 'bench clock',
      steps: [
        { type: 'navigation', url: `${pages.url}/clock.html`, description: 'open the clock' },
        { type: 'wait', ms: seconds * 1000 + 5000, description: 'hold' },
      ],
    },
    visual_enabled: true,
  });
  const session = sessionOf(stack, run.id);
  const figures = latencyFigures(await sampleViewer(browser, run.viewerUrl, seconds));
  const health = await visualHealth(stack.base);
  const stillRunning = session.status === 'running';
  progress('latency: waiting for the clock run to end');
  await waitFor('the clock run to end', () => session.finished, 30_000, 100);
  const recorded = (await (await fetch(`${stack.base}/workflows/${run.id}/events`)).json()) as { type: number }[];
  const mo = figures.mutation_observer_ms;
  progress(`latency: MutationObserver p50 ${mo.p50} ms, p95 ${mo.p95} ms, p99 ${mo.p99} ms (${mo.samples} samples)`);
  return {
    target_p95_ms: LATENCY_TARGET_P95_MS,
    meets_target: mo.p95 !== null && mo.p95 < LATENCY_TARGET_P95_MS,
    ...figures,
    run_still_running_at_end_of_window: stillRunning,
    server_health: {
      note: 'page timestamp -> handed to viewer sockets, latest 4096 events of this server',
      average_latency_ms: health.average_latency,
      latency_p95_ms: health.latency_p95,
      latency_samples: health.latency_samples,
    },
    json_per_event: jsonCost(recorded),
  };
}

/**
 * What JSON costs the server per event of this recording: a stringify and a parse of each event,
 * repeated over the recording for at least 300 ms of each, on this process's loop. Full snapshots
 * (type 2) apart: they are few and large.
 */
function jsonCost(events: readonly { type: number }[]) {
  const time = (list: readonly { type: number }[]) => {
    if (list.length === 0) return null;
    const texts = list.map((e) => JSON.stringify(e));
    const bytes = texts.reduce((a, t) => a + Buffer.byteLength(t), 0);
    const loop = (fn: () => void): number => {
      let n = 0;
      const t0 = process.hrtime.bigint();
      let elapsed = 0n;
      while (elapsed < 300_000_000n) {
        fn();
        n++;
        elapsed = process.hrtime.bigint() - t0;
      }
      return Number(elapsed) / 1000 / (n * list.length);
    };
    const stringifyUs = loop(() => list.forEach((e) => JSON.stringify(e)));
    const parseUs = loop(() => texts.forEach((t) => JSON.parse(t)));
    return { events: list.length, mean_bytes: Math.round(bytes / list.length), stringify_us: round(stringifyUs, 2), parse_us: round(parseUs, 2) };
  };
  return {
    note: 'µs per event on the server process, each event stringified and parsed alone; the server parses each page batch once and frames it once',
    incremental: time(events.filter((e) => e.type !== 2)),
    full_snapshots: time(events.filter((e) => e.type === 2)),
  };
}

/** The bare pipeline (bench/bare.ts) on the same clock page, with the same probe: the baseline. */
async function measureBareLatency(pages: StaticSite, browser: Browser, seconds = BENCH_SECONDS) {
  progress(`latency baseline: the bare pipeline on the clock page for ${seconds} s`);
  const bare = await startBarePipeline(`${pages.url}/clock.html`);
  try {
    const sampled = await sampleViewer(browser, bare.viewerUrl, seconds, 'window.__bareWork.splice(0)');
    const figures = latencyFigures(sampled);
    const mo = figures.mutation_observer_ms;
    progress(`latency baseline: MutationObserver p50 ${mo.p50} ms, p95 ${mo.p95} ms, p99 ${mo.p99} ms (${mo.samples} samples)`);
    // The bare viewer times each event it applies: rrweb's own work per event, which domcast's viewer does too.
    const work = (sampled.collected ?? []) as [number, number][];
    const viewerWork = {
      note: 'per event applied by the bare viewer in the window: JSON.parse of the message, then rrweb Replayer.addEvent (live, applied at once)',
      events: work.length,
      parse_ms: distribution(work.map((w) => round(w[0], 3))),
      apply_ms: distribution(work.map((w) => round(w[1], 3))),
    };
    return { ...figures, events: bare.events, viewer_work_per_event: viewerWork };
  } finally {
    await bare.close();
  }
}

/** domcast against the bare pipeline, same run: the targets are p95 ≤ 1.5× and p99 ≤ 2×. */
function versusBare(domcast: ReturnType<typeof latencyFigures>, bare: ReturnType<typeof latencyFigures>) {
  const ratio = (a: number | null, b: number | null): number | null => (a !== null && b ? round(a / b, 2) : null);
  const p95 = ratio(domcast.mutation_observer_ms.p95, bare.mutation_observer_ms.p95);
  const p99 = ratio(domcast.mutation_observer_ms.p99, bare.mutation_observer_ms.p99);
  return {
    p50_ratio: ratio(domcast.mutation_observer_ms.p50, bare.mutation_observer_ms.p50),
    p95_ratio: p95,
    p99_ratio: p99,
    meets_p95_target_le_1_5: p95 !== null && p95 <= 1.5,
    meets_p99_target_le_2: p99 !== null && p99 <= 2,
  };
}

/**
 * Runs in every page of the late-join tab before its own scripts: on each animation frame it notes
 * the replayed clock's value when it changes, with the time (Date.now(), the bench's clock too). The
 * bench reads the notes afterwards, so that nothing of Playwright's (its injected script, compiled
 * in each new page, took ~30 ms of the viewer's main thread in a trace) runs in the page while it
 * is timed.
 */
/** How long the late-join bench leaves a viewer alone before it first reads the probe's notes. */
const LATE_JOIN_QUIET_MS = 600;

const LATE_JOIN_PROBE = `(() => {
  const seen = (window.__lateJoin = []);
  let last = null;
  const check = () => {
    const iframe = document.querySelector('.replayer-wrapper iframe');
    const el = iframe && iframe.contentDocument ? iframe.contentDocument.getElementById('now') : null;
    const value = el ? Number(el.textContent) : NaN;
    if (Number.isFinite(value) && value !== last) { last = value; seen.push([Date.now(), value]); }
    requestAnimationFrame(check);
  };
  requestAnimationFrame(check);
})()`;

/**
 * Late join: from opening a viewer link in an already open tab of a warm browser to the current
 * page on screen (the first animation frame whose replayed clock shows a value written after the
 * link was opened), `tries` times on the same running session.
 */
async function measureLateJoin(stack: Stack, pages: StaticSite, browser: Browser, tries = LATE_JOIN_TRIES) {
  progress(`late join: ${tries} viewer opens on a running clock page`);
  const run = await startRun(stack, {
    workflow: { name: 'bench late join', steps: [{ type: 'navigation', url: `${pages.url}/clock.html` }, { type: 'wait', ms: 120_000 }] },
    visual_enabled: true,
  });
  const session = sessionOf(stack, run.id);
  const page = await browser.newPage();
  await page.addInitScript(LATE_JOIN_PROBE);
  const times: number[] = [];
  /** To the first frame showing the page at all, however old its clock. */
  const firstTimes: number[] = [];
  /** Whether the viewer's page carried the stream's start (routes/viewer.ts), per try. */
  let carried = 0;
  try {
    await waitFor('the clock run to record its page', () => session.log.lastSeq > 2, 30_000, 50);
    // Warm: the viewer's files are in the browser's cache, as for anyone who opened one before.
    await page.goto(run.viewerUrl);
    for (let i = 0; i < tries; i++) {
      await page.goto('about:blank');
      // Each try gets a fresh link, as a person who was sent one would.
      const link = (await (await fetch(`${stack.base}/workflows/${run.id}`)).json()) as { viewer_url: string };
      const opened = Date.now();
      await page.goto(link.viewer_url, { waitUntil: 'commit' });
      const deadline = opened + 10_000;
      let shownAt: number | null = null;
      // Nothing runs in the page before it has most likely drawn (p95 was 240-330 ms here): a
      // page.evaluate is work on the viewer's main thread, and would be inside the timed window.
      await sleep(LATE_JOIN_QUIET_MS);
      while (shownAt === null) {
        const seen = await page.evaluate(() => (window as unknown as { __lateJoin?: [number, number][] }).__lateJoin ?? []);
        shownAt = seen.find(([, value]) => value >= opened)?.[0] ?? null;
        if (shownAt !== null) firstTimes.push(seen[0]![0] - opened);
        if (shownAt === null && Date.now() > deadline) throw new Error('late join: the viewer did not show the current page within 10 s');
        if (shownAt === null) await sleep(100);
      }
      if (await page.evaluate(() => document.getElementById('domcast-start') !== null)) carried++;
      times.push(shownAt - opened);
    }
  } finally {
    await page.close().catch(() => undefined);
    await fetch(`${stack.base}/workflows/${run.id}/cancel`, { method: 'POST' }).catch(() => undefined);
  }
  const ms = distribution(times);
  const first = distribution(firstTimes);
  progress(`late join: p50 ${ms.p50} ms, p95 ${ms.p95} ms over ${ms.samples} tries; the page at all ${first.p50} / ${first.p95} ms (${carried} pages carried the start)`);
  return { tries, ms, first_page_ms: first, pages_with_start: carried, target_p95_ms: LATE_JOIN_TARGET_P95_MS, meets_target: ms.p95 !== null && ms.p95 < LATE_JOIN_TARGET_P95_MS };
}

// ---------------------------------------------------------------------------------------------
// 2. Bandwidth: domcast frames to one viewer vs a CDP JPEG screencast of the same workflow

/** A TCP pass-through on 127.0.0.1 that counts the bytes going each way (TCP payload). */
interface CountingProxy {
  port: number;
  down: number;
  up: number;
  close(): Promise<void>;
}

async function countingProxy(target: URL): Promise<CountingProxy> {
  const sockets = new Set<Socket>();
  const proxy: CountingProxy = { port: 0, down: 0, up: 0, close: async () => undefined };
  const server: TcpServer = createTcpServer((client) => {
    const upstream = tcpConnect(Number(target.port), target.hostname);
    sockets.add(client).add(upstream);
    client.on('data', (chunk: Buffer) => (proxy.up += chunk.length));
    upstream.on('data', (chunk: Buffer) => (proxy.down += chunk.length));
    client.pipe(upstream);
    upstream.pipe(client);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  proxy.port = (server.address() as AddressInfo).port;
  proxy.close = () =>
    new Promise<void>((ok) => {
      for (const s of sockets) s.destroy();
      server.close(() => ok());
    });
  return proxy;
}

function demoBody(stack: Stack) {
  return { name: 'demo', inputs: { site_url: stack.site.url, username: 'ada', password: 'pw' }, visual_enabled: true };
}

function runDurationMs(session: Session): number | null {
  return session.startedAt !== null && session.endedAt !== null ? session.endedAt - session.startedAt : null;
}

async function measureDomcastBytes(stack: Stack) {
  progress('bandwidth: demo workflow with one WebSocket viewer (through a counting TCP proxy)');
  const proxy = await countingProxy(new URL(stack.base));
  try {
    const run = await startRun(stack, demoBody(stack));
    const url = new URL(run.streamUrl);
    const viewer = await WsViewer.open(`ws://127.0.0.1:${proxy.port}${url.pathname}${url.search}`);
    const extensions = viewer.ws.extensions;
    const session = sessionOf(stack, run.id);
    const closed = await Promise.race([viewer.closed, sleep(120_000).then(() => null)]);
    if (!closed) throw new Error('the demo run did not end within 120 s');
    // The proxy may still be relaying the last bytes (close frame); give it a moment.
    await sleep(200);
    const payloadBytes = viewer.raw.reduce((n, text) => n + Buffer.byteLength(text), 0);
    const eventFrames = viewer.frames.filter((f) => f.t === 'events' || f.t === 'reset').length;
    // What a viewer page downloads besides the stream: each captured asset the events point at, once
    // (the redirect and the body, headers included), through the same counting proxy.
    const wsDown = proxy.down;
    const keys = new Set<string>();
    const prefix = `/workflows/visual/${encodeURIComponent(run.id)}/assets/`;
    const pattern = new RegExp(`${prefix.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}([A-Za-z0-9_-]+)`, 'g');
    for (const text of viewer.raw) for (const m of text.matchAll(pattern)) keys.add(m[1]!);
    let assetsOk = 0;
    for (const key of keys) {
      const res = await fetch(`http://127.0.0.1:${proxy.port}${prefix}${key}${url.search}`);
      await res.arrayBuffer();
      if (res.ok) assetsOk++;
    }
    await sleep(100);
    return {
      status: session.status,
      run_ms: runDurationMs(session),
      frames: viewer.raw.length,
      event_frames: eventFrames,
      rrweb_events: viewer.received.length,
      payload_bytes: payloadBytes,
      /** The WebSocket stream's bytes on the wire. */
      stream_wire_bytes: wsDown,
      /** Captured assets the stream points at, fetched once each as a viewer page would (HTTP, headers included). */
      assets: { referenced: keys.size, fetched: assetsOk, wire_bytes: proxy.down - wsDown },
      /** Stream and assets: all a viewer downloads for the run. */
      wire_bytes: proxy.down,
      wire_bytes_up: proxy.up,
      permessage_deflate: extensions.includes('permessage-deflate'),
      ended_with: closed,
    };
  } finally {
    await proxy.close();
  }
}

async function measureScreencastBytes(stack: Stack) {
  progress('bandwidth: the same demo workflow again, recorded as a CDP JPEG screencast (baseline)');
  const run = await startRun(stack, demoBody(stack));
  const session = sessionOf(stack, run.id);
  const page = await waitFor('the run page', () => stack.server.deps.runs.page(run.id), 30_000, 5);
  const cdp = await page.context().newCDPSession(page);
  let frames = 0;
  let jpegBytes = 0;
  let base64Bytes = 0;
  cdp.on('Page.screencastFrame', (frame) => {
    frames++;
    base64Bytes += frame.data.length;
    jpegBytes += Buffer.from(frame.data, 'base64').length;
    cdp.send('Page.screencastFrameAck', { sessionId: frame.sessionId }).catch(() => undefined);
  });
  await cdp.send('Page.startScreencast', { format: 'jpeg', quality: 80, maxWidth: 1280, maxHeight: 720 });
  await waitFor('the baseline run to end', () => session.finished, 120_000, 100);
  await cdp.detach().catch(() => undefined); // usually already gone with the run's context
  return {
    status: session.status,
    run_ms: runDurationMs(session),
    frames,
    jpeg_bytes: jpegBytes,
    base64_bytes: base64Bytes,
    settings: { format: 'jpeg', quality: 80, maxWidth: 1280, maxHeight: 720 },
  };
}

async function measureBandwidth(stack: Stack) {
  const domcast = await measureDomcastBytes(stack);
  const screencast = await measureScreencastBytes(stack);
  const ratio = (a: number, b: number): number | null => (b > 0 ? round(a / b, 1) : null);
  const wireRatio = ratio(screencast.jpeg_bytes, domcast.wire_bytes);
  progress(`bandwidth: domcast ${domcast.wire_bytes} B on the wire (${domcast.payload_bytes} B payload), screencast ${screencast.jpeg_bytes} B JPEG → ${wireRatio}x`);
  return {
    target_ratio: BANDWIDTH_TARGET_RATIO,
    domcast,
    screencast,
    /** How many times fewer bytes domcast sent (JPEG bytes / domcast bytes). */
    ratio_wire: wireRatio,
    ratio_payload: ratio(screencast.jpeg_bytes, domcast.payload_bytes),
    meets_target: wireRatio !== null && wireRatio >= BANDWIDTH_TARGET_RATIO,
  };
}

// ---------------------------------------------------------------------------------------------
// 3. Ingest throughput

/**
 * One viewer per session, opened with the WsViewer helper; its keep-everything bookkeeping is
 * swapped for a counter, because it shares this process (and so the RSS and CPU we report) with the
 * server, and would otherwise hold and re-parse every event of every session. Bytes are payload
 * bytes (after permessage-deflate is undone), not wire bytes.
 */
interface ViewerCounts {
  frames: number;
  bytes: number;
  resets: number;
  resetBytes: number;
}

async function countingViewer(url: string): Promise<{ viewer: WsViewer; counts: ViewerCounts }> {
  const viewer = await WsViewer.open(url);
  const counts: ViewerCounts = { frames: 0, bytes: 0, resets: 0, resetBytes: 0 };
  viewer.ws.removeAllListeners('message');
  viewer.ws.on('message', (data: Buffer) => {
    counts.frames++;
    counts.bytes += data.length;
    if (data.subarray(0, 12).toString('latin1') === '{"t":"reset"') {
      counts.resets++;
      counts.resetBytes += data.length;
    }
  });
  return { viewer, counts };
}

/** What the page sent, batch by batch, as the JSON text the server ingests; plus a checkpoint pair. */
interface Capture {
  batches: string[];
  checkpoint: string | null;
}

const MAX_CAPTURED_BATCHES = 2000;

async function measureIngest(stack: Stack, pages: StaticSite, n: number, capture?: Capture) {
  progress(`ingest: ${n} concurrent churn session(s) in Chromium`);
  const rssBefore = process.memoryUsage().rss;
  const rss = new RssSampler();
  // All pages start churning at the same moment, once they have (most likely) all loaded.
  const churnAt = Date.now() + 500 + 200 * n;
  const runs = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      startRun(stack, {
        workflow: {
          name: `bench churn ${i + 1}`,
          steps: [
            { type: 'navigation', url: `${pages.url}/churn.html?at=${churnAt}`, description: 'open the churn page' },
            { type: 'wait', ms: INGEST_WAIT_MS, description: 'churn' },
          ],
        },
        visual_enabled: true,
      }),
    ),
  );
  const viewers = await Promise.all(runs.map((r) => countingViewer(r.streamUrl)));
  const sessions = runs.map((r) => sessionOf(stack, r.id));

  // Steady state = every session is in its wait step. Note when each got there.
  const entered = new Map<Session, number>();
  const deadline = Date.now() + 60_000;
  while (entered.size < n && Date.now() < deadline) {
    for (const s of sessions) if (!entered.has(s) && s.currentStep === 1) entered.set(s, Date.now());
    if (sessions.some((s) => s.finished && !entered.has(s))) throw new Error('a churn run ended before its wait step');
    await sleep(10);
  }
  if (entered.size < n) throw new Error(`only ${entered.size} of ${n} churn runs reached their wait step within 60 s`);
  const times = [...entered.values()];
  const spreadMs = Math.max(...times) - Math.min(...times);
  // The window starts once every page churns (plus 500 ms) and ends before the first session leaves its wait step.
  await sleep(Math.max(0, churnAt - Date.now()) + 500);
  const firstLeaves = Math.min(...times) + INGEST_WAIT_MS;
  const windowMs = Math.min(INGEST_WINDOW_MS, firstLeaves - Date.now() - 300);
  if (windowMs < 1000) throw new Error(`no steady window left (sessions reached their wait step ${spreadMs} ms apart)`);

  const bytesIngested = (): number => sessions.reduce((sum, s) => sum + s.log.totalBytes, 0);
  const delivered = (): { frames: number; bytes: number } =>
    viewers.reduce((acc, v) => ({ frames: acc.frames + v.counts.frames, bytes: acc.bytes + v.counts.bytes }), { frames: 0, bytes: 0 });

  // Keep what the first session's page sends during the window (for the server-only figure).
  const first = sessions[0];
  const unsubscribe =
    capture && first
      ? first.log.subscribe((batch) => {
          const page = batch.events.filter((e) => !e.startsWith('{"type":5,'));
          if (page.length > 0 && capture.batches.length < MAX_CAPTURED_BATCHES) capture.batches.push(`[${page.join(',')}]`);
        })
      : () => true;
  if (capture && first) {
    // A Meta + FullSnapshot pair of this page, to answer checkpoint requests in the server-only run.
    const slice = first.log.fromCheckpoint();
    const meta = slice.events[0];
    const full = slice.events[1];
    if (meta?.startsWith('{"type":4,') && full?.startsWith('{"type":2,')) capture.checkpoint = `[${meta},${full}]`;
  }

  const conditions = new Conditions();
  const h0 = await visualHealth(stack.base);
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const b0 = bytesIngested();
  const d0 = delivered();
  await sleep(windowMs);
  const h1 = await visualHealth(stack.base);
  const t1 = performance.now();
  const cpu = process.cpuUsage(cpu0);
  const b1 = bytesIngested();
  const d1 = delivered();
  const during = conditions.stop();
  unsubscribe();
  const allInWait = sessions.every((s) => s.status === 'running' && s.currentStep === 1);

  const seconds = (t1 - t0) / 1000;
  const events = h1.total_events_processed - h0.total_events_processed;
  const eventsPerS = round(events / seconds);

  progress(`ingest: ${n} Chromium session(s): ${eventsPerS} events/s over ${round(seconds, 2)} s; cancelling the runs`);
  await Promise.all(runs.map((r) => fetch(`${stack.base}/workflows/${r.id}/cancel`, { method: 'POST' })));
  await waitFor('the churn runs to end', () => sessions.every((s) => s.finished), 60_000, 100);
  await Promise.race([Promise.all(viewers.map((v) => v.viewer.closed)), sleep(10_000)]);
  for (const v of viewers) v.viewer.ws.terminate();
  const rssPeak = rss.stop();
  await sleep(500);
  const rssAfter = process.memoryUsage().rss;

  return {
    sessions: n,
    window_s: round(seconds, 2),
    wait_step_entry_spread_ms: spreadMs,
    all_sessions_in_steady_state_throughout: allInWait,
    events,
    events_per_s: eventsPerS,
    events_per_s_per_session: round(eventsPerS / n),
    batches_per_s: round((h1.batches_processed - h0.batches_processed) / seconds),
    mean_event_bytes: events > 0 ? Math.round((b1 - b0) / events) : null,
    ingested_mb_per_s: round((b1 - b0) / seconds / (1024 * 1024), 2),
    delivered_frames_per_s: round((d1.frames - d0.frames) / seconds),
    delivered_payload_mb_per_s: round((d1.bytes - d0.bytes) / seconds / (1024 * 1024), 2),
    viewer_resets: viewers.reduce((n, v) => n + v.counts.resets, 0),
    server_latency_p95_ms: h1.latency_p95,
    server_average_latency_ms: h1.average_latency,
    server_process_cpu_percent_of_one_core: round(((cpu.user + cpu.system) / 1000 / (t1 - t0)) * 100),
    statuses: [...new Set(sessions.map((s) => s.status))],
    rss_mb: { before: mb(rssBefore), peak: mb(rssPeak), after: mb(rssAfter) },
    conditions: during,
  };
}

const SERVER_ONLY_MS = 3000;

/**
 * The server's own ceiling: the batches one churn page really sent, fed straight into `n` sessions'
 * ingest (as the recorder binding does) as fast as the process allows, with one viewer each, no
 * Chromium. A checkpoint request (log overflow) is answered with the page's Meta + FullSnapshot,
 * as the recorder would. Delivery counts until every viewer got its `end` frame.
 */
async function measureServerIngest(stack: Stack, capture: Capture, n: number) {
  progress(`ingest: server only, ${n} synthetic session(s), ${SERVER_ONLY_MS / 1000} s of replayed churn batches`);
  const { registry, metrics, config } = stack.server.deps;
  const rssBefore = process.memoryUsage().rss;
  const rss = new RssSampler();
  const sessions = Array.from({ length: n }, (_, i) =>
    registry.create({
      workflowName: `bench synthetic ${i + 1}`,
      steps: [{ type: 'wait', description: 'replayed churn batches' }],
      visual: true,
      quality: 'standard',
      // The page budgets (VISUAL_SESSION_MAX_MB at once, a thirty-second of it a second) exist to end
      // a flooding page's run; this loop floods on purpose to find the server's ceiling, so its
      // sessions get 1 GiB (32 MiB/s) instead of 64 MiB (2 MiB/s), else they stop within a second.
      limits: { bufferEvents: config.eventBufferSize, maxSessionChars: 1024 * 1024 * 1024 },
      metrics,
    }),
  );
  const wsBase = stack.base.replace(/^http/, 'ws');
  const wanted = new Set<Session>();
  for (const s of sessions) {
    s.requestSnapshot = () => void wanted.add(s);
    s.setStatus('running');
  }
  const viewers = await Promise.all(sessions.map((s) => countingViewer(`${wsBase}/workflows/visual/${encodeURIComponent(s.id)}`)));

  const conditions = new Conditions();
  const e0 = metrics.totalEventsProcessed;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let i = 0;
  let bytesIn = 0;
  // Large batches are prepared in worker threads: the window ends once every batch sent in it is in
  // the log, and at most 32 a session wait at a time (as a page waits for its binding's answer).
  const inflight: Promise<unknown>[] = [];
  while (performance.now() - t0 < SERVER_ONLY_MS) {
    const batch = capture.batches[i % capture.batches.length] ?? '[]';
    for (const s of sessions) {
      if (wanted.delete(s) && capture.checkpoint) {
        inflight.push(s.ingest(capture.checkpoint));
        bytesIn += capture.checkpoint.length;
      }
      inflight.push(s.ingest(batch));
      bytesIn += batch.length;
    }
    i++;
    if (inflight.length >= 32 * n) await Promise.all(inflight.splice(0));
    // Let sockets write and viewers read now and then, as a live server would.
    else if (i % 2 === 0) await new Promise<void>((resolve) => setImmediate(resolve));
  }
  await Promise.all(inflight.splice(0));
  const tIngested = performance.now();
  const events = metrics.totalEventsProcessed - e0;
  for (const s of sessions) s.setStatus('succeeded');
  const closed = await Promise.race([Promise.all(viewers.map((v) => v.viewer.closed)).then(() => true), sleep(60_000).then(() => false)]);
  const tDelivered = performance.now();
  const cpu = process.cpuUsage(cpu0);
  const during = conditions.stop();
  for (const v of viewers) v.viewer.ws.terminate();
  const rssPeak = rss.stop();
  const payload = viewers.reduce((sum, v) => sum + v.counts.bytes, 0);
  const resets = viewers.reduce((sum, v) => sum + v.counts.resets, 0);
  const resetBytes = viewers.reduce((sum, v) => sum + v.counts.resetBytes, 0);
  const ingestS = (tIngested - t0) / 1000;
  const deliveredS = (tDelivered - t0) / 1000;
  const result = {
    sessions: n,
    ingest_s: round(ingestS, 2),
    events,
    ingested_mb: mb(bytesIn),
    events_per_s_accepted: round(events / ingestS),
    /** From the first batch until every viewer had its `end` frame (ingest + draining the sockets). */
    until_viewers_done_s: closed ? round(deliveredS, 2) : null,
    delivered_payload_mb: mb(payload),
    /** Resets: a viewer whose socket backed up skipped ahead to the latest checkpoint. */
    viewer_resets: resets,
    viewer_reset_mb: mb(resetBytes),
    all_viewers_got_end: closed,
    server_process_cpu_percent_of_one_core: round(((cpu.user + cpu.system) / 1000 / (tDelivered - t0)) * 100),
    rss_mb: { before: mb(rssBefore), peak: mb(rssPeak), after: mb(process.memoryUsage().rss) },
    conditions: during,
  };
  progress(`ingest: server only, ${n} session(s): ${result.events_per_s_accepted} events/s accepted, viewers done after ${result.until_viewers_done_s} s, ${resets} resets`);
  return result;
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
  progress(`starting (BENCH_SECONDS=${BENCH_SECONDS})`);
  // Ten sessions at once for the ingest phase: above the default MAX_CONCURRENT_SESSIONS of 4.
  const stack = await startStack({ MAX_CONCURRENT_SESSIONS: '16' });
  const pages = await serveStatic(PAGES_DIR);
  let browser: Browser | undefined;
  try {
    browser = await launchViewerBrowser();
    if (process.env.BENCH_ONLY === 'control') {
      const control = await measureControl(stack, pages, browser, Math.min(200, BENCH_SECONDS * 10), progress);
      writeResult('control.json', { bench: 'domcast', only: 'control', date: new Date().toISOString(), machine: machineInfo(loadAtStart), control, duration_s: round((Date.now() - startedAt) / 1000) });
      progress('done (control only); written to bench/results/control.json');
      await browser.close();
      browser = undefined;
      return;
    }
    if (process.env.BENCH_ONLY === 'bandwidth') {
      await browser.close();
      browser = undefined;
      const bandwidth = await measureBandwidth(stack);
      writeResult('bandwidth.json', { bench: 'domcast', only: 'bandwidth', date: new Date().toISOString(), machine: machineInfo(loadAtStart), bandwidth, duration_s: round((Date.now() - startedAt) / 1000) });
      progress('done (bandwidth only); written to bench/results/bandwidth.json');
      return;
    }
    const latency = await measureLatency(stack, pages, browser);
    const bare = await measureBareLatency(pages, browser);
    const lateJoin = await measureLateJoin(stack, pages, browser);
    if (process.env.BENCH_ONLY === 'latency') {
      const result = { bench: 'domcast', only: 'latency', date: new Date().toISOString(), machine: machineInfo(loadAtStart), config: { bench_seconds: BENCH_SECONDS }, latency: { ...latency, bare_pipeline: bare, versus_bare_pipeline: versusBare(latency, bare) }, late_join: lateJoin, duration_s: round((Date.now() - startedAt) / 1000) };
      writeResult('latency.json', result);
      progress('done (latency only); written to bench/results/latency.json');
      await browser.close();
      browser = undefined;
      return;
    }
    // The same probe with the recordings store on (the default, as above) and off, in this run.
    const storeSeconds = Math.min(BENCH_SECONDS, 15);
    const storeOn = await measureLatency(stack, pages, browser, storeSeconds);
    const offStack = await startStack({ DOMCAST_RECORDINGS: 'false' });
    const storeOff = await measureLatency(offStack, pages, browser, storeSeconds).finally(() => offStack.close());
    await browser.close();
    browser = undefined;
    const bandwidth = await measureBandwidth(stack);
    // Ingest measures the server with ten pages churning at once. Ten Chromiums starting together
    // on 2 cores (a browser per run) measured Chromium's start-up instead, and timed out: these
    // pages share one browser, as all runs did before BROWSER_ISOLATION.
    const ingestStack = await startStack({ MAX_CONCURRENT_SESSIONS: '16', BROWSER_ISOLATION: 'shared' });
    const capture: Capture = { batches: [], checkpoint: null };
    const one = await measureIngest(ingestStack, pages, 1, capture);
    const ten = await measureIngest(ingestStack, pages, 10).finally(() => ingestStack.close());
    if (capture.batches.length === 0) throw new Error('no churn batches were captured for the server-only run');
    // Last: replayed batches carry old page timestamps, which would skew the server's latency window.
    const serverOne = await measureServerIngest(stack, capture, 1);
    const serverTen = await measureServerIngest(stack, capture, 10);
    progress('store: write throughput and bytes on disk');
    const storeWrites = await measureStoreWrites();
    const diskPerMinute = await measureDiskPerMinute();

    const result = {
      bench: 'domcast',
      date: new Date().toISOString(),
      machine: machineInfo(loadAtStart),
      config: { bench_seconds: BENCH_SECONDS },
      latency: { ...latency, bare_pipeline: bare, versus_bare_pipeline: versusBare(latency, bare) },
      late_join: lateJoin,
      bandwidth,
      ingest: {
        one_session: one,
        ten_sessions: ten,
        /** Total events/s with 10 sessions relative to 1 session (the baseline). */
        scaling_10_vs_1: one.events_per_s > 0 ? round(ten.events_per_s / one.events_per_s, 2) : null,
        per_session_10_vs_1: one.events_per_s > 0 ? round(ten.events_per_s_per_session / one.events_per_s_per_session, 2) : null,
        server_only: {
          captured_batches: capture.batches.length,
          one_session: serverOne,
          ten_sessions: serverTen,
          /** Server-only ceiling relative to what one real Chromium page produced (the baseline). */
          headroom_vs_one_chromium_page: one.events_per_s > 0 ? round(serverTen.events_per_s_accepted / one.events_per_s, 1) : null,
        },
      },
      store: {
        latency_p95_ms_store_on: storeOn.mutation_observer_ms.p95,
        latency_p95_ms_store_off: storeOff.mutation_observer_ms.p95,
        latency_p50_ms_store_on: storeOn.mutation_observer_ms.p50,
        latency_p50_ms_store_off: storeOff.mutation_observer_ms.p50,
        /** p95 with the store on relative to off (the baseline), same run, same probe. */
        latency_p95_ratio_on_vs_off:
          storeOn.mutation_observer_ms.p95 && storeOff.mutation_observer_ms.p95 ? round(storeOn.mutation_observer_ms.p95 / storeOff.mutation_observer_ms.p95, 2) : null,
        window_s: storeSeconds,
        writes: storeWrites,
        demo_on_disk: diskPerMinute,
      },
      duration_s: round((Date.now() - startedAt) / 1000),
    };
    writeResult('latest.json', result);
    progress(`done in ${result.duration_s} s; written to bench/results/latest.json`);
  } finally {
    await browser?.close().catch(() => undefined);
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
