/**
 * The pure part of bench:soak's report: the p95 ratios between its three phases, the server's
 * event-loop delay over the windows it reported, and the targets. Kept apart so it can be tested.
 */

export interface Check {
  value: unknown;
  target: string;
  pass: boolean;
}

/** How many times slower the ordinary viewers' p95 was in one phase than in another (to two decimals); null when either has no p95 (or the reference is 0). */
export function p95Ratio(referenceP95: number | null, p95: number | null): number | null {
  if (referenceP95 === null || p95 === null || referenceP95 <= 0) return null;
  return Math.round((p95 / referenceP95) * 100) / 100;
}

/** The ordinary viewers' p95 in each phase (null: no samples, or the phase did not run). */
export interface PhaseP95s {
  baseline: number | null;
  control: number | null;
  withHostile: number | null;
}

/**
 * The three ratios: with hostile ÷ baseline (`p95_ratio`, hostility and concurrency together),
 * with hostile ÷ control (`p95_ratio_vs_control`, what hostility alone costs: the target) and
 * control ÷ baseline (`control_ratio`, what the extra runs cost however benign).
 */
export function p95Ratios(p: PhaseP95s): { p95_ratio: number | null; p95_ratio_vs_control: number | null; control_ratio: number | null } {
  return {
    p95_ratio: p95Ratio(p.baseline, p.withHostile),
    p95_ratio_vs_control: p95Ratio(p.control, p.withHostile),
    control_ratio: p95Ratio(p.baseline, p.control),
  };
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
  p95: PhaseP95s;
}

export function soakTargets(t: TargetInputs): { server_up: Check; rss_under_bound: Check; p95_ratio_vs_control_le_2: Check } {
  const ratios = p95Ratios(t.p95);
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
    p95_ratio_vs_control_le_2: {
      value: {
        control_p95_ms: t.p95.control,
        with_hostile_p95_ms: t.p95.withHostile,
        ratio: ratios.p95_ratio_vs_control,
        // Figures, not targets: what the same number of benign runs costs, and both together.
        baseline_p95_ms: t.p95.baseline,
        control_ratio: ratios.control_ratio,
        ratio_vs_baseline: ratios.p95_ratio,
      },
      target: `ordinary viewers' latency p95 beside hostile runs ≤ ${TARGET_P95_RATIO} × beside as many benign runs (the control phase)`,
      pass: ratios.p95_ratio_vs_control !== null && ratios.p95_ratio_vs_control <= TARGET_P95_RATIO,
    },
  };
}

/** The middle value (the lower of the two middles for an even count); null for none. */
export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? null;
}
