/**
 * Runs in a worker thread (bundled to dist/cdp-relay-worker.js, started by src/browser/cdp-relay.ts):
 * starts one Chromium with its DevTools protocol on a pipe, and relays that pipe to one WebSocket
 * client, Playwright's connectOverCDP, on the server's event loop. Every message Chromium sends
 * crosses this thread first, so what a page makes Chromium send (binding calls, console messages,
 * exceptions, WebSocket frames) is sized here: one that no consumer would take is dropped before
 * the server's loop ever parses it, whatever its size.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { parentPort, workerData } from 'node:worker_threads';
import { BROWSER_NICE } from './priority.js';
import { WebSocketServer, type WebSocket } from 'ws';
import { TokenBucket } from '../session/budget.js';

export interface RelayLimits {
  /** A page's binding call whose argument is longer than this (in characters) is dropped (VISUAL_MAX_EVENT_MB). */
  maxBindingChars: number;
  /** Any other page-originated message (console, exception, log entry, WebSocket frame) longer than this, in bytes. */
  maxOtherBytes: number;
  /** Those other messages, per page: bytes at once, and per second after that. */
  otherBudgetBytes: number;
  otherRefillBytesPerSecond: number;
}

export interface RelayWorkerData {
  executablePath: string;
  args: string[];
  limits: RelayLimits;
}

/** What the relay tells the server about. */
export type RelayReport =
  | { type: 'ready'; wsEndpoint: string; pid: number }
  | { type: 'dropped'; method: string; binding?: string; bytes: number; chars: number; reason: 'oversize' | 'budget'; count: number }
  | { type: 'exit'; code: number | null; signal: string | null; stderr: string };

/** Events whose content a page decides, by method name as it starts Chromium's messages. */
const PAGE_METHODS = [
  'Runtime.bindingCalled',
  'Runtime.consoleAPICalled',
  'Runtime.exceptionThrown',
  'Log.entryAdded',
  'Network.webSocketFrameSent',
  'Network.webSocketFrameReceived',
  'Network.eventSourceMessageReceived',
  // Dropped only when oversized: a page that opens a 64 MB alert waits on it until its step times out.
  'Page.javascriptDialogOpening',
];
const PREFIXES = PAGE_METHODS.map((m) => Buffer.from(`{"method":"${m}"`));
const SESSION_KEY = Buffer.from('"sessionId":"');

/** Which page-originated method a message is, from its first bytes (Chromium writes `method` first); null for the rest. */
export function pageMethod(message: Buffer): string | null {
  for (let i = 0; i < PREFIXES.length; i++) {
    const p = PREFIXES[i]!;
    if (message.length > p.length && message.compare(p, 0, p.length, 0, p.length) === 0) return PAGE_METHODS[i]!;
  }
  return null;
}

/** The session a message belongs to (Chromium writes `sessionId` last); '' for the browser's own. */
export function sessionOf(message: Buffer): string {
  const from = Math.max(0, message.length - 96);
  const at = message.lastIndexOf(SESSION_KEY, message.length - 1);
  if (at < from) return '';
  const start = at + SESSION_KEY.length;
  const end = message.indexOf(0x22, start);
  return end > start ? message.toString('latin1', start, end) : '';
}

const PAYLOAD_KEY = '"payload":"';
const ARGS_OPEN = '"serializedArgs":["';
const ESCAPES: Record<number, number> = { 0x22: 0x22, 0x5c: 0x5c, 0x2f: 0x2f, 0x62: 8, 0x66: 12, 0x6e: 10, 0x72: 13, 0x74: 9 };
const HEX: Record<number, number> = {};
for (let i = 0; i < 16; i++) {
  HEX['0123456789abcdef'.charCodeAt(i)] = i;
  HEX['0123456789ABCDEF'.charCodeAt(i)] = i;
}

/**
 * Measures a binding call's argument as its bytes arrive, without keeping them: the argument is
 * escaped twice (a JSON string in Playwright's `{name, seq, serializedArgs}`, itself the JSON string
 * `payload` of Chromium's message), and both levels are decoded on the fly, one character at a time.
 * `chars` is the argument's length in UTF-16 units (what the server counts); a call of another shape
 * counts its payload's characters.
 */
