/**
 * The viewers of `npm run bench:load`, in a process of their own (forked by bench/load.ts), so that
 * their CPU and memory are not the server's. Each viewer is a WebSocket client on 127.0.0.1
 * (bench/load-socket.ts) that offers permessage-deflate as a browser does, parses every frame
 * (JSON.parse of the whole text, as the viewer page does), records receipt time − event.timestamp
 * for every live event and checks seq continuity. A message that is byte for byte one another
 * viewer of this process just got is inflated and parsed once for both (SharedDecode in
 * bench/load-socket.ts; BENCH_CLIENT_SHARED_DECODE=0 turns that off): 1,000 browsers would each do
 * that work on their own machine, not on the server's. Slow viewers stop reading right after the
 * handshake (their socket is paused) but answer the heartbeat with unsolicited pongs, so only the
 * hub's backpressure bound, not the heartbeat, limits what the server keeps for them.
 *
 * Commands and replies: bench/load-ipc.ts.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { ServerFrame } from '../src/protocol/index.js';
import { LatencyHistogram, type Command, type GroupReport, type Reply } from './load-ipc.js';
import { clientKind, openSocket, sharedDecodeOn, SharedDecode, type ClientKind, type ViewerSocket } from './load-socket.js';

/** Connections being set up at once: a crowd arriving, without a SYN flood of 1,000. */
const CONNECT_CONCURRENCY = 50;
const SLOW_PONG_MS = 2000;
const HELLO_TIMEOUT_MS = 30_000;
const CLIENT: ClientKind = clientKind();
const shared = sharedDecodeOn() ? new SharedDecode() : null;
/** Frames parsed from a shared message, by the message's Buffer (one object for all its receivers). */
const parsed = new WeakMap<Buffer, ServerFrame>();

function parse(data: Buffer): ServerFrame {
  if (!shared) return JSON.parse(data.toString('utf8')) as ServerFrame;
  let frame = parsed.get(data);
  if (!frame) {
    frame = JSON.parse(data.toString('utf8')) as ServerFrame;
    parsed.set(data, frame);
  }
  return frame;
}

function send(reply: Reply): void {
  process.send?.(reply);
}

let measuring = false;

class Viewer {
  socket: ViewerSocket | null = null;
  wireBytesAtWindowStart = 0;
  gotHello = false;
  endLastSeq: number | null = null;
  closeCode: number | null = null;
  error: string | null = null;
  firstSeq: number | null = null;
  lastSeq: number | null = null;
  resets = 0;
  lost = 0;
  duplicated = 0;
  lateResets = 0;
  skippedByResets = 0;
  resumed = false;
  bytesSinceResume = 0;
  bytesBeforeResetAfterResume: number | null = null;
  closed: Promise<void> = Promise.resolve();
  private helloSeen: () => void = () => undefined;

  constructor(
    readonly group: Group,
    readonly slow: boolean,
  ) {}

  /** Resolves once `hello` arrived (a slow viewer: once the upgrade is done), false when the connection failed. */
  async open(url: string): Promise<boolean> {
    let helloTimer: NodeJS.Timeout | undefined;
    const hello = new Promise<void>((resolve) => {
      this.helloSeen = resolve;
      helloTimer = setTimeout(resolve, HELLO_TIMEOUT_MS);
    });
    let socket: ViewerSocket;
    try {
      // Slow viewers do not offer permessage-deflate: what the server queues for them is then the payload itself.
      socket = await openSocket(CLIENT, url, { deflate: !this.slow, shared, onMessage: (data) => this.onFrame(data) });
    } catch (err) {
      clearTimeout(helloTimer);
      this.error = err instanceof Error ? err.message : String(err);
      return false;
    }
    this.socket = socket;
    let pong: NodeJS.Timeout | undefined;
    if (this.slow) {
      socket.pause();
      pong = setInterval(() => socket.pong(), SLOW_PONG_MS);
    }
    this.closed = socket.closed.then((code) => {
      clearInterval(pong);
      this.closeCode = code;
      this.helloSeen();
    });
    if (this.slow) {
      clearTimeout(helloTimer);
      return true;
    }
    await hello;
    clearTimeout(helloTimer);
    if (!this.gotHello) this.error ??= this.closeCode !== null ? `closed ${this.closeCode} before hello` : `no hello within ${HELLO_TIMEOUT_MS} ms`;
    return this.gotHello;
  }

