import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LatencyRecorder } from '../../scripts/bench/latency';

/** Nearest-rank percentile of a plain sorted copy: what the recorder must agree with. */
function nearestRank(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(1, Math.ceil((p / 100) * sorted.length)) - 1]!;
}

describe('bench latency recorder', () => {
  it('when responses take under a millisecond, then p50 / p99 / max keep the microseconds', () => {
    const r = new LatencyRecorder();
    for (let i = 0; i < 98; i++) r.record(0.071);
    r.record(0.25);
    r.record(0.9);
    assert.deepEqual(r.summary(), { mean: 0.081, p50: 0.071, p99: 0.25, max: 0.9 });
  });

  it('when some responses are slower than the counters reach, then the percentiles still equal a sort of every value', () => {
    const r = new LatencyRecorder();
    const values: number[] = [];
    let seed = 7;
    for (let i = 0; i < 5000; i++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      // Whole microseconds from 0.01 ms to ~400 ms, a tail of them past the 100-ms counters.
      const ms = Math.round(((seed % 1000) / 1000) ** 4 * 400_000 + 10) / 1000;
      values.push(ms);
      r.record(ms);
    }
    const s = r.summary();
    assert.ok(values.some((v) => v > 100) && s.p99 > 100, 'the test reaches the slow list');
    assert.equal(s.p50, nearestRank(values, 50));
    assert.equal(s.p99, nearestRank(values, 99));
    assert.equal(s.max, Math.max(...values));
    assert.equal(r.count, values.length);
  });

  it('when nothing was recorded, then every figure is 0', () => {
    assert.deepEqual(new LatencyRecorder().summary(), { mean: 0, p50: 0, p99: 0, max: 0 });
  });
});