export class BindingMeter {
  /** The message's first bytes, until the payload starts. */
  private prefix = '';
  private inPayload = false;
  private payloadDone = false;
  /** Level 1 (Chromium's string): 0 plain, 1 after a backslash, 2–5 reading \uXXXX. */
  private esc1 = 0;
  private hex1 = 0;
  /** Level 2 (Playwright's JSON), fed one UTF-16 unit at a time. */
  private head = '';
  private inArg = false;
  private argDone = false;
  private esc2 = false;
  private hexLeft2 = 0;
  private argChars = 0;
  private payloadChars = 0;

  push(bytes: Buffer): void {
    let i = 0;
    if (!this.inPayload) {
      if (this.payloadDone) return;
      const seen = this.prefix + bytes.toString('latin1', 0, Math.min(bytes.length, 512));
      const at = seen.indexOf(PAYLOAD_KEY);
      if (at === -1) {
        this.prefix = seen.slice(-512);
        return;
      }
      i = at + PAYLOAD_KEY.length - this.prefix.length;
      this.prefix = seen.slice(0, at);
      this.inPayload = true;
    }
    for (; i < bytes.length && !this.payloadDone; i++) this.byte(bytes[i]!);
  }

  private byte(b: number): void {
    if (this.esc1 === 1) {
      if (b === 0x75) {
        this.esc1 = 2;
        this.hex1 = 0;
      } else {
        this.esc1 = 0;
        this.unit(ESCAPES[b] ?? b);
      }
    } else if (this.esc1 >= 2) {
      this.hex1 = this.hex1 * 16 + (HEX[b] ?? 0);
      if (++this.esc1 === 6) {
        this.esc1 = 0;
        this.unit(this.hex1);
      }
    } else if (b === 0x5c) this.esc1 = 1;
    else if (b === 0x22) {
      this.payloadDone = true;
      this.inPayload = false;
    } else if (b < 0x80) this.unit(b);
    else if (b >= 0xf0) {
      this.unit(0xd800);
      this.unit(0xdc00);
    } else if (b >= 0xc0) this.unit(0x80);
    // continuation bytes belong to their lead byte
  }

  private unit(u: number): void {
    this.payloadChars++;
    if (this.argDone) return;
    if (!this.inArg) {
      if (this.head.length < 1024) {
        this.head += String.fromCharCode(u);
        if (this.head.endsWith(ARGS_OPEN)) this.inArg = true;
      }
      return;
    }
    if (this.hexLeft2 > 0) this.hexLeft2--;
    else if (this.esc2) {
      this.esc2 = false;
      this.argChars++;
      if (u === 0x75) this.hexLeft2 = 4;
    } else if (u === 0x5c) this.esc2 = true;
    else if (u === 0x22) this.argDone = true;
    else this.argChars++;
  }

  /** Characters so far: the argument's, or the payload's for a call not of Playwright's shape. */
  get chars(): number {
    return this.inArg ? this.argChars : this.payloadChars;
  }

  /** Playwright's binding name inside the payload, else the call's own (from the message's start). */
  get name(): string {
    const inner = /^\{"name":"([^"\\]{0,200})"/.exec(this.head)?.[1];
    return inner ?? /"name":"([^"\\]{0,200})"/.exec(this.prefix)?.[1] ?? '';
  }
}

/** A whole binding call measured at once (tests; the relay measures as bytes arrive). */
export function bindingArgument(message: Buffer): { name: string; chars: number } {
  const meter = new BindingMeter();
  meter.push(message);
  return { name: meter.name, chars: meter.chars };
}

const MAX_ESCAPE = 7;

/**
 * Decides, message by message, what reaches the server. Binding calls are left to the server's own
 * budgets (src/session/ingest.ts) once they are of a size it would read; the rest is bounded here.
 */
export class RelayFilter {
  private readonly buckets = new Map<string, TokenBucket>();
  /** Drops not yet reported, by method and reason: reported at most every REPORT_MS. */
  private readonly unreported = new Map<string, Extract<RelayReport, { type: 'dropped' }>>();

  constructor(private readonly limits: RelayLimits) {}

