/**
 * Cluster mode under load (bench/load.ts, BENCH_SCENARIOS=cluster; docs/BENCHMARKS.md, "Cluster"):
 *
 * - three API nodes (`domcast serve`) and a worker (`domcast worker`), each a process of the built
 *   CLI, on the machine's Redis (a key prefix of this run's own) and a PostgreSQL database made for
 *   the run; one session, its viewers spread evenly over the three nodes. Delivery latency is page
 *   timestamp → viewer receipt, as in every load scenario, and every viewer's seqs are checked.
 * - throughput: a batch of short runs taken by one worker, then by two, timed from the first
 *   execute to the last run's end.
 */
import { Redis } from 'ioredis';
import type { StaticSite } from '../src/cli/static-site.js';
import { ClusterNode, type ClusterSettings } from '../test/helpers/cluster-nodes.js';
import { createTestDatabase } from '../test/helpers/postgres.js';
import { waitFor } from '../test/helpers/stack.js';
import { TICKS_PER_S, treeCpuTicks } from './proc-stat.js';
import { aggregate, round, type Clients } from './viewer-clients.js';

const REDIS_URL = process.env.DOMCAST_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

type Run = { status: string; current_step: number | null; events: { last_seq: number } };

/** CPU of a set of process trees over a window, in % of one core. */
class TreesCpu {
  private readonly t0 = performance.now();
  private readonly before: number;

  constructor(private readonly pids: readonly number[]) {
    this.before = this.ticks();
  }

  private ticks(): number {
    let n = 0;
    for (const pid of this.pids) for (const t of treeCpuTicks(pid).values()) n += t;
    return n;
  }

  stop(): number {
    const wallS = (performance.now() - this.t0) / 1000;
    return round(((this.ticks() - this.before) / TICKS_PER_S / wallS) * 100);
  }
}

export interface ClusterBenchOptions {
  pages: StaticSite;
  clients: Clients;
  seconds: number;
  viewers: number;
  /** Short runs in the throughput batch. */
  batch: number;
  warmupMs: number;
  collectTimeoutMs: number;
  /** Settings for every node (connection limits high enough for the crowd). */
  env: Record<string, string>;
  progress: (message: string) => void;
}

async function withCluster<T>(options: ClusterBenchOptions, work: (settings: ClusterSettings) => Promise<T>): Promise<T> {
  const database = await createTestDatabase('bench_cluster');
  const prefix = `dc-bench-${process.pid}`;
  const settings: ClusterSettings = { redisUrl: REDIS_URL, databaseUrl: database.url, prefix, env: { ...options.env, LOG_LEVEL: 'info' } };
  try {
    return await work(settings);
  } finally {
    await database.drop().catch(() => undefined);
    const redis = new Redis(REDIS_URL);
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  }
}

