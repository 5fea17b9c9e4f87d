/**
 * Token buckets per caller: `perMinute` calls, refilled continuously, a burst of at most `perMinute`.
 * The table is bounded: past `maxCallers` the longest-idle caller is forgotten (a full bucket again).
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly perMinute: number,
    private readonly maxCallers = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** 0 when the call may go ahead (and is counted); otherwise the seconds to wait before the next one. */
  take(caller: string): number {
    if (this.perMinute <= 0) return 0;
    const now = this.now();
    const perMs = this.perMinute / 60_000;
    const b = this.buckets.get(caller) ?? { tokens: this.perMinute, at: now };
    b.tokens = Math.min(this.perMinute, b.tokens + (now - b.at) * perMs);
    b.at = now;
    // Re-inserted so the Map's order is least recently seen first.
    this.buckets.delete(caller);
    this.buckets.set(caller, b);
    if (this.buckets.size > this.maxCallers) this.buckets.delete(this.buckets.keys().next().value as string);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / perMs / 1000));
  }
}