  /** True to forward `message` (whole; `meter` when its binding call was measured as it arrived). */
  pass(message: Buffer, meter?: BindingMeter): boolean {
    const method = pageMethod(message);
    if (method === null) return true;
    if (method === 'Runtime.bindingCalled') {
      if (message.length <= this.limits.maxBindingChars) return true;
      if (message.length > this.bindingCap) {
        this.dropped(method, message.length);
        return false;
      }
      const measured = meter ?? new BindingMeter();
      if (!meter) measured.push(message);
      if (measured.chars <= this.limits.maxBindingChars) return true;
      this.dropped(method, message.length, measured);
      return false;
    }
    if (message.length > this.limits.maxOtherBytes) {
      this.dropped(method, message.length);
      return false;
    }
    const session = sessionOf(message);
    let bucket = this.buckets.get(session);
    if (!bucket) this.buckets.set(session, (bucket = new TokenBucket(this.limits.otherBudgetBytes, this.limits.otherRefillBytesPerSecond)));
    if (bucket.take(message.length)) return true;
    this.drop(method, message.length, 'budget');
    return false;
  }

  /**
   * Escaped twice, one character of a binding's argument takes at most 7 bytes (a control
   * character, \\u0001): a call longer than this is over its bound whatever it holds.
   */
  get bindingCap(): number {
    return MAX_ESCAPE * this.limits.maxBindingChars + 65536;
  }

  /** The most of a page-originated message of `method` worth keeping while it arrives. */
  capOf(method: string): number {
    return method === 'Runtime.bindingCalled' ? this.bindingCap : this.limits.maxOtherBytes;
  }

  /** True once a binding call measured so far is over its bound. */
  overBound(meter: BindingMeter): boolean {
    return meter.chars > this.limits.maxBindingChars;
  }

  /** An oversized message, dropped (`meter`: how much of a binding call's argument was measured). */
  dropped(method: string, bytes: number, meter?: BindingMeter): void {
    this.drop(method, bytes, 'oversize', meter?.name ?? '', meter ? meter.chars : bytes);
  }

  private drop(method: string, bytes: number, reason: 'oversize' | 'budget', binding?: string, chars = bytes): void {
    const key = `${method}\0${reason}\0${binding ?? ''}`;
    const seen = this.unreported.get(key);
    if (seen) {
      seen.count++;
      seen.bytes += bytes;
      seen.chars += chars;
    } else this.unreported.set(key, { type: 'dropped', method, ...(binding ? { binding } : {}), bytes, chars, reason, count: 1 });
  }

  /** What was dropped since the last call. */
  take(): Extract<RelayReport, { type: 'dropped' }>[] {
    const out = [...this.unreported.values()];
    this.unreported.clear();
    return out;
  }
}

/**
 * Splits Chromium's pipe into messages (each ends with a NUL byte) and hands on those the filter
 * passes. A page-originated message is classified by its first bytes; once it is over its bound its
 * bytes are no longer kept (a binding call's argument is measured on the way), so what a page sends
 * never sits whole in memory past its bound.
 */
export class RelayReader {
  private parts: Buffer[] = [];
  private size = 0;
  private method: string | null | undefined;
  private meter: BindingMeter | null = null;
  private discarding = false;

  constructor(
    private readonly filter: RelayFilter,
    private readonly forward: (message: Buffer, meter?: BindingMeter) => void,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    for (let zero = chunk.indexOf(0); zero !== -1; zero = chunk.indexOf(0, start)) {
      this.segment(chunk.subarray(start, zero), true);
      start = zero + 1;
    }
    if (start < chunk.length) this.segment(chunk.subarray(start), false);
  }

  private segment(seg: Buffer, last: boolean): void {
    const { filter } = this;
    this.size += seg.length;
    if (!this.discarding) {
      this.parts.push(seg);
      if (this.method === undefined && (this.size >= 64 || last)) {
        this.method = pageMethod(this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts));
        if (this.method === 'Runtime.bindingCalled') {
          this.meter = new BindingMeter();
          for (const p of this.parts) this.meter.push(p);
        }
      } else this.meter?.push(seg);
      if (this.method && (this.size > filter.capOf(this.method) || (this.meter !== null && filter.overBound(this.meter)))) {
        this.discarding = true;
        this.parts = [];
      }
    } else if (this.meter !== null && this.size <= filter.bindingCap) this.meter.push(seg);
    if (!last) return;
    if (this.discarding) filter.dropped(this.method!, this.size, this.meter !== null && this.size <= filter.bindingCap ? this.meter : undefined);
    else this.forward(this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts), this.meter ?? undefined);
    this.parts = [];
    this.size = 0;
    this.method = undefined;
    this.meter = null;
    this.discarding = false;
  }
}

