/**
 * How many runs at once this machine sustains (issue 15: "say how many concurrent runs a 2-core
 * machine sustains, and how the default MAX_CONCURRENT_SESSIONS follows from that").
 *
 *   npm run --silent bench:capacity                       # levels 1,2,3,4,6,8; JSON on stdout
 *   BENCH_CAPACITY_LEVELS=1,4,8 npm run --silent bench:capacity
 *   BENCH_CAPACITY_WAIT_MS=3000 npm run --silent bench:capacity   # the tour with two waits of 3 s (a page to read, a form to think about)
 *
 * For each level N, a server with MAX_CONCURRENT_SESSIONS=N gets 2N runs of the e2e tour (sign in,
 * typed password, todos, a second page; no waits, so it is all browser work: the worst case) at
 * once, each watched by one viewer. Reported per level: runs that did not succeed, the wall time
 * for all of them, runs per minute, each run's duration against the same workflow run alone (level
 * 1, same bench run), the page → viewer latency the server saw, and how busy the machine was.
 * The server is the real one, in this process, with the default browser isolation (a Chromium per
 * run, one spare launched ahead).
 */
import { loadavg } from 'node:os';
import { demoWorkflow, execute, startStack, waitFor, WsViewer } from '../test/helpers/stack.js';
import { envInt } from './env.js';
import { machineInfo, writeResult } from './results.js';
import { machineCpu } from './proc-stat.js';

/** The tour's two waits, ms: 0 (all browser work, the worst case) by default. */
const WAIT_MS = envInt('BENCH_CAPACITY_WAIT_MS', 0, 0, 60_000);

const round = (v: number, digits = 1): number => Math.round(v * 10 ** digits) / 10 ** digits;
const progress = (m: string): void => void process.stderr.write(`[capacity] ${m}\n`);

function levels(): number[] {
  const raw = process.env.BENCH_CAPACITY_LEVELS ?? '1,2,3,4,6,8';
  const list = raw.split(',').map((s) => Number(s.trim()));
  if (list.length === 0 || list.some((n) => !Number.isInteger(n) || n < 1 || n > 20)) {
    throw new Error(`BENCH_CAPACITY_LEVELS must be a comma list of whole numbers from 1 to 20 (got ${JSON.stringify(raw)})`);
  }
  return [...new Set(list)].sort((a, b) => a - b);
}

const pick = (sorted: readonly number[], p: number): number | null =>
  sorted.length === 0 ? null : (sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? null);

interface RunAnswer {
  status: string;
  started_at: string | null;
  ended_at: string | null;
  failure: { step: number; reason: string | null } | null;
  latency_ms: { average: number | null; p95: number | null };
}

async function level(n: number) {
  const stack = await startStack({ MAX_CONCURRENT_SESSIONS: String(n), EXECUTE_RATE_LIMIT: '0' });
  try {
    // One run first, not measured: the spare browser and the caches are warm for everyone after.
    const warm = await execute(stack.base, { workflow: demoWorkflow(stack.site.url, { midWaitMs: WAIT_MS, holdMs: WAIT_MS }), inputs: { user: 'warm' }, visual_enabled: true });
    await waitFor('the warm-up run', async () => ((await (await fetch(`${stack.base}/workflows/${warm.body.session_id}`)).json()) as RunAnswer).ended_at, 120_000, 200);

    const cpu0 = machineCpu();
    const started = Date.now();
    const ids: string[] = [];
    const viewers: WsViewer[] = [];
    for (let i = 0; i < 2 * n; i++) {
      const { body } = await execute(stack.base, { workflow: demoWorkflow(stack.site.url, { midWaitMs: WAIT_MS, holdMs: WAIT_MS }), inputs: { user: `u${i}` }, visual_enabled: true });
      ids.push(body.session_id);
      viewers.push(await WsViewer.open(body.visual_stream_url!));
    }
    const answers = await Promise.all(
      ids.map((id) =>
        waitFor(`run ${id} to end`, async () => {
          const a = (await (await fetch(`${stack.base}/workflows/${id}`)).json()) as RunAnswer;
          return a.ended_at ? a : null;
        }, 600_000, 200),
      ),
    );
    const wallMs = Date.now() - started;
    const cpu1 = machineCpu();
    await Promise.all(viewers.map((v) => v.close().catch(() => undefined)));
    const durations = answers.map((a) => Date.parse(a.ended_at!) - Date.parse(a.started_at!)).sort((a, b) => a - b);
    const p95s = answers.map((a) => a.latency_ms.p95).filter((v): v is number => v !== null).sort((a, b) => a - b);
    const failed = answers.filter((a) => a.status !== 'succeeded');
    return {
      max_concurrent_sessions: n,
      runs: answers.length,
      not_succeeded: failed.length,
      failures: failed.map((a) => ({ status: a.status, step: a.failure?.step ?? null, reason: a.failure?.reason ?? null })),
      wall_s: round(wallMs / 1000),
      runs_per_minute: round((answers.length / wallMs) * 60_000),
      run_duration_ms: { p50: pick(durations, 50), p95: pick(durations, 95), max: durations.at(-1) ?? null },
      viewer_latency_p95_ms: { median_of_runs: pick(p95s, 50), worst_run: p95s.at(-1) ?? null },
      machine_cpu_busy_percent: cpu0 && cpu1 && cpu1.total > cpu0.total ? round(((cpu1.busy - cpu0.busy) / (cpu1.total - cpu0.total)) * 100) : null,
    };
  } finally {
    await stack.close();
  }
}

async function main(): Promise<void> {
  const loadAtStart = loadavg()[0] ?? 0;
  const results = [];
  for (const n of levels()) {
    progress(`MAX_CONCURRENT_SESSIONS=${n}: ${2 * n} runs at once, one viewer each`);
    const r = await level(n);
    progress(`  ${r.not_succeeded} not succeeded, ${r.runs_per_minute} runs/min, run p50 ${r.run_duration_ms.p50} ms, machine ${r.machine_cpu_busy_percent}% busy`);
    results.push(r);
  }
  const solo = results.find((r) => r.max_concurrent_sessions === 1)?.run_duration_ms.p50 ?? null;
  const best = Math.max(...results.map((r) => r.runs_per_minute));
  const scored = results.map((r) => ({
    ...r,
    run_duration_p50_vs_alone: solo && r.run_duration_ms.p50 ? round(r.run_duration_ms.p50 / solo, 2) : null,
    throughput_vs_best: round(r.runs_per_minute / best, 2),
  }));
  // Sustained: every run succeeded, and throughput within 10% of the best level's: past that,
  // more at once only makes each run slower.
  const sustained = scored.filter((r) => r.not_succeeded === 0 && r.throughput_vs_best >= 0.9).map((r) => r.max_concurrent_sessions);
  writeResult(WAIT_MS > 0 ? `capacity-wait-${WAIT_MS}.json` : 'capacity.json', {
    bench: 'domcast capacity',
    date: new Date().toISOString(),
    machine: machineInfo(loadAtStart),
    workflow: `e2e tour (test/helpers/stack.ts demoWorkflow), its two waits ${WAIT_MS} ms, one viewer per run`,
    levels: scored,
    smallest_level_at_best_throughput: sustained[0] ?? null,
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`[capacity] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
