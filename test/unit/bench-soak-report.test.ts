import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { p95Ratio, p95Ratios, soakTargets, summarizeDelays } from '../../bench/soak-report.js';

describe('bench:soak report', () => {
  test('the p95 ratio is hostile over baseline, to two decimals, and null without both figures', () => {
    assert.equal(p95Ratio(30, 45), 1.5);
    assert.equal(p95Ratio(30, 100), 3.33);
    assert.equal(p95Ratio(null, 45), null);
    assert.equal(p95Ratio(30, null), null);
    assert.equal(p95Ratio(0, 45), null);
  });

  test('the three ratios: with hostile over baseline, with hostile over control, control over baseline', () => {
    assert.deepEqual(p95Ratios({ baseline: 25, control: 309, withHostile: 600 }), { p95_ratio: 24, p95_ratio_vs_control: 1.94, control_ratio: 12.36 });
    assert.deepEqual(p95Ratios({ baseline: 25, control: null, withHostile: null }), { p95_ratio: null, p95_ratio_vs_control: null, control_ratio: null });
  });

  test('event-loop readings give the worst and median window p99 and the longest delay', () => {
    const r = (p99: number, max: number) => ({ p50: 1, p99, max, max_since_start: max });
    assert.deepEqual(summarizeDelays([r(12, 20), r(3000, 4200), r(15, 30)]), { readings: 3, p99_worst_window: 3000, p99_median_window: 15, max: 4200 });
    assert.deepEqual(summarizeDelays([]), { readings: 0, p99_worst_window: null, p99_median_window: null, max: null });
  });

  test('every target passes for a server that stayed up, under its bound, at most twice as slow as beside benign runs', () => {
    // 10 times the baseline, but the control phase (as many benign runs) was already 6 times it.
    const t = soakTargets({ serverUp: true, serverDown: null, rssMaxBytes: 500e6, rssBoundBytes: 1024 * 1024 * 1024, p95: { baseline: 30, control: 180, withHostile: 300 } });
    assert.equal(t.server_up.pass, true);
    assert.equal(t.rss_under_bound.pass, true);
    assert.equal(t.p95_ratio_vs_control_le_2.pass, true);
    assert.deepEqual(t.p95_ratio_vs_control_le_2.value, { control_p95_ms: 180, with_hostile_p95_ms: 300, ratio: 1.67, baseline_p95_ms: 30, control_ratio: 6, ratio_vs_baseline: 10 });
  });

  test('a server that died, grew past the bound or slowed ordinary viewers more than twice the control fails', () => {
    const t = soakTargets({ serverUp: false, serverDown: 'exited with code 7', rssMaxBytes: 2e9, rssBoundBytes: 1e9, p95: { baseline: 30, control: 30, withHostile: 61 } });
    assert.equal(t.server_up.pass, false);
    assert.deepEqual(t.server_up.value, { up: false, what_happened: 'exited with code 7' });
    assert.equal(t.rss_under_bound.pass, false);
    assert.equal(t.p95_ratio_vs_control_le_2.pass, false);
  });

  test('a phase without latency samples fails the ratio target rather than passing it', () => {
    const noHostile = soakTargets({ serverUp: true, serverDown: null, rssMaxBytes: null, rssBoundBytes: 1e9, p95: { baseline: 30, control: 40, withHostile: null } });
    assert.equal(noHostile.p95_ratio_vs_control_le_2.pass, false);
    assert.equal(noHostile.rss_under_bound.pass, false);
    const noControl = soakTargets({ serverUp: true, serverDown: null, rssMaxBytes: 1, rssBoundBytes: 1e9, p95: { baseline: 30, control: null, withHostile: 40 } });
    assert.equal(noControl.p95_ratio_vs_control_le_2.pass, false);
  });
});
