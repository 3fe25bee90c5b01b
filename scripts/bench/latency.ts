/**
 * Response times to the microsecond. autocannon's own histogram keeps whole milliseconds, so a
 * route answered in 0.07 ms read "p50 0 ms" and p99 ≤ 3 × p50 could not be judged below 1 ms.
 * Its 'response' event carries each response's time as a float, which this records: one counter
 * per microsecond up to BUCKETS (O(1) per response, 400 KiB however long the run), the rare
 * slower ones kept as they are.
 */
const BUCKETS = 100_000; // 100 ms

export interface LatencySummary {
  readonly mean: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

export class LatencyRecorder {
  private readonly counts = new Uint32Array(BUCKETS);
  private readonly slow: number[] = [];
  private n = 0;
  private sum = 0;
  private max = 0;

  record(ms: number): void {
    const us = Math.round(ms * 1000);
    if (us < BUCKETS) this.counts[us]!++;
    else this.slow.push(us);
    this.n++;
    this.sum += us;
    if (us > this.max) this.max = us;
  }

  get count(): number {
    return this.n;
  }

  /** In milliseconds, to the microsecond; all 0 when nothing was recorded. */
  summary(): LatencySummary {
    const ms = (us: number): number => us / 1000;
    return { mean: this.n ? ms(Math.round(this.sum / this.n)) : 0, p50: ms(this.percentile(50)), p99: ms(this.percentile(99)), max: ms(this.max) };
  }

  /** The smallest recorded value with at least p % of the values at or below it (nearest rank). */
  private percentile(p: number): number {
    if (this.n === 0) return 0;
    const rank = Math.max(1, Math.ceil((p / 100) * this.n));
    let seen = 0;
    for (let us = 0; us < BUCKETS; us++) {
      seen += this.counts[us]!;
      if (seen >= rank) return us;
    }
    const slow = [...this.slow].sort((a, b) => a - b);
    return slow[rank - seen - 1]!;
  }
}
