import { gzip } from 'node:zlib';
import { promisify } from 'node:util';
import type { Logger } from '../common/index.js';
import type { StoredSession } from './recording-store.js';

const gzipAsync = promisify(gzip);

/** A run of consecutive events of one session, gzipped as the text of one JSON array. */
export interface Chunk {
  sessionId: string;
  firstSeq: number;
  lastSeq: number;
  data: Buffer;
}

export interface Screenshot {
  sessionId: string;
  step: number;
  png: Buffer;
}

/** What one flush hands the database to write, in one transaction. */
export interface WriteBatch {
  sessions: StoredSession[];
  chunks: Chunk[];
  screenshots: Screenshot[];
}

interface Pending {
  from: number;
  events: string[];
}

/**
 * The store's writes behind the hot path, whatever the database: events wait in a bounded
 * in-memory queue and are written by a timer every `flushMs` (so a crash loses at most that much),
 * compressed off the event loop, then handed to `write` as one batch.
 *
 * A batch whose write failed (PostgreSQL restarting, a full disk) is kept and written first with
 * the next one; the timer then tries again less often (up to every 10 s). What is kept is bounded
 * like the queue: past `maxPendingBytes` its oldest chunks and screenshots are dropped, and said.
 */
export class WriteQueue {
  private readonly pending = new Map<string, Pending>();
  private readonly dirty = new Map<string, StoredSession>();
  private readonly shots: Screenshot[] = [];
  private pendingBytes = 0;
  private flushing: Promise<void> | null = null;
  private timer: NodeJS.Timeout | undefined;
  /** What the last write could not write, written first by the next one. */
  private unwritten: WriteBatch | null = null;
  private failures = 0;
  private retryAt = 0;
  eventsWritten = 0;

  constructor(
    private readonly write: (batch: WriteBatch) => Promise<void>,
    private readonly log: Logger,
    private readonly options: { flushMs?: number | undefined; maxPendingBytes?: number | undefined } = {},
  ) {}

  /** Starts writing every `flushMs`. */
  start(): void {
    this.timer = setInterval(() => {
      if (Date.now() >= this.retryAt) void this.flush();
    }, this.options.flushMs ?? 250);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  append(sessionId: string, from: number, events: readonly string[]): void {
    let p = this.pending.get(sessionId);
    if (!p || p.from + p.events.length !== from) {
      if (p) void this.flush(); // a gap would break the chunk's seq range: write what we have first
      p = { from, events: [] };
      this.pending.set(sessionId, p);
    }
    for (const e of events) {
      p.events.push(e);
      this.pendingBytes += e.length;
    }
    // The queue is bounded: past the bound, write now rather than hold more.
    if (this.pendingBytes > this.maxBytes) void this.flush();
  }

  saveSession(session: StoredSession): void {
    this.dirty.set(session.id, session);
  }

  saveScreenshot(sessionId: string, step: number, png: Buffer): void {
    this.shots.push({ sessionId, step, png });
  }

  /** Writes everything queued so far; concurrent callers share one write. A failed write is logged, not thrown. */
  flush(): Promise<void> {
    if (this.flushing) return this.flushing.then(() => this.flush());
    if (this.pending.size === 0 && this.dirty.size === 0 && this.shots.length === 0 && this.unwritten === null) return Promise.resolve();
    const batches = [...this.pending.entries()];
    const sessions = [...this.dirty.values()];
    const screenshots = this.shots.splice(0);
    this.pending.clear();
    this.dirty.clear();
    this.pendingBytes = 0;
    this.flushing = this.compressAndWrite(batches, sessions, screenshots)
      .catch((err: unknown) => this.log.error({ err }, 'store write failed'))
      .finally(() => {
        this.flushing = null;
      });
    return this.flushing;
  }

  private async compressAndWrite(batches: [string, Pending][], sessions: StoredSession[], screenshots: Screenshot[]): Promise<void> {
    const chunks = await Promise.all(
      batches.map(async ([sessionId, p]) => ({
        sessionId,
        firstSeq: p.from,
        lastSeq: p.from + p.events.length - 1,
        data: await gzipAsync(Buffer.from(`[${p.events.join(',')}]`)),
      })),
    );
    const kept = this.unwritten;
    this.unwritten = null;
    // Older first: a session's newer record overwrites the older one.
    const batch = kept
      ? { sessions: [...kept.sessions, ...sessions], chunks: [...kept.chunks, ...chunks], screenshots: [...kept.screenshots, ...screenshots] }
      : { sessions, chunks, screenshots };
    try {
      await this.write(batch);
    } catch (err) {
      this.keep(batch);
      throw err;
    }
    this.failures = 0;
    this.retryAt = 0;
    this.eventsWritten += batch.chunks.reduce((n, c) => n + events(c), 0);
  }

  private get maxBytes(): number {
    return this.options.maxPendingBytes ?? 32 * 1024 * 1024;
  }

  /** Keeps a batch that could not be written for the next write, within the queue's bound. */
  private keep(batch: WriteBatch): void {
    this.failures++;
    this.retryAt = Date.now() + Math.min(10_000, (this.options.flushMs ?? 250) * 2 ** this.failures);
    let bytes = batch.chunks.reduce((n, c) => n + c.data.length, 0) + batch.screenshots.reduce((n, s) => n + s.png.length, 0);
    let droppedEvents = 0;
    let droppedScreenshots = 0;
    while (bytes > this.maxBytes && batch.chunks.length > 0) {
      const c = batch.chunks.shift()!;
      bytes -= c.data.length;
      droppedEvents += events(c);
    }
    while (bytes > this.maxBytes && batch.screenshots.length > 0) {
      bytes -= batch.screenshots.shift()!.png.length;
      droppedScreenshots++;
    }
    if (droppedEvents || droppedScreenshots) {
      this.log.error({ droppedEvents, droppedScreenshots, keptBytes: bytes }, 'store: writes keep failing; dropped the oldest of what waits to be written');
    }
    this.unwritten = batch;
  }
}

/** Events in a chunk. */
const events = (c: Chunk) => c.lastSeq - c.firstSeq + 1;
