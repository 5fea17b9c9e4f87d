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

/** Process-wide counters for /health/visual. */
export class StreamMetrics {
  totalEventsProcessed = 0;
  totalBatches = 0;
  rejectedEvents = 0;
  /** Page timestamp of an event → the moment it was handed to every viewer socket, in ms. */
  readonly latency = new SampleWindow();
}