  resume(): void {
    this.resumed = true;
    this.socket?.resume();
  }

  private onFrame(data: Buffer): void {
    const now = Date.now();
    const frame = parse(data);
    const g = this.group;
    if (this.resumed && this.bytesBeforeResetAfterResume === null) this.bytesSinceResume += data.length;
    if (measuring) {
      g.frames++;
      g.payloadBytes += data.length;
    }
    switch (frame.t) {
      case 'hello':
        this.gotHello = true;
        this.helloSeen();
        break;
      case 'reset': {
        const n = frame.events.length;
        if (this.resets > 0) {
          this.lateResets++;
          if (this.lastSeq !== null && frame.from > this.lastSeq + 1) this.skippedByResets += frame.from - this.lastSeq - 1;
          if (this.resumed && this.bytesBeforeResetAfterResume === null) this.bytesBeforeResetAfterResume = this.bytesSinceResume;
        }
        this.resets++;
        if (n > 0) {
          this.firstSeq ??= frame.from;
          this.lastSeq = frame.from + n - 1;
        }
        if (measuring) g.events += n;
        break;
      }
      case 'events': {
        const events = frame.events;
        for (let i = 0; i < events.length; i++) {
          const seq = frame.from + i;
          if (this.lastSeq === null) {
            this.firstSeq = seq;
            this.lastSeq = seq;
          } else if (seq === this.lastSeq + 1) {
            this.lastSeq = seq;
          } else if (seq <= this.lastSeq) {
            this.duplicated++;
          } else {
            this.lost += seq - this.lastSeq - 1;
            this.lastSeq = seq;
          }
          if (measuring) g.latency.add(now - (events[i]?.timestamp ?? now));
        }
        if (measuring) g.events += events.length;
        break;
      }
      case 'end':
        this.endLastSeq = frame.lastSeq;
        if (this.lastSeq !== null && frame.lastSeq > this.lastSeq) this.lost += frame.lastSeq - this.lastSeq;
        break;
      case 'status':
      case 'ping':
        break;
    }
  }

  get complete(): boolean {
    return this.endLastSeq !== null && (this.lastSeq ?? 0) === this.endLastSeq;
  }
}

class Group {
  readonly viewers: Viewer[] = [];
  frames = 0;
  events = 0;
  payloadBytes = 0;
  wireBytes = 0;
  readonly latency = new LatencyHistogram();

  constructor(
    readonly name: string,
    readonly slow: boolean,
  ) {}

  report(): GroupReport {
    const vs = this.viewers;
    const codes: Record<string, number> = {};
    for (const v of vs) {
      const key = String(v.closeCode ?? 'open');
      codes[key] = (codes[key] ?? 0) + 1;
    }
    const range = (values: (number | null)[]) => {
      const xs = values.filter((x): x is number => x !== null);
      return { min: xs.length ? Math.min(...xs) : null, max: xs.length ? Math.max(...xs) : null };
    };
    const sum = (f: (v: Viewer) => number) => vs.reduce((n, v) => n + f(v), 0);
    const resumed = vs.filter((v) => v.resumed);
    return {
      group: this.name,
      slow: this.slow,
      viewers: vs.length,
      opened: vs.filter((v) => v.socket !== null).length,
      got_hello: vs.filter((v) => v.gotHello).length,
      got_end: vs.filter((v) => v.endLastSeq !== null).length,
      close_codes: codes,
      errors: [...new Set(vs.map((v) => v.error).filter((e): e is string => e !== null))].slice(0, 5),
      window: { frames: this.frames, events: this.events, payload_bytes: this.payloadBytes, wire_bytes: this.wireBytes, latency: this.latency.sparse() },
      seq: {
        lost: sum((v) => v.lost),
        duplicated: sum((v) => v.duplicated),
        late_resets: sum((v) => v.lateResets),
        skipped_by_resets: sum((v) => v.skippedByResets),
        incomplete_viewers: vs.filter((v) => !v.complete).length,
        first_seq: range(vs.map((v) => v.firstSeq)),
        last_seq: range(vs.map((v) => v.lastSeq)),
        end_last_seq: range(vs.map((v) => v.endLastSeq)),
      },
      resumed: this.slow
        ? {
            viewers: resumed.length,
            got_reset_after_resume: resumed.filter((v) => v.bytesBeforeResetAfterResume !== null).length,
            bytes_before_reset: range(resumed.map((v) => v.bytesBeforeResetAfterResume)),
          }
        : null,
    };
  }
}

