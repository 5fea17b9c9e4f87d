/**
 * bench:soak's server: the real `domcast serve` (dist/cli.js) in a child process of its own, so that
 * its RSS and event loop are its own and its death does not take the bench with it. It runs in its
 * own process group (its Chromium included), so the bench can end everything it started at once.
 * Also: its API with the key, its VmRSS every 250 ms, and whether it still answers GET /health.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../src/common/index.js';
import type { SessionStatus } from '../src/protocol/index.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const errorText = (err: unknown): string => (err instanceof Error ? (err.cause instanceof Error ? `${err.message}: ${err.cause.message}` : err.message) : String(err));

async function freePort(): Promise<number> {
  const probe = createTcpServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/** The process's resident set from /proc/<pid>/status, in bytes; null once it is gone. */
export function vmRssBytes(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

export interface Exit {
  code: number | null;
  signal: string | null;
  /** ms since the server started. */
  at_s: number;
}

export interface SessionAnswer {
  session_id: string;
  status: SessionStatus;
  error: string | null;
  current_step: number | null;
  duration_ms: number | null;
  events?: { total: number; retained: number; last_seq: number; bytes: number };
  refused_requests?: number;
  /** Page timestamp → the server's hand-off to viewers, for this run alone. */
  latency_ms?: { average: number | null; p95: number | null };
}

/** What the server wrote: counts of warning and error lines by message, the last few errors, and the tail of stderr (a crash's stack). */
class OutputLog {
  readonly byMessage = new Map<string, number>();
  readonly errors: string[] = [];
  private stderr = '';
  private partial = '';

  stdout(chunk: Buffer): void {
    const lines = (this.partial + chunk.toString('utf8')).split('\n');
    this.partial = lines.pop() ?? '';
    if (this.partial.length > 1_000_000) this.partial = '';
    for (const line of lines) {
      let entry: { level?: number; msg?: string; err?: { message?: string } };
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        this.count(`(not JSON) ${line.slice(0, 80)}`);
        continue;
      }
      const msg = `${(entry.level ?? 0) >= 50 ? 'error' : 'warn'}: ${entry.msg ?? '(no msg)'}`;
      this.count(msg);
      if ((entry.level ?? 0) >= 50) {
        this.errors.push(`${entry.msg ?? ''}${entry.err?.message ? `: ${entry.err.message}` : ''}`.slice(0, 500));
        if (this.errors.length > 5) this.errors.shift();
      }
    }
  }

  stderrChunk(chunk: Buffer): void {
    this.stderr = (this.stderr + chunk.toString('utf8')).slice(-4000);
  }

  private count(key: string): void {
    if (this.byMessage.size < 100 || this.byMessage.has(key)) this.byMessage.set(key, (this.byMessage.get(key) ?? 0) + 1);
  }

  report() {
    return { lines_by_message: Object.fromEntries(this.byMessage), last_errors: this.errors, stderr_tail: this.stderr.trim().split('\n').filter((l) => l !== '').slice(-25) };
  }
}

export class ServerChild {
  readonly output = new OutputLog();
  exit: Exit | null = null;
  /** Resolves when the process exits, for whatever reason. */
  readonly exited: Promise<Exit>;
  rssMaxBytes = 0;
  /** [s since start, MB], one sample a second. */
  readonly rssSeries: [number, number][] = [];
  private readonly t0 = performance.now();
  private readonly rssTimer: NodeJS.Timeout;
  private rssTicks = 0;

