import { RrwebEventType, type WireEvent } from '../protocol/index.js';
import { DEFAULT_LIMITS, HARD_EVENTS_FACTOR, type RecordingLimits } from './limits.js';
import { toEntry, type LogEntry } from './prepare.js';

/** One accepted batch: seqs `from`…`from + events.length - 1`, each event kept as its JSON text. */
export interface Batch {
  from: number;
  events: readonly string[];
  /** Page timestamps, for latency accounting. */
  timestamps: readonly number[];
  /**
   * Set by a subscriber that sends the batch later (a channel coalescing for a crowd): the
   * latency is then counted when it goes out (Session.delivered), not when it is logged.
   */
  heldBack?: boolean;
}

export type BatchListener = (batch: Batch) => void;

export interface Slice {
  /** Seq of `events[0]`. */
  from: number;
  events: readonly string[];
}

interface Entry {
  json: string;
  type: number;
}

/**
 * A late joiner is sent the checkpoint and everything after it, and replays all of that before it
 * shows the page: the tail is compacted (a fresh checkpoint asked for) once it outgrows twice the
 * checkpoint, and at least this many characters. A page that changes a line 50 times a second
 * otherwise reaches 1,000 events (35 KB) before its next checkpoint, and a joiner's rebuild of it
 * took 40 to 120 ms (issue 15, late join). A repeated snapshot costs live viewers little on the
 * wire: it compresses against the one before, in their window.
 */
export const COMPACT_TAIL_MIN_CHARS = 12 * 1024;

export interface LogHooks {
  /** Past the soft bound: ask the page for a fresh checkpoint. */
  onOverflow?: () => void;
  /** A page batch would take the log past its hard bound: it was refused, and recording must stop. */
  onLimit?: (reason: string) => void;
  /** A listener threw: the batch is in the log all the same; the listener's owner is told. */
  onListenerError?: (err: unknown) => void;
}

/**
 * The ordered event log of one session: the single source of truth viewers read from.
 * Every accepted event gets the next seq. In memory we keep everything from the latest checkpoint
 * (a Meta followed by a FullSnapshot) on, bounded in events and in characters: past the soft bound
 * (`bufferEvents`, or half of `maxSessionChars` after the checkpoint) we ask for a fresh checkpoint
 * through `onOverflow` and drop what precedes it once it arrives; a page batch that would pass the
 * hard bound (all of `maxSessionChars`, or ten times `bufferEvents`) is refused and `onLimit` says so.
 * A batch is appended whole or not at all. An ended session's log can be released once the store
 * holds it: seqs and counts stay, the events go.
 */
export class SessionLog {
  private entries: Entry[] = [];
  /** Seq of entries[0]. */
  private firstSeq = 1;
  private pendingMetaSeq: number | null = null;
  private overflowRequestedAt = 0;
  private readonly listeners = new Set<BatchListener>();
  /** Characters of JSON held in `entries`. */
  private chars = 0;
  /** Characters of what came after the checkpoint's FullSnapshot. */
  private charsSinceCheckpoint = 0;
  /** Characters of the checkpoint itself (its Meta and FullSnapshot, and what came between). */
  private checkpointChars = 0;
  /** Derived from the log as it stands; dropped on every change. */
  private memo: { key: string; value: unknown } | null = null;
  /** Events of a released log (no longer in `entries`) and server events appended after. */
  private releasedCount = 0;
  private readonly limits: RecordingLimits;
  checkpointSeq = 0;
  /** Asks for a checkpoint when the tail outgrows COMPACT_TAIL_MIN_CHARS and twice the checkpoint (off for a page with cross-origin frames, Session.ingest). */
  compactTail = true;
  totalEvents = 0;
  totalBytes = 0;
  /** True once release() dropped the events (the store has them). */
  released = false;
  /**
   * A copy of another node's log (cluster mode, src/cluster/mirror.ts): its epoch, which viewers
   * resume against on any node; null for a log of this process (the hub's epoch then).
   */
  epoch: string | null = null;

  constructor(
    limits: Partial<RecordingLimits> | number = {},
    private readonly hooks: LogHooks = {},
  ) {
    this.limits = { ...DEFAULT_LIMITS, ...(typeof limits === 'number' ? { bufferEvents: limits } : limits) };
  }

  get lastSeq(): number {
    return this.firstSeq + this.entries.length - 1 + this.releasedCount;
  }

  get retained(): number {
    return this.entries.length;
  }

  /** Characters of JSON held in memory. */
  get retainedChars(): number {
    return this.chars;
  }

