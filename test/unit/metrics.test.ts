import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SampleWindow, StreamMetrics } from '../../src/session/metrics.js';

function windowOf(size: number, values: number[]): SampleWindow {
  const w = new SampleWindow(size);
  for (const v of values) w.add(v);
  return w;
}

describe('SampleWindow', () => {
  test('an empty window has no average and no percentile', () => {
    const w = new SampleWindow(4);
    assert.equal(w.size, 0);
    assert.equal(w.average(), null);
    assert.equal(w.percentile(50), null);
  });

  test('the average is the mean of the samples added so far', () => {
    const w = windowOf(8, [10, 20, 60]);
    assert.equal(w.size, 3);
    assert.equal(w.average(), 30);
  });

  test('size stops growing at the window length', () => {
    const w = windowOf(3, [1, 2, 3, 4, 5, 6, 7]);
    assert.equal(w.size, 3);
  });

  test('once the window wraps, the average covers only the latest samples', () => {
    // 1 and 2 are overwritten by 4 and 5.
    const w = windowOf(3, [1, 2, 3, 4, 5]);
    assert.equal(w.average(), 4);
  });

  test('after many wraps the average still covers exactly the latest window', () => {
    const values = Array.from({ length: 1003 }, (_, i) => i);
    const w = windowOf(10, values);
    // latest ten: 993..1002
    assert.equal(w.average(), 997.5);
  });

  test('percentile 0 is the smallest and 100 the largest sample', () => {
    const w = windowOf(8, [5, 1, 9, 3]);
    assert.equal(w.percentile(0), 1);
    assert.equal(w.percentile(100), 9);
  });

  test('percentile 50 of an odd number of samples is the median', () => {
    const w = windowOf(8, [50, 10, 40, 20, 30]);
    assert.equal(w.percentile(50), 30);
  });

  test('once the window wraps, percentiles ignore overwritten samples', () => {
    // 1000 and 900 are overwritten; the window holds 1, 2, 3.
    const w = windowOf(3, [1000, 900, 1, 2, 3]);
    assert.equal(w.percentile(100), 3);
    assert.equal(w.percentile(0), 1);
  });

  test('the percentile does not reorder the stored samples', () => {
    const w = windowOf(3, [30, 10, 20]);
    assert.equal(w.percentile(50), 20);
    w.add(40); // overwrites 30, the oldest
    assert.equal(w.average(), 70 / 3);
    assert.equal(w.percentile(100), 40);
  });
});

describe('StreamMetrics', () => {
  test('starts with zeroed counters and an empty latency window', () => {
    const m = new StreamMetrics();
    assert.equal(m.totalEventsProcessed, 0);
    assert.equal(m.totalBatches, 0);
    assert.equal(m.rejectedEvents, 0);
    assert.equal(m.latency.size, 0);
  });
});
