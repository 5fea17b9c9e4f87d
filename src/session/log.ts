import { RrwebEventType, type WireEvent } from '../protocol/index.js';

/** One accepted batch: seqs `from`…`from + events.length - 1`, each event kept as its JSON text. */
export interface Batch {
  from: number;
  events: readonly string[];
  /** Page timestamps, for latency accounting. */
  timestamps: readonly number[];
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
 * The ordered event log of one session: the single source of truth viewers read from.
 * Every accepted event gets the next seq. In memory we keep everything from the latest checkpoint
 * (a Meta followed by a FullSnapshot) on; when that grows past `maxEvents` we ask for a fresh
 * checkpoint through `onOverflow` and drop what precedes it once it arrives.
 */
export class SessionLog {
  private entries: Entry[] = [];
  /** Seq of entries[0]. */
  private firstSeq = 1;
  private pendingMetaSeq: number | null = null;
  private overflowRequestedAt = 0;
  private readonly listeners = new Set<BatchListener>();
  checkpointSeq = 0;
  totalEvents = 0;
  totalBytes = 0;

  constructor(
    private readonly maxEvents: number,
    private readonly onOverflow: () => void = () => {},
  ) {}

  get lastSeq(): number {
    return this.firstSeq + this.entries.length - 1;
  }

  get retained(): number {
    return this.entries.length;
  }

  subscribe(listener: BatchListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Appends events in order and tells every listener synchronously. */
  append(events: readonly WireEvent[]): Batch | null {
    if (events.length === 0) return null;
    const from = this.lastSeq + 1;
    const jsons: string[] = [];
    const timestamps: number[] = [];
    let checkpoint: number | null = null;
    for (const [i, event] of events.entries()) {
      const seq = from + i;
      const json = JSON.stringify(event);
      jsons.push(json);
      timestamps.push(event.timestamp);
      this.entries.push({ json, type: event.type });
      this.totalBytes += json.length;
      if (event.type === RrwebEventType.Meta) this.pendingMetaSeq = seq;
      else if (event.type === RrwebEventType.FullSnapshot && this.pendingMetaSeq !== null) {
        checkpoint = this.pendingMetaSeq;
        this.pendingMetaSeq = null;
      }
    }
    this.totalEvents += events.length;
    if (checkpoint !== null) this.setCheckpoint(checkpoint);
    const batch: Batch = { from, events: jsons, timestamps };
    for (const listener of this.listeners) listener(batch);
    this.checkBound();
    return batch;
  }

  private setCheckpoint(seq: number): void {
    this.checkpointSeq = seq;
    this.overflowRequestedAt = 0;
    const drop = seq - this.firstSeq;
    if (drop > 0) {
      this.entries = this.entries.slice(drop);
      this.firstSeq = seq;
    }
  }

  private checkBound(): void {
    if (this.entries.length <= this.maxEvents) return;
    const now = Date.now();
    // One request at a time; ask again if the page did not answer within 2 s (it may have been navigating).
    if (now - this.overflowRequestedAt < 2000) return;
    this.overflowRequestedAt = now;
    this.onOverflow();
  }

  /** Events after `since`, or null when they are no longer (or never were) in memory. */
  since(since: number): Slice | null {
    if (since < this.firstSeq - 1 || since > this.lastSeq) return null;
    return { from: since + 1, events: this.entries.slice(since + 1 - this.firstSeq).map((e) => e.json) };
  }

  /** What a viewer needs to rebuild the page from nothing: everything from the checkpoint on. */
  fromCheckpoint(): Slice {
    return { from: this.firstSeq, events: this.entries.map((e) => e.json) };
  }
}
