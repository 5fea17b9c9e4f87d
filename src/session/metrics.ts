/** Milliseconds to one decimal, for reports; null stays null. */
export const roundMs = (v: number | null): number | null => (v === null ? null : Math.round(v * 10) / 10);

/** A fixed-size window of the latest samples: constant memory, cheap to add to. */
export class SampleWindow {
  private readonly samples: Float64Array;
  private next = 0;
  private count = 0;

  constructor(size = 4096) {
    this.samples = new Float64Array(size);
  }

  add(value: number): void {
    this.samples[this.next] = value;
    this.next = (this.next + 1) % this.samples.length;
    if (this.count < this.samples.length) this.count++;
  }

  get size(): number {
    return this.count;
  }

  average(): number | null {
    if (this.count === 0) return null;
    let sum = 0;
    for (let i = 0; i < this.count; i++) sum += this.samples[i] ?? 0;
    return sum / this.count;
  }

  percentile(p: number): number | null {
    if (this.count === 0) return null;
    const sorted = Array.from(this.samples.subarray(0, this.count)).sort((a, b) => a - b);
    // Nearest rank: the smallest sample with at least p% of samples at or below it.
    const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
    return sorted[Math.min(sorted.length, rank) - 1] ?? null;
  }
}

/** What a run's browser captured of its page's assets (src/browser/asset-capture.ts keeps these up to date). */
export interface AssetTally {
  captured: number;
  skipped: number;
  bytes: number;
}

/** Process-wide counters for /health/visual. */
export class StreamMetrics {
  totalEventsProcessed = 0;
  totalBatches = 0;
  rejectedEvents = 0;
  /** Messages a page made its browser send that the DevTools relay dropped unread (src/browser/cdp-relay.ts). */
  devtoolsMessagesDropped = 0;
  /** Runs still capturing, whose counts move; ended runs are summed into `endedAssets`. */
  private readonly capturing = new Set<AssetTally>();
  private readonly endedAssets: AssetTally = { captured: 0, skipped: 0, bytes: 0 };

  /** Counts a run's captured assets from now on, live. */
  trackAssets(tally: AssetTally): void {
    this.capturing.add(tally);
  }

  /** The run ended: its final counts join the totals. */
  untrackAssets(tally: AssetTally): void {
    if (!this.capturing.delete(tally)) return;
    this.endedAssets.captured += tally.captured;
    this.endedAssets.skipped += tally.skipped;
    this.endedAssets.bytes += tally.bytes;
  }

  /** Assets captured and skipped by every run since start, running ones included. */
  assetTotals(): AssetTally {
    const total = { ...this.endedAssets };
    for (const t of this.capturing) {
      total.captured += t.captured;
      total.skipped += t.skipped;
      total.bytes += t.bytes;
    }
    return total;
  }
  /** Page timestamp of an event → the moment it was handed to every viewer socket, in ms. */
  readonly latency = new SampleWindow();
  /** Also told each latency sample (ms): the /metrics histogram (src/server/prometheus.ts). */
  latencyObserver: ((ms: number) => void) | null = null;
  /** Runs that ended, by their final status. */
  readonly runsEnded = new Map<string, number>();
}
