/**
 * The benchmarks' side of the viewer client processes (bench/load-clients.ts): forks them, sends
 * them commands (bench/load-ipc.ts) and merges their answers; and sums their group reports into
 * latency, throughput and seq-integrity figures. Used by bench:load and bench:soak.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LatencyHistogram, type Command, type CollectedReply, type GroupReport, type MeasuredReply, type OpenedReply, type Reply, type ResumedReply } from './load-ipc.js';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));

export const round = (v: number, digits = 1): number => Math.round(v * 10 ** digits) / 10 ** digits;
export const mb = (bytes: number): number => round(bytes / (1024 * 1024));


type Body<C> = C extends Command ? Omit<C, 'id'> : never;

/** One forked client process and the replies it owes. */
class ClientProcess {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  readonly child: ChildProcess;

  constructor() {
    this.child = fork(join(BENCH_DIR, 'load-clients.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
    this.child.stdout?.pipe(process.stderr);
    this.child.on('message', (raw) => {
      const reply = raw as Reply;
      const waiter = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      waiter?.resolve(reply);
    });
    this.child.on('exit', (code, signal) => {
      for (const w of this.pending.values()) w.reject(new Error(`a client process exited (${code ?? signal})`));
      this.pending.clear();
    });
    // Without a listener a failed send would throw from the event emitter; the pending calls time out or see the exit.
    this.child.on('error', (err) => process.stderr.write(`[viewer-clients] client process ${this.child.pid}: ${err.message}\n`));
  }

  call<R extends Reply>(body: Body<Command>, timeoutMs: number): Promise<R> {
    const id = this.nextId++;
    return new Promise<R>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`a client process did not answer ${body.cmd} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r as R);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      // A process that is gone cannot answer (and send() would raise an 'error' event on it).
      if (!this.child.connected) {
        const waiter = this.pending.get(id);
        this.pending.delete(id);
        waiter?.reject(new Error(`a client process is gone (exit ${this.child.exitCode ?? this.child.signalCode})`));
        return;
      }
      this.child.send({ ...body, id });
    });
  }

  /** The process exits when its channel closes; a kill if it has not after 5 s. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    if (this.child.connected) this.child.disconnect();
    const timer = setTimeout(() => this.child.kill(), 5000);
    await exited;
    clearTimeout(timer);
  }
}

/**
 * The viewers, spread over several processes (each group's viewers split evenly), so that
 * no single client thread is what limits delivery. Every command goes to each process; the answers
 * are merged.
 */
export class Clients {
  private constructor(private readonly procs: ClientProcess[]) {}

  static start(n: number): Clients {
    return new Clients(Array.from({ length: n }, () => new ClientProcess()));
  }

  /** Whether every client process can still take commands. */
  get alive(): boolean {
    return this.procs.every((p) => p.child.connected);
  }

  get pids(): number[] {
    return this.procs.map((p) => p.child.pid).filter((pid): pid is number => pid !== undefined);
  }

  async open(group: string, url: string, count: number, slow: boolean): Promise<Omit<OpenedReply, 'id' | 'type'>> {
    const n = this.procs.length;
    const parts = await Promise.all(
      this.procs.map((p, i) => {
        const share = Math.floor(count / n) + (i < count % n ? 1 : 0);
        return p.call<OpenedReply>({ cmd: 'open', group, url, count: share, slow }, 180_000);
      }),
    );
    return {
      group,
      opened: parts.reduce((a, r) => a + r.opened, 0),
      failed: parts.reduce((a, r) => a + r.failed, 0),
      ms: Math.max(...parts.map((r) => r.ms)),
      errors: [...new Set(parts.flatMap((r) => r.errors))],
    };
  }

  async measure(on: boolean) {
    const parts = await Promise.all(this.procs.map((p) => p.call<MeasuredReply>({ cmd: 'measure', on }, 30_000)));
    const cpus = parts.map((r) => r.cpu_percent_of_one_core ?? 0);
    return {
      /** All client processes together, in % of one core. */
      cpu_percent_of_one_core: round(cpus.reduce((a, b) => a + b, 0)),
      /** The busiest client process: near 100 means the client side, not the server, set the pace. */
      busiest_process_cpu_percent: Math.max(...cpus),
      event_loop_delay_p99_ms_worst: Math.max(...parts.map((r) => r.event_loop_delay_ms?.p99 ?? 0)),
      rss_mb: round(parts.reduce((a, r) => a + r.rss_mb, 0)),
      processes: parts.length,
      /** Share of the window's messages a client process decoded once for several viewers (null: off, or no window yet). */
      shared_decode_hit_ratio: (() => {
        const counts = parts.map((r) => r.shared_decode).filter((x): x is { hits: number; misses: number } => x !== null);
        const hits = counts.reduce((a, c) => a + c.hits, 0);
        const all = hits + counts.reduce((a, c) => a + c.misses, 0);
        return all > 0 ? round(hits / all, 3) : null;
      })(),
    };
  }

  async resume(groups: string[]): Promise<void> {
    await Promise.all(this.procs.map((p) => p.call<ResumedReply>({ cmd: 'resume', groups }, 30_000)));
  }

  async collect(groups: string[], timeoutMs: number): Promise<GroupReport[]> {
    const parts = await Promise.all(this.procs.map((p) => p.call<CollectedReply>({ cmd: 'collect', groups, timeoutMs }, timeoutMs + 30_000)));
    return parts.flatMap((r) => r.groups);
  }

  async stop(): Promise<void> {
    await Promise.all(this.procs.map((p) => p.stop()));
  }
}


/** Sums of the clients' group reports, with the latency histograms merged. */
export function aggregate(groups: readonly GroupReport[], windowS: number) {
  const latency = new LatencyHistogram();
  for (const g of groups) latency.merge(g.window.latency);
  const sum = (f: (g: GroupReport) => number) => groups.reduce((n, g) => n + f(g), 0);
  const viewers = sum((g) => g.viewers);
  const frames = sum((g) => g.window.frames);
  const events = sum((g) => g.window.events);
  return {
    viewers,
    latency_ms: latency.summary(),
    frames_per_s: round(frames / windowS),
    events_per_s: round(events / windowS),
    events_per_s_per_viewer: viewers > 0 ? round(events / windowS / viewers) : null,
    payload_mb_per_s: round(sum((g) => g.window.payload_bytes) / windowS / (1024 * 1024), 2),
    wire_mb_per_s: round(sum((g) => g.window.wire_bytes) / windowS / (1024 * 1024), 2),
    integrity: {
      lost: sum((g) => g.seq.lost),
      duplicated: sum((g) => g.seq.duplicated),
      late_resets: sum((g) => g.seq.late_resets),
      skipped_by_resets: sum((g) => g.seq.skipped_by_resets),
      incomplete_viewers: sum((g) => g.seq.incomplete_viewers),
      viewers_with_hello: sum((g) => g.got_hello),
      viewers_with_end: sum((g) => g.got_end),
      close_codes: groups.reduce<Record<string, number>>((acc, g) => {
        for (const [code, n] of Object.entries(g.close_codes)) acc[code] = (acc[code] ?? 0) + n;
        return acc;
      }, {}),
      errors: [...new Set(groups.flatMap((g) => g.errors))].slice(0, 5),
    },
  };
}
