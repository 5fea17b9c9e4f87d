import type { Redis } from 'ioredis';
import { decodeEntry, streamKeys, withStreamCommands, type StreamCommands, type StreamEntry } from './stream-keys.js';

/** What a session's stream holds from its checkpoint on, read at one instant. */
export interface StreamState {
  epoch: string;
  /** Seq of events[0]: the checkpoint (its Meta), or the next seq when the stream holds no event yet. */
  from: number;
  /** The checkpoint's seq (its Meta). */
  checkpoint: number;
  events: string[];
  lastSeq: number;
  /** The run's final status once it ended, else null. */
  ended: string | null;
  /** The session's latest view (JSON), or null if the worker sent none. */
  view: string | null;
}

export interface TailHandler {
  /** The stream from its checkpoint: first, and again whenever it started over under a new epoch. */
  reset(state: StreamState): void;
  /** The events that follow the last ones handed over (`entry.seq` on), in order, none twice. */
  batch(entry: StreamEntry): void;
  /** The run ended with this status; nothing follows. */
  end(status: string): void;
}

interface Watch {
  sessionId: string;
  key: string;
  handler: TailHandler;
  epoch: string;
  nextSeq: number;
  /** Stream id read up to. */
  lastId: string;
  /** Reading the stream again from its checkpoint: entries read meanwhile are not handed over. */
  reopening: boolean;
  ended: boolean;
}

const BLOCK_MS = 5000;
const RETRY_MS = 250;

/** Reads a session's stream from its checkpoint (OPEN_SCRIPT), or null when there is no stream. */
export async function openStream(redis: Redis, prefix: string, sessionId: string): Promise<(StreamState & { lastId: string }) | null> {
  const keys = streamKeys(prefix, sessionId);
  const reply = await withStreamCommands(redis).domcastLogOpen(keys.stream, keys.meta);
  if (reply.length === 0) return null;
  const [epoch, cpText, seqText, ended, rows, view] = reply;
  const cp = Number(cpText);
  const lastSeq = Number(seqText);
  const events: string[] = [];
  for (const [id, fields] of rows) {
    const entry = decodeEntry(id, fields);
    entry.events.forEach((e, i) => {
      if (entry.seq + i >= cp) events.push(e);
    });
  }
  const from = events.length > 0 ? cp : lastSeq + 1;
  const lastRow = rows.at(-1);
  return { epoch, from, checkpoint: cp, events, lastSeq, ended: ended === '' ? null : ended, view: view === '' ? null : view, lastId: lastRow ? lastRow[0] : `${lastSeq}-0` };
}

/**
 * Follows the streams of the sessions this node has viewers for, on one blocking connection
 * (XREAD BLOCK over all of them), and hands each session's entries to its handler: in order, none
 * twice, and a reset from the checkpoint whenever the stream started over (a new epoch, or a gap).
 */
export class StreamTail {
  private readonly watches = new Map<string, Watch>();
  private readonly commands: Redis & StreamCommands;
  private blockingId: number | null = null;
  private closed = false;
  private wake: (() => void) | null = null;
  /** Bumped whenever the watched set changes; the XREAD in flight was sent for `readingVersion`. */
  private version = 0;
  private readingVersion: number | null = null;
  private readonly loop: Promise<void>;

  /** `redis` answers at once; `blocking` is this tail's own, for XREAD BLOCK. */
  constructor(
    redis: Redis,
    private readonly blocking: Redis,
    private readonly prefix: string,
    private readonly onError: (err: unknown) => void = () => {},
  ) {
    this.commands = withStreamCommands(redis);
    blocking.on('close', () => {
      this.blockingId = null;
    });
    this.loop = this.run();
  }

  get watched(): number {
    return this.watches.size;
  }

  /**
   * Hands the session's stream to `handler` from its checkpoint (reset), then follows it. Resolves
   * false, watching nothing, when the session has no stream (not started, or expired).
   */
  async watch(sessionId: string, handler: TailHandler): Promise<boolean> {
    if (this.watches.has(sessionId)) throw new Error(`session ${sessionId} is already watched by this tail`);
    const state = await openStream(this.commands, this.prefix, sessionId);
    if (!state || this.closed) return false;
    const watch: Watch = {
      sessionId,
      key: streamKeys(this.prefix, sessionId).stream,
      handler,
      epoch: state.epoch,
      nextSeq: state.lastSeq + 1,
      lastId: state.lastId,
      reopening: false,
      ended: state.ended !== null,
    };
    handler.reset(state);
    if (state.ended !== null) {
      handler.end(state.ended);
      return true;
    }
    this.watches.set(sessionId, watch);
    this.interrupt();
    return true;
  }

