/** A token bucket: up to `capacity` at once, refilled at `perSecond`. */
export class TokenBucket {
  private tokens: number;
  private last = performance.now();

  constructor(
    readonly capacity: number,
    readonly perSecond: number,
  ) {
    this.tokens = capacity;
  }

  /** Takes `amount` if there is that much; false (and nothing taken) otherwise. */
  take(amount: number): boolean {
    this.refill();
    if (amount > this.tokens) return false;
    this.tokens -= amount;
    return true;
  }

  /** Takes `amount` even if it goes below zero (a cost known only afterwards); false once in debt. */
  charge(amount: number): boolean {
    this.refill();
    this.tokens -= amount;
    return this.tokens >= 0;
  }

  private refill(): void {
    const now = performance.now();
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.last) / 1000) * this.perSecond);
    this.last = now;
  }
}