/** One session on a worker, `options.viewers` viewers spread over three API nodes. */
export async function threeApiNodes(options: ClusterBenchOptions) {
  const { clients, pages, progress } = options;
  return withCluster(options, async (settings) => {
    const nodes: ClusterNode[] = [];
    try {
      nodes.push(await ClusterNode.api(settings, 'api-1'));
      nodes.push(...(await Promise.all([ClusterNode.api(settings, 'api-2'), ClusterNode.api(settings, 'api-3'), ClusterNode.worker(settings, 'worker', { BROWSER_ISOLATION: 'run' })])));
      const [first, , , worker] = nodes as [ClusterNode, ClusterNode, ClusterNode, ClusterNode];
      const api = nodes.slice(0, 3);
      const answer = await first.execute({
        workflow: {
          name: 'bench cluster crowd',
          steps: [
            { type: 'navigation', url: `${pages.url}/feed.html`, description: 'open the feed' },
            { type: 'wait', ms: (options.seconds + 300) * 1000, description: 'hold' },
          ],
        },
        visual_enabled: true,
      });
      if (answer.status !== 202 || !answer.body.visual_stream_url) throw new Error(`execute answered ${answer.status}: ${JSON.stringify(answer.body).slice(0, 300)}`);
      const id = answer.body.session_id;
      await waitFor('the run in its wait step', async () => {
        const r = await first.get<Run>(`/workflows/${id}`);
        if (['failed', 'cancelled', 'interrupted'].includes(r.status)) throw new Error(`the run ended ${r.status}`);
        return r.status === 'running' && r.current_step === 1 && r.events.last_seq > 0;
      }, 120_000, 100);
      progress(`cluster: the run is in its wait step; connecting ${options.viewers} viewers over ${api.length} API nodes`);
      const groups = api.map((_, i) => `cluster/${i}`);
      const opened = await Promise.all(
        api.map((node, i) => clients.open(groups[i]!, node.streamUrl(answer.body.visual_stream_url!), Math.floor(options.viewers / api.length) + (i < options.viewers % api.length ? 1 : 0), false)),
      );
      const connect = { ms: Math.max(...opened.map((o) => o.ms)), failed: opened.reduce((n, o) => n + o.failed, 0), errors: [...new Set(opened.flatMap((o) => o.errors))] };
      progress(`cluster: ${opened.reduce((n, o) => n + o.opened, 0)} viewers connected in ${connect.ms} ms${connect.failed ? `, ${connect.failed} failed: ${connect.errors.join('; ')}` : ''}`);
      await sleep(options.warmupMs);
      const apiCpu = new TreesCpu(api.map((n) => n.pid));
      const workerCpu = new TreesCpu([worker.pid]);
      const t0 = performance.now();
      await clients.measure(true);
      await sleep(options.seconds * 1000);
      const clientWindow = await clients.measure(false);
      const windowS = round((performance.now() - t0) / 1000, 2);
      const cpu = { api_nodes_cpu_percent_of_one_core: apiCpu.stop(), worker_and_chromium_cpu_percent_of_one_core: workerCpu.stop() };
      const health = await first.get<{ cluster: unknown }>('/health/visual');
      await fetch(`${nodes[1]!.url}/workflows/${id}/cancel`, { method: 'POST' });
      const ended = await waitFor('the run to end', async () => {
        const r = await first.get<Run>(`/workflows/${id}`);
        return r.status === 'cancelled' ? r : null;
      }, 30_000, 100);
      const collected = await clients.collect(groups, options.collectTimeoutMs);
      const delivered = aggregate(collected, windowS);
      const perNode = api.map((node, i) => ({ node: node.name, viewers: collected.filter((g) => g.group === groups[i]).reduce((n, g) => n + g.viewers, 0), latency_ms: aggregate(collected.filter((g) => g.group === groups[i]), windowS).latency_ms }));
      const l = delivered.latency_ms;
      progress(`cluster: p50 ${l.p50} / p95 ${l.p95} / p99 ${l.p99} ms over ${l.samples} deliveries; lost ${delivered.integrity.lost}, dup ${delivered.integrity.duplicated}, late resets ${delivered.integrity.late_resets}; API nodes ${cpu.api_nodes_cpu_percent_of_one_core}% CPU, worker+Chromium ${cpu.worker_and_chromium_cpu_percent_of_one_core}%`);
      return {
        api_nodes: api.length,
        workers: 1,
        viewers: options.viewers,
        page: 'feed.html',
        window_s: windowS,
        final_last_seq: ended.events.last_seq,
        connect,
        latency_ms: delivered.latency_ms,
        per_node: perNode,
        frames_per_s: delivered.frames_per_s,
        events_per_s: delivered.events_per_s,
        wire_mb_per_s: delivered.wire_mb_per_s,
        integrity: delivered.integrity,
        cpu,
        clients: clientWindow,
        health_at_window_end: health.cluster,
      };
    } finally {
      await Promise.all(nodes.map((n) => n.stop()));
    }
  });
}

/** A batch of short runs, taken by one worker, then the same batch by two: the time each took. */
export async function workerThroughput(options: ClusterBenchOptions) {
  const { pages, progress } = options;
  return withCluster(options, async (settings) => {
    const nodes: ClusterNode[] = [];
    // One slot per worker, a browser shared by its runs: a run's time is its steps, not Chromium's start.
    const workerEnv = { MAX_CONCURRENT_SESSIONS: '1', BROWSER_ISOLATION: 'shared' };
    // No warm-up: each batch starts one worker's browser (the first worker's, then the second's).
    const batch = async (api: ClusterNode, label: string): Promise<number> => {
      const t0 = performance.now();
      const ids = await Promise.all(
        Array.from({ length: options.batch }, async (_, i) => {
          const a = await api.execute({
            workflow: { name: `bench throughput ${label} ${i + 1}`, steps: [{ type: 'navigation', url: `${pages.url}/benign.html` }, { type: 'wait', ms: 2000 }] },
            visual_enabled: true,
          });
          return a.body.session_id;
        }),
      );
      await waitFor(`the ${label} batch to end`, async () => {
        const states = await Promise.all(ids.map(async (id) => (await api.get<Run>(`/workflows/${id}`)).status));
        const bad = states.find((s) => s === 'failed' || s === 'interrupted' || s === 'cancelled');
        if (bad) throw new Error(`a run of the ${label} batch ended ${bad}`);
        return states.every((s) => s === 'succeeded');
      }, 300_000, 100);
      return round((performance.now() - t0) / 1000, 2);
    };
    try {
      const api = await ClusterNode.api(settings, 'api');
      nodes.push(api);
      nodes.push(await ClusterNode.worker(settings, 'worker-1', workerEnv));
      const one = await batch(api, 'one worker');
      progress(`throughput: ${options.batch} runs on one worker in ${one} s`);
      nodes.push(await ClusterNode.worker(settings, 'worker-2', workerEnv));
      const two = await batch(api, 'two workers');
      progress(`throughput: ${options.batch} runs on two workers in ${two} s (${round(two / one, 2)} of one worker's time)`);
      return { runs: options.batch, run: 'navigation to a quiet page + 2 s wait, visual', slots_per_worker: 1, one_worker_s: one, two_workers_s: two, ratio: round(two / one, 2) };
    } finally {
      await Promise.all(nodes.map((n) => n.stop()));
    }
  });
}
