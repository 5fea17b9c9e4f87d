/**
 * The pure part of bench:soak's report: the p95 ratio between its two phases, the server's
 * event-loop delay over the windows it reported, and the targets. Kept apart so it can be tested.
 */

export interface Check {
  value: unknown;
  target: string;
  pass: boolean;
}

/** How many times slower the ordinary viewers' p95 was beside hostile runs; null when either phase has no p95 (or a 0 baseline). */
export function p95Ratio(baselineP95: number | null, hostileP95: number | null): number | null {
  if (baselineP95 === null || hostileP95 === null || baselineP95 <= 0) return null;
  return Math.round((hostileP95 / baselineP95) * 100) / 100;
}

/** One reading of /health/visual's `event_loop_delay_ms`. */
export interface DelayReading {
  p50: number;
  p99: number;
  max: number;
  max_since_start: number;
}

/** Over the readings of one phase: the worst and median window p99, and the longest delay seen. */
export function summarizeDelays(readings: readonly DelayReading[]): { readings: number; p99_worst_window: number | null; p99_median_window: number | null; max: number | null } {
  if (readings.length === 0) return { readings: 0, p99_worst_window: null, p99_median_window: null, max: null };
  const p99s = readings.map((r) => r.p99).sort((a, b) => a - b);
  return {
    readings: readings.length,
    p99_worst_window: p99s[p99s.length - 1] ?? null,
    p99_median_window: p99s[Math.floor((p99s.length - 1) / 2)] ?? null,
    max: Math.max(...readings.map((r) => r.max)),
  };
}

export const TARGET_P95_RATIO = 2;

export interface TargetInputs {
  serverUp: boolean;
  /** Why it is not, when it is not. */
  serverDown: string | null;
  rssMaxBytes: number | null;
  rssBoundBytes: number;
  baselineP95: number | null;
  hostileP95: number | null;
}

export function soakTargets(t: TargetInputs): { server_up: Check; rss_under_bound: Check; p95_ratio_le_2: Check } {
  const ratio = p95Ratio(t.baselineP95, t.hostileP95);
  return {
    server_up: {
      value: t.serverUp ? true : { up: false, what_happened: t.serverDown },
      target: 'the server process never exited and answered GET /health to the end',
      pass: t.serverUp,
    },
    rss_under_bound: {
      value: { max_bytes: t.rssMaxBytes, bound_bytes: t.rssBoundBytes },
      target: 'the server process\'s highest VmRSS (every 250 ms) ≤ the bound',
      pass: t.rssMaxBytes !== null && t.rssMaxBytes <= t.rssBoundBytes,
    },
    p95_ratio_le_2: {
      value: { baseline_p95_ms: t.baselineP95, with_hostile_p95_ms: t.hostileP95, ratio },
      target: `ordinary viewers' latency p95 beside hostile runs ≤ ${TARGET_P95_RATIO} × without`,
      pass: ratio !== null && ratio <= TARGET_P95_RATIO,
    },
  };
}

/** The middle value (the lower of the two middles for an even count); null for none. */
export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? null;
}