const groups = new Map<string, Group>();

async function open(cmd: Extract<Command, { cmd: 'open' }>): Promise<void> {
  const group = new Group(cmd.group, cmd.slow);
  groups.set(cmd.group, group);
  const started = performance.now();
  let next = 0;
  let opened = 0;
  const worker = async (): Promise<void> => {
    while (next < cmd.count) {
      next++;
      const viewer = new Viewer(group, cmd.slow);
      group.viewers.push(viewer);
      if (await viewer.open(cmd.url)) opened++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONNECT_CONCURRENCY, cmd.count) }, worker));
  const errors = [...new Set(group.viewers.map((v) => v.error).filter((e): e is string => e !== null))];
  send({ id: cmd.id, type: 'opened', group: cmd.group, opened, failed: cmd.count - opened, ms: Math.round(performance.now() - started), errors: errors.slice(0, 5) });
}

let windowStart: { cpu: NodeJS.CpuUsage; t: number; eld: IntervalHistogram; hits: number; misses: number } | null = null;

function measure(cmd: Extract<Command, { cmd: 'measure' }>): void {
  const rssMb = Math.round(process.memoryUsage().rss / 104857.6) / 10;
  if (cmd.on) {
    for (const g of groups.values()) {
      g.frames = 0;
      g.events = 0;
      g.payloadBytes = 0;
      g.wireBytes = 0;
      for (const v of g.viewers) v.wireBytesAtWindowStart = v.socket?.wireBytesRead() ?? 0;
    }
    const eld = monitorEventLoopDelay({ resolution: 5 });
    eld.enable();
    windowStart = { cpu: process.cpuUsage(), t: performance.now(), eld, hits: shared?.hits ?? 0, misses: shared?.misses ?? 0 };
    measuring = true;
    send({ id: cmd.id, type: 'measured', on: true, cpu_percent_of_one_core: null, event_loop_delay_ms: null, rss_mb: rssMb, shared_decode: null });
    return;
  }
  measuring = false;
  for (const g of groups.values()) for (const v of g.viewers) g.wireBytes += (v.socket?.wireBytesRead() ?? 0) - v.wireBytesAtWindowStart;
  const start = windowStart;
  windowStart = null;
  if (!start) throw new Error('measure off without measure on');
  start.eld.disable();
  const cpu = process.cpuUsage(start.cpu);
  const ms = (ns: number): number => Math.round(ns / 1e5) / 10;
  send({
    id: cmd.id,
    type: 'measured',
    on: false,
    cpu_percent_of_one_core: Math.round(((cpu.user + cpu.system) / 1000 / (performance.now() - start.t)) * 1000) / 10,
    event_loop_delay_ms: { p50: ms(start.eld.percentile(50)), p99: ms(start.eld.percentile(99)), max: ms(start.eld.max) },
    rss_mb: rssMb,
    shared_decode: shared ? { hits: shared.hits - start.hits, misses: shared.misses - start.misses } : null,
  });
}

async function collect(cmd: Extract<Command, { cmd: 'collect' }>): Promise<void> {
  const wanted = cmd.groups.map((name) => groups.get(name)).filter((g): g is Group => g !== undefined);
  const viewers = wanted.flatMap((g) => g.viewers);
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.all(viewers.map((v) => v.closed)), new Promise((resolve) => (timer = setTimeout(resolve, cmd.timeoutMs)))]);
  clearTimeout(timer);
  const reports = wanted.map((g) => g.report());
  for (const v of viewers) v.socket?.terminate();
  for (const g of wanted) groups.delete(g.name);
  send({ id: cmd.id, type: 'collected', groups: reports });
}

process.on('message', (raw) => {
  const cmd = raw as Command;
  const fail = (err: unknown): void => {
    process.stderr.write(`[load-clients] ${cmd.cmd} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  };
  try {
    switch (cmd.cmd) {
      case 'open':
        open(cmd).catch(fail);
        break;
      case 'measure':
        measure(cmd);
        break;
      case 'resume':
        for (const name of cmd.groups) for (const v of groups.get(name)?.viewers ?? []) v.resume();
        send({ id: cmd.id, type: 'resumed' });
        break;
      case 'collect':
        collect(cmd).catch(fail);
        break;
    }
  } catch (err) {
    fail(err);
  }
});
// The parent went away: nothing left to do.
process.on('disconnect', () => process.exit(0));
