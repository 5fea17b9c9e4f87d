import type { Redis } from 'ioredis';
import { APPEND_SCRIPT, END_SCRIPT, OPEN_SCRIPT, SEED_SCRIPT } from './stream-scripts.js';

/** Where a session's log lives in Redis (stream-scripts.ts describes both keys). */
export interface StreamKeys {
  stream: string;
  meta: string;
}

export function streamKeys(prefix: string, sessionId: string): StreamKeys {
  const stream = `${prefix}:log:{${sessionId}}`;
  return { stream, meta: `${stream}:meta` };
}

type Reply = (string | null)[];

/** OPEN_SCRIPT's answer: nothing, or epoch, checkpoint seq, last seq, final status ('' while live), entries, view ('' if none). */
export type OpenReply = [] | [string, string, string, string, [string, string[]][], string];

/** The scripts, as commands on a connection (EVALSHA, loaded on first use by ioredis). */
export interface StreamCommands {
  domcastLogAppend(stream: string, meta: string, from: string, n: number, events: string, ts: string, cp: number, cpid: number, epoch: string, view: string): Promise<Reply>;
  domcastLogSeed(stream: string, meta: string, epoch: string, from: number, n: number, events: string, ts: string, cp: number, stamp: number, view: string): Promise<string>;
  domcastLogEnd(stream: string, meta: string, status: string, epoch: string, ttlMs: number): Promise<string>;
  domcastLogOpen(stream: string, meta: string): Promise<OpenReply>;
}

const defined = new WeakSet<Redis>();

/** The connection, with the log's scripts defined on it. */
export function withStreamCommands(redis: Redis): Redis & StreamCommands {
  if (!defined.has(redis)) {
    redis.defineCommand('domcastLogAppend', { numberOfKeys: 2, lua: APPEND_SCRIPT });
    redis.defineCommand('domcastLogSeed', { numberOfKeys: 2, lua: SEED_SCRIPT });
    redis.defineCommand('domcastLogEnd', { numberOfKeys: 2, lua: END_SCRIPT });
    redis.defineCommand('domcastLogOpen', { numberOfKeys: 2, lua: OPEN_SCRIPT });
    defined.add(redis);
  }
  return redis as Redis & StreamCommands;
}

/** One stream entry, decoded: a batch (`events` non-empty) or a marker. */
export interface StreamEntry {
  /** Seq of the first event (a batch), or the last seq before the marker. */
  seq: number;
  epoch: string;
  events: string[];
  timestamps: number[];
  /** A seed marker: the stream started again under `epoch`. */
  reset: boolean;
  /** The end marker: the run's final status. */
  end: string | null;
  /** The checkpoint's seq, when this batch (or seed) made a new one. */
  checkpoint: number | null;
  /** The session's view (JSON), when this batch changed it. */
  view: string | null;
}

export function decodeEntry(id: string, fields: string[]): StreamEntry {
  const f = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i]!, fields[i + 1]!);
  const n = Number(f.get('n') ?? 0);
  const e = f.get('e') ?? '';
  const t = f.get('t') ?? '';
  return {
    seq: Number.parseInt(id, 10),
    epoch: f.get('p') ?? '',
    events: n > 0 ? e.split('\n') : [],
    timestamps: n > 0 && t !== '' ? t.split(',').map(Number) : [],
    reset: f.has('reset'),
    end: f.get('end') ?? null,
    checkpoint: f.has('c') ? Number(f.get('c')) : null,
    view: f.get('v') || null,
  };
}
