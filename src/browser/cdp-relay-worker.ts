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
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { parentPort, workerData } from 'node:worker_threads';
import { WebSocketServer, type WebSocket } from 'ws';

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

const PAYLOAD_KEY = Buffer.from('"payload":"');
const ARGS_OPEN = '"serializedArgs":["';
const ESCAPES: Record<number, number> = { 0x22: 0x22, 0x5c: 0x5c, 0x2f: 0x2f, 0x62: 8, 0x66: 12, 0x6e: 10, 0x72: 13, 0x74: 9 };

function hexAt(message: Buffer, at: number): number {
  const n = Number.parseInt(message.toString('latin1', at, at + 4), 16);
  return Number.isNaN(n) ? 0 : n;
}

/**
 * A binding call's argument, as its length in characters and Playwright's binding name in front of
 * it, measured without building either: the argument is escaped twice (a JSON string in Playwright's
 * `{name, seq, serializedArgs}`, itself the JSON string `payload` of Chromium's message), and both
 * levels are decoded on the fly, character by character, with no copy of the message. A message of
 * another shape counts the payload's characters.
 */
export function bindingArgument(message: Buffer): { name: string; chars: number } {
  const outer = /"name":"([^"\\]{0,200})"/.exec(message.toString('latin1', 0, 300))?.[1] ?? '';
  const from = message.indexOf(PAYLOAD_KEY);
  if (from === -1) return { name: outer, chars: message.length };
  // Level 2, fed one UTF-16 unit at a time: Playwright's JSON, then the argument's string.
  let head = '';
  let inArg = false;
  let argDone = false;
  let escaped = false;
  let hexLeft = 0;
  let argChars = 0;
  let payloadChars = 0;
  const feed = (unit: number): void => {
    payloadChars++;
    if (argDone) return;
    if (!inArg) {
      if (head.length < 1024) {
        head += String.fromCharCode(unit);
        if (head.endsWith(ARGS_OPEN)) inArg = true;
      }
      return;
    }
    if (hexLeft > 0) hexLeft--;
    else if (escaped) {
      escaped = false;
      argChars++;
      if (unit === 0x75) hexLeft = 4;
    } else if (unit === 0x5c) escaped = true;
    else if (unit === 0x22) argDone = true;
    else argChars++;
  };
  // Level 1: Chromium's JSON string, byte by byte (UTF-8; escapes, \uXXXX included).
  for (let i = from + PAYLOAD_KEY.length; i < message.length; i++) {
    const b = message[i]!;
    if (b === 0x22) break;
    if (b === 0x5c) {
      const e = message[i + 1] ?? 0;
      if (e === 0x75) {
        feed(hexAt(message, i + 2));
        i += 5;
      } else {
        feed(ESCAPES[e] ?? e);
        i += 1;
      }
    } else if (b < 0x80) feed(b);
    else if (b >= 0xf0) {
      feed(0xd800);
      feed(0xdc00);
    } else if (b >= 0xc0) feed(0x80);
    // continuation bytes belong to their lead byte
  }
  if (!inArg) return { name: outer, chars: payloadChars };
  const name = /^\{"name":"([^"\\]{0,200})"/.exec(head)?.[1] ?? outer;
  return { name, chars: argChars };
}

const MAX_ESCAPE = 7;

class Bucket {
  private tokens: number;
  private last = performance.now();
  constructor(
    private readonly capacity: number,
    private readonly perSecond: number,
  ) {
    this.tokens = capacity;
  }
  take(amount: number): boolean {
    const now = performance.now();
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.last) / 1000) * this.perSecond);
    this.last = now;
    if (amount > this.tokens) return false;
    this.tokens -= amount;
    return true;
  }
}

/**
 * Decides, message by message, what reaches the server. Binding calls are left to the server's own
 * budgets (src/session/ingest.ts) once they are of a size it would read; the rest is bounded here.
 */
export class RelayFilter {
  private readonly buckets = new Map<string, Bucket>();
  /** Drops not yet reported, by method and reason: reported at most every REPORT_MS. */
  private readonly unreported = new Map<string, Extract<RelayReport, { type: 'dropped' }>>();

  constructor(private readonly limits: RelayLimits) {}

  /** True to forward `message`. */
  pass(message: Buffer): boolean {
    const method = pageMethod(message);
    if (method === null) return true;
    if (method === 'Runtime.bindingCalled') {
      if (message.length <= this.limits.maxBindingChars) return true;
      // Escaped twice, one character of the argument takes at most 7 bytes here (a control character,
      // \\u0001): past that the argument is over its bound whatever it holds, and is not even parsed.
      if (message.length > MAX_ESCAPE * this.limits.maxBindingChars + 65536) {
        this.drop(method, message.length, 'oversize', '', message.length);
        return false;
      }
      const { name, chars } = bindingArgument(message);
      if (chars <= this.limits.maxBindingChars) return true;
      this.drop(method, message.length, 'oversize', name, chars);
      return false;
    }
    if (message.length > this.limits.maxOtherBytes) {
      this.drop(method, message.length, 'oversize');
      return false;
    }
    const session = sessionOf(message);
    let bucket = this.buckets.get(session);
    if (!bucket) this.buckets.set(session, (bucket = new Bucket(this.limits.otherBudgetBytes, this.limits.otherRefillBytesPerSecond)));
    if (bucket.take(message.length)) return true;
    this.drop(method, message.length, 'budget');
    return false;
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
  const forward = (message: Buffer): void => {
    if (!filter.pass(message)) return;
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
  let pending: Buffer[] = [];
  fromBrowser.on('data', (chunk: Buffer) => {
    let start = 0;
    for (let zero = chunk.indexOf(0); zero !== -1; zero = chunk.indexOf(0, start)) {
      pending.push(chunk.subarray(start, zero));
      forward(pending.length === 1 ? pending[0]! : Buffer.concat(pending));
      pending = [];
      start = zero + 1;
    }
    if (start < chunk.length) pending.push(chunk.subarray(start));
  });
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