  unwatch(sessionId: string): void {
    if (this.watches.delete(sessionId)) this.interrupt();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.watches.clear();
    this.interrupt();
    await this.loop;
  }

  /** The watched set changed: the blocked XREAD returns at once and starts again with it. */
  private interrupt(): void {
    this.version++;
    if (this.wake) {
      this.wake();
      this.wake = null;
    }
    this.unblock();
  }

  /**
   * CLIENT UNBLOCK, from the other connection, may reach Redis before the XREAD it means to end
   * (it then unblocks nothing): it is sent again until the XREAD for an older set has returned.
   */
  private unblock(): void {
    const id = this.blockingId;
    if (id === null || this.readingVersion === null || this.readingVersion === this.version) return;
    this.commands.client('UNBLOCK', id).then(
      (n) => {
        if (Number(n) === 0) setTimeout(() => this.unblock(), 2);
      },
      () => {},
    );
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      const version = this.version;
      const watches = [...this.watches.values()].filter((w) => !w.reopening);
      if (watches.length === 0) {
        await new Promise<void>((r) => {
          const timer = setTimeout(r, BLOCK_MS);
          this.wake = () => {
            clearTimeout(timer);
            r();
          };
        });
        continue;
      }
      try {
        this.blockingId ??= Number(await this.blocking.client('ID'));
        if (this.closed || version !== this.version) continue;
        this.readingVersion = version;
        this.unblock();
        const reply = (await this.blocking.xread('BLOCK', BLOCK_MS, 'STREAMS', ...watches.map((w) => w.key), ...watches.map((w) => w.lastId))) as
          | [string, [string, string[]][]][]
          | null;
        this.readingVersion = null;
        for (const [key, rows] of reply ?? []) {
          const watch = watches.find((w) => w.key === key);
          if (watch) this.take(watch, rows);
        }
      } catch (err) {
        this.readingVersion = null;
        if (this.closed) return;
        this.onError(err);
        await new Promise((r) => setTimeout(r, RETRY_MS));
        // Redis may have come back empty: every stream is checked against what its viewers hold.
        for (const w of this.watches.values()) this.reopen(w);
      }
    }
  }

  private take(watch: Watch, rows: [string, string[]][]): void {
    for (const [id, fields] of rows) {
      if (watch.reopening || this.watches.get(watch.sessionId) !== watch) return;
      watch.lastId = id;
      const entry = decodeEntry(id, fields);
      if (entry.epoch !== watch.epoch) {
        this.reopen(watch);
        return;
      }
      this.deliver(watch, entry);
    }
  }

  private deliver(watch: Watch, entry: StreamEntry): void {
    if (entry.end !== null) {
      this.watches.delete(watch.sessionId);
      watch.ended = true;
      watch.handler.end(entry.end);
      return;
    }
    if (entry.events.length === 0) return;
    const last = entry.seq + entry.events.length - 1;
    if (last < watch.nextSeq) return;
    if (entry.seq !== watch.nextSeq) {
      this.reopen(watch);
      return;
    }
    watch.nextSeq = last + 1;
    watch.handler.batch(entry);
  }

  /** Reads the stream again from its checkpoint; the handler gets a reset if it started over. */
  private reopen(watch: Watch): void {
    if (watch.reopening) return;
    watch.reopening = true;
    openStream(this.commands, this.prefix, watch.sessionId).then(
      (state) => {
        watch.reopening = false;
        if (this.watches.get(watch.sessionId) !== watch) return;
        // Gone, and not yet seeded again by its worker: the seed's marker will wake the tail.
        if (!state) return;
        if (state.epoch !== watch.epoch || state.lastSeq + 1 < watch.nextSeq || state.from > watch.nextSeq) {
          watch.epoch = state.epoch;
          watch.handler.reset(state);
          watch.nextSeq = state.lastSeq + 1;
          watch.lastId = state.lastId;
        } else {
          // The same stream: carry on from where this watch was, the entries since are read next.
          watch.lastId = `${watch.nextSeq - 1}-0`;
        }
        if (state.ended !== null) {
          this.watches.delete(watch.sessionId);
          watch.handler.end(state.ended);
        }
        this.interrupt();
      },
      (err: unknown) => {
        watch.reopening = false;
        this.onError(err);
        this.interrupt();
      },
    );
  }
}
