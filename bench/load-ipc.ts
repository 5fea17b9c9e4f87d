/**
 * What bench/load.ts (the server side) and bench/load-clients.ts (the viewers, in their own process)
 * say to each other over the fork IPC channel, and the latency histogram both use.
 */

/** Parent → clients. Every command carries an id; the clients answer each with a reply of that id. */
export type Command =
  | { id: number; cmd: 'open'; group: string; url: string; count: number; slow: boolean }
  | { id: number; cmd: 'measure'; on: boolean }
  | { id: number; cmd: 'resume'; groups: string[] }
  | { id: number; cmd: 'collect'; groups: string[]; timeoutMs: number };

export interface OpenedReply {
  id: number;
  type: 'opened';
  group: string;
  opened: number;
  failed: number;
  /** From the first connect until the last viewer had its `hello`. */
  ms: number;
  errors: string[];
}

export interface MeasuredReply {
  id: number;
  type: 'measured';
  on: boolean;
  /** Filled when the window closes: the client process's own load during it. */
  cpu_percent_of_one_core: number | null;
  event_loop_delay_ms: { p50: number; p99: number; max: number } | null;
  rss_mb: number;
  /** Messages decoded during the window (misses) and reused from another socket of the process (hits): bench/load-socket.ts, SharedDecode. */
  shared_decode: { hits: number; misses: number } | null;
}

export interface ResumedReply {
  id: number;
  type: 'resumed';
}

/** Latency histogram: `[ms, count]` pairs for the buckets that are not empty. */
export type SparseHistogram = [number, number][];

export interface GroupReport {
  group: string;
  slow: boolean;
  viewers: number;
  opened: number;
  got_hello: number;
  got_end: number;
  close_codes: Record<string, number>;
  errors: string[];
  /** Only what arrived while the window was open. */
  window: {
    frames: number;
    events: number;
    /** Frame payloads as the viewer got them (after inflating). */
    payload_bytes: number;
    /** TCP bytes the viewers read (WebSocket framing, compressed payloads). */
    wire_bytes: number;
    /** Receipt time − event.timestamp (page clock, same machine) of every event in an `events` frame. */
    latency: SparseHistogram;
  };
  seq: {
    /** Seqs never seen between a viewer's first one and the session's last (`end.lastSeq`). */
    lost: number;
    /** Seqs seen twice in `events` frames. */
    duplicated: number;
    /** `reset` frames after the first one (a viewer that fell behind). */
    late_resets: number;
    /** Seqs skipped over by those resets (counted apart from `lost`: the protocol allows it). */
    skipped_by_resets: number;
    /** Viewers whose last seq is not the `end` frame's lastSeq, or that got no `end`. */
    incomplete_viewers: number;
    first_seq: { min: number | null; max: number | null };
    /** The last seq each viewer had when it was reported: beside end_last_seq, tells a cut stream from a wrong lastSeq. */
    last_seq: { min: number | null; max: number | null };
    end_last_seq: { min: number | null; max: number | null };
  };
  /** Slow viewers only: what they read once they resumed reading. */
  resumed: {
    viewers: number;
    /** Resumed viewers whose stream, once read, held a `reset` after the first: the hub had cut them off. */
    got_reset_after_resume: number;
    /** Bytes (frame payload) read after resuming before that reset: what the server and kernel had queued. */
    bytes_before_reset: { min: number | null; max: number | null };
  } | null;
}

export interface CollectedReply {
  id: number;
  type: 'collected';
  groups: GroupReport[];
}

export type Reply = OpenedReply | MeasuredReply | ResumedReply | CollectedReply;

/** Milliseconds, 1 ms buckets; anything above lands in the last one. */
export const HISTOGRAM_MAX_MS = 60_000;

export class LatencyHistogram {
  readonly counts = new Uint32Array(HISTOGRAM_MAX_MS + 1);
  total = 0;

  add(ms: number): void {
    const bucket = ms <= 0 ? 0 : ms >= HISTOGRAM_MAX_MS ? HISTOGRAM_MAX_MS : Math.round(ms);
    this.counts[bucket] = (this.counts[bucket] ?? 0) + 1;
    this.total++;
  }

  merge(sparse: SparseHistogram): void {
    for (const [ms, n] of sparse) {
      this.counts[ms] = (this.counts[ms] ?? 0) + n;
      this.total += n;
    }
  }

  sparse(): SparseHistogram {
    const out: SparseHistogram = [];
    for (let ms = 0; ms < this.counts.length; ms++) {
      const n = this.counts[ms] ?? 0;
      if (n > 0) out.push([ms, n]);
    }
    return out;
  }

  /** Nearest rank: the smallest bucket with at least p% of the samples at or below it. */
  percentile(p: number): number | null {
    if (this.total === 0) return null;
    const rank = Math.max(1, Math.ceil((p / 100) * this.total));
    let seen = 0;
    for (let ms = 0; ms < this.counts.length; ms++) {
      seen += this.counts[ms] ?? 0;
      if (seen >= rank) return ms;
    }
    return HISTOGRAM_MAX_MS;
  }

  summary(): { samples: number; mean: number | null; p50: number | null; p95: number | null; p99: number | null; max: number | null } {
    let sum = 0;
    let max: number | null = null;
    for (let ms = 0; ms < this.counts.length; ms++) {
      const n = this.counts[ms] ?? 0;
      if (n === 0) continue;
      sum += ms * n;
      max = ms;
    }
    return {
      samples: this.total,
      mean: this.total > 0 ? Math.round((sum / this.total) * 10) / 10 : null,
      p50: this.percentile(50),
      p95: this.percentile(95),
      p99: this.percentile(99),
      max,
    };
  }
}