  private constructor(
    readonly child: ChildProcess,
    readonly base: string,
    readonly apiKey: string,
    private readonly dataDir: string,
  ) {
    child.stdout?.on('data', (c: Buffer) => this.output.stdout(c));
    child.stderr?.on('data', (c: Buffer) => this.output.stderrChunk(c));
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exit = { code, signal, at_s: this.seconds() };
        resolve(this.exit);
      });
    });
    this.rssTimer = setInterval(() => this.sampleRss(), 250);
  }

  /** Starts `dist/cli.js serve` on a free port of 127.0.0.1 with `env` and a random API key on top of this process's environment, and waits (≤ 60 s) until it answers GET /health. */
  static async start(env: Record<string, string>): Promise<ServerChild> {
    const port = await freePort();
    const apiKey = randomBytes(24).toString('hex');
    const dataDir = mkdtempSync(join(tmpdir(), 'domcast-soak-'));
    // BENCH_SOAK_SERVER_NODE_ARGS: Node flags for the server alone (--cpu-prof --cpu-prof-dir=…, which NODE_OPTIONS refuses).
    const nodeArgs = (process.env.BENCH_SOAK_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
    const child = spawn(process.execPath, [...nodeArgs, join(projectRoot, 'dist', 'cli.js'), 'serve'], {
      cwd: projectRoot,
      env: { ...process.env, ...env, DOMCAST_API_KEY: apiKey, PORT: String(port), HOST: '127.0.0.1', DOMCAST_DATA_DIR: dataDir },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group: Chromium and its renderers end with it (stop()).
      detached: true,
    });
    const server = new ServerChild(child, `http://127.0.0.1:${port}`, apiKey, dataDir);
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      if (server.exit) throw new Error(`the server exited at start (${server.exit.code ?? server.exit.signal}): ${server.output.report().stderr_tail.join(' | ')}`);
      if (await server.healthy(1000)) return server;
      await sleep(200);
    }
    await server.stop();
    throw new Error('the server did not answer GET /health within 60 s');
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get up(): boolean {
    return this.exit === null;
  }

  seconds(): number {
    return Math.round((performance.now() - this.t0) / 100) / 10;
  }

  private sampleRss(): void {
    if (this.exit) return;
    const rss = vmRssBytes(this.pid);
    if (rss === null) return;
    this.rssMaxBytes = Math.max(this.rssMaxBytes, rss);
    if (this.rssTicks++ % 4 === 0) this.rssSeries.push([this.seconds(), Math.round(rss / 104857.6) / 10]);
  }

  /** GET /health answered 200 within `timeoutMs`. */
  async healthy(timeoutMs: number): Promise<boolean> {
    try {
      const res = await fetch(`${this.base}/health`, { signal: AbortSignal.timeout(timeoutMs) });
      await res.arrayBuffer();
      return res.ok;
    } catch {
      return false;
    }
  }

  /** An API call with the key; the parsed JSON answer, or an error naming the call. */
  async api<T>(method: 'GET' | 'POST', path: string, body?: unknown, timeoutMs = 10_000): Promise<{ status: number; body: T }> {
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, {
        method,
        headers: { authorization: `Bearer ${this.apiKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      throw new Error(`${method} ${path}: ${errorText(err)}`, { cause: err });
    }
    const text = await res.text();
    try {
      return { status: res.status, body: JSON.parse(text) as T };
    } catch {
      throw new Error(`${method} ${path} answered ${res.status} with something that is not JSON: ${text.slice(0, 200)}`);
    }
  }

  session(id: string): Promise<SessionAnswer> {
    return this.api<SessionAnswer>('GET', `/workflows/${encodeURIComponent(id)}`).then((r) => r.body);
  }

  async cancel(id: string): Promise<void> {
    await this.api('POST', `/workflows/${encodeURIComponent(id)}/cancel`).catch(() => undefined);
  }

  /**
   * SIGTERM (the server drains and exits), then after `graceMs` SIGKILL to the whole process group;
   * also when the server itself already exited, for a Chromium it may have left behind.
   */
  async stop(graceMs = 15_000): Promise<void> {
    clearInterval(this.rssTimer);
    if (!this.exit) {
      this.child.kill('SIGTERM');
      await Promise.race([this.exited, sleep(graceMs)]);
    }
    try {
      process.kill(-this.pid, 'SIGKILL');
    } catch {
      // The group is already empty.
    }
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** Ends the process group now, without waiting (the watchdog, a signal to the bench). */
  killNow(): void {
    try {
      process.kill(-this.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}