const REPORT_MS = 250;
const HIGH_WATER = 32 * 1024 * 1024;
const LOW_WATER = 4 * 1024 * 1024;

function main(data: RelayWorkerData): void {
  const port = parentPort!;
  const report = (r: RelayReport): void => port.postMessage(r);
  const filter = new RelayFilter(data.limits);
  const profile = mkdtempSync(join(tmpdir(), 'domcast-chromium-'));
  const child = spawn(data.executablePath, [...data.args, `--user-data-dir=${profile}`, '--remote-debugging-pipe', '--no-startup-window'], {
    stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'],
    // Its own process group: the whole tree (renderers, GPU, zygote) goes with it.
    detached: true,
  });
  // Below the server: on a saturated machine the browsers' pages slow down (navigation deadlines
  // stretch for it, runs/manager.ts) while viewers, the API and the event log keep their CPU.
  // Chromium sets its processes' nice values itself (as root, even below 0), so the priority goes
  // on its scheduling group instead: detached, the browser leads a session of its own, which Linux
  // (sched_autogroup) schedules as one group against the server's. Where there is no autogroup, the
  // browser keeps the server's priority.
  if (child.pid !== undefined) {
    try {
      writeFileSync(`/proc/${child.pid}/autogroup`, String(BROWSER_NICE));
    } catch {
      // No autogroup here (another kernel, another OS): nothing to lower.
    }
  }
  const toBrowser = child.stdio[3] as Writable;
  const fromBrowser = child.stdio[4] as Readable;
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-4000);
  });
  toBrowser.on('error', () => undefined);
  fromBrowser.on('error', () => undefined);

  const path = `/devtools/browser/${randomUUID()}`;
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path, maxPayload: 256 * 1024 * 1024, perMessageDeflate: false });
  let client: WebSocket | null = null;
  let ended = false;
  const end = (): void => {
    if (ended) return;
    ended = true;
    clearInterval(reporter);
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    client?.terminate();
    wss.close();
  };
  wss.on('connection', (ws) => {
    // One client, Playwright's: the path is a secret only it was given, and a second is refused.
    if (client !== null || ended) {
      ws.terminate();
      return;
    }
    client = ws;
    ws.on('message', (msg: Buffer, isBinary) => {
      if (isBinary) return;
      toBrowser.write(msg);
      toBrowser.write('\0');
    });
    ws.on('close', end);
    ws.on('error', end);
    for (const m of early.splice(0)) forward(m);
  });
  wss.on('listening', () => {
    const address = wss.address();
    const portNumber = typeof address === 'object' && address ? address.port : 0;
    report({ type: 'ready', wsEndpoint: `ws://127.0.0.1:${portNumber}${path}`, pid: child.pid ?? 0 });
  });

  const early: Buffer[] = [];
  // Chromium's pipe waits while the server's loop is behind: the relay holds at most HIGH_WATER unsent.
  let paused = false;
  const resumeWhenDrained = (): void => {
    if (client === null || client.bufferedAmount <= LOW_WATER) {
      paused = false;
      fromBrowser.resume();
    } else setTimeout(resumeWhenDrained, 5);
  };
  const forward = (message: Buffer, measured?: BindingMeter): void => {
    if (!filter.pass(message, measured)) return;
    if (client === null) {
      early.push(message);
      return;
    }
    client.send(message, { binary: false });
    if (!paused && client.bufferedAmount > HIGH_WATER) {
      paused = true;
      fromBrowser.pause();
      setTimeout(resumeWhenDrained, 5);
    }
  };
  const reader = new RelayReader(filter, forward);
  fromBrowser.on('data', (chunk: Buffer) => reader.push(chunk));
  const reporter = setInterval(() => {
    for (const r of filter.take()) report(r);
  }, REPORT_MS);
  let exited = false;
  const exit = (code: number | null, signal: string | null): void => {
    if (exited) return;
    exited = true;
    for (const r of filter.take()) report(r);
    end();
    rmSync(profile, { recursive: true, force: true });
    report({ type: 'exit', code, signal, stderr });
  };
  child.on('exit', exit);
  // Not started at all (no such file, not executable): no 'exit' follows.
  child.on('error', (err) => {
    stderr += `\n${err.message}`;
    if (child.pid === undefined) exit(null, null);
  });
}

if (parentPort && workerData) main(workerData as RelayWorkerData);