  subscribe(listener: BatchListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Appends server-side events (steps, status): never refused. */
  append(events: readonly WireEvent[]): Batch | null {
    return this.commit(events.map(toEntry));
  }

  /**
   * Appends a page's prepared batch, or refuses all of it when it would take the log past its hard
   * bound (null; `onLimit` is told why).
   */
  appendPage(entries: readonly LogEntry[]): Batch | null {
    if (entries.length === 0 || this.released) return null;
    let chars = 0;
    for (const e of entries) chars += e.json.length;
    const maxEvents = this.limits.bufferEvents * HARD_EVENTS_FACTOR;
    const reason =
      this.chars + chars > this.limits.maxSessionChars
        ? `the page's recording would hold more than ${this.limits.maxSessionChars} chars in memory without a new checkpoint`
        : this.entries.length + entries.length > maxEvents
          ? `the page's recording would hold more than ${maxEvents} events in memory without a new checkpoint`
          : null;
    if (reason) {
      this.hooks.onLimit?.(reason);
      return null;
    }
    return this.commit(entries);
  }

  /**
   * Appends a batch of another node's log as that log numbered it (cluster mode): `from` must
   * follow this log's last seq (the first batch sets where this copy starts), and `checkpoint`, when
   * the batch made one, is that log's; no bound is checked (that log keeps them) and no checkpoint
   * is asked for.
   */
  mirror(from: number, texts: readonly string[], timestamps: readonly number[], checkpoint: number | null): Batch | null {
    if (texts.length === 0 || this.released) return null;
    if (this.lastSeq === 0 && this.entries.length === 0) this.firstSeq = from;
    if (from !== this.lastSeq + 1) throw new Error(`a mirrored batch from seq ${from} does not follow seq ${this.lastSeq}`);
    const entries = texts.map((json, i) => ({ json, type: -1, timestamp: timestamps[i] ?? 0 }));
    for (const e of entries) {
      this.entries.push({ json: e.json, type: e.type });
      this.chars += e.json.length;
    }
    if (checkpoint !== null && checkpoint >= this.firstSeq) this.setCheckpoint(checkpoint);
    return this.tell(from, entries);
  }

  private commit(entries: readonly LogEntry[]): Batch | null {
    if (entries.length === 0) return null;
    const from = this.lastSeq + 1;
    if (this.released) {
      // Only server events reach an ended, released log: counted, kept by the store, not in memory.
      this.releasedCount += entries.length;
      return this.tell(from, entries);
    }
    let checkpoint: number | null = null;
    let afterCheckpoint = 0;
    let checkpointChars = 0;
    for (const [i, e] of entries.entries()) {
      const seq = from + i;
      this.entries.push({ json: e.json, type: e.type });
      this.chars += e.json.length;
      afterCheckpoint += e.json.length;
      if (e.type === RrwebEventType.Meta) this.pendingMetaSeq = seq;
      else if (e.type === RrwebEventType.FullSnapshot && this.pendingMetaSeq !== null) {
        checkpoint = this.pendingMetaSeq;
        this.pendingMetaSeq = null;
        checkpointChars = this.charsFrom(checkpoint);
        afterCheckpoint = 0;
      }
    }
    if (checkpoint !== null) {
      this.setCheckpoint(checkpoint);
      this.charsSinceCheckpoint = afterCheckpoint;
      this.checkpointChars = checkpointChars;
    } else this.charsSinceCheckpoint += afterCheckpoint;
    const batch = this.tell(from, entries);
    this.checkBound();
    return batch;
  }

  /** Counts the batch and tells every listener, each on its own: one that throws does not keep the batch from the others. */
  private tell(from: number, entries: readonly LogEntry[]): Batch {
    this.memo = null;
    const batch: Batch = { from, events: entries.map((e) => e.json), timestamps: entries.map((e) => e.timestamp) };
    this.totalEvents += entries.length;
    for (const e of entries) this.totalBytes += e.json.length;
    for (const listener of this.listeners) {
      try {
        listener(batch);
      } catch (err) {
        this.hooks.onListenerError?.(err);
      }
    }
    return batch;
  }

  private setCheckpoint(seq: number): void {
    this.checkpointSeq = seq;
    this.overflowRequestedAt = 0;
    const drop = seq - this.firstSeq;
    if (drop > 0) {
      for (const e of this.entries.slice(0, drop)) this.chars -= e.json.length;
      this.entries = this.entries.slice(drop);
      this.firstSeq = seq;
    }
  }

  /** Characters of the entries from `seq` to the last one appended. */
  private charsFrom(seq: number): number {
    let n = 0;
    for (let i = Math.max(0, seq - this.firstSeq); i < this.entries.length; i++) n += this.entries[i]!.json.length;
    return n;
  }

  private checkBound(): void {
    const compact = this.compactTail && this.checkpointSeq > 0 && this.charsSinceCheckpoint > Math.max(COMPACT_TAIL_MIN_CHARS, 2 * this.checkpointChars);
    if (!compact && this.entries.length <= this.limits.bufferEvents && this.charsSinceCheckpoint <= this.limits.maxSessionChars / 2) return;
    const now = Date.now();
    // One request at a time; ask again if the page did not answer within 2 s (it may have been navigating).
    if (now - this.overflowRequestedAt < 2000) return;
    this.overflowRequestedAt = now;
    this.hooks.onOverflow?.();
  }

  /** Drops the events from memory (the session ended and the store has them); seqs and counts stay. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.releasedCount = this.entries.length;
    this.entries = [];
    this.chars = 0;
    this.charsSinceCheckpoint = 0;
    this.checkpointChars = 0;
    this.memo = null;
  }

  /** Events after `since`, or null when they are no longer (or never were) in memory. */
  since(since: number): Slice | null {
    if (this.released || since < this.firstSeq - 1 || since > this.lastSeq) return null;
    return { from: since + 1, events: this.entries.slice(since + 1 - this.firstSeq).map((e) => e.json) };
  }

  /** What a viewer needs to rebuild the page from nothing: everything from the checkpoint on (nothing once released). */
  fromCheckpoint(): Slice {
    return { from: this.firstSeq, events: this.entries.map((e) => e.json) };
  }

  /**
   * A value derived from the log as it stands (a reset frame), built once however many ask for it
   * before the log changes, and dropped with the events when the log is released.
   */
  derive<T>(key: string, build: () => T): T {
    if (this.memo?.key === key) return this.memo.value as T;
    const value = build();
    this.memo = { key, value };
    return value;
  }
}
