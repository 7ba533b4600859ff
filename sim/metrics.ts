/**
 * Small statistics used by the simulator's reports: percentiles, Jain's fairness index, and a
 * fixed-interval time series.
 *
 * @module
 */

/**
 * The `p`-th percentile (0..100) by the nearest-rank method: the smallest sample that at least
 * p% of the samples do not exceed. Sorts a copy; returns 0 for no samples.
 */
export function percentile(samples: ArrayLike<number>, p: number): number {
  if (samples.length === 0) return 0;
  const sorted = Float64Array.from(samples).sort();
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

/**
 * Jain's fairness index (sum x)^2 / (n * sum x^2): 1 when all shares are equal, 1/n when one
 * flow takes everything. Defined as 1 for no flows or all-zero shares.
 */
export function jainIndex(shares: readonly number[]): number {
  let sum = 0, sumSq = 0;
  for (const x of shares) {
    sum += x;
    sumSq += x * x;
  }
  if (shares.length === 0 || sumSq === 0) return 1;
  return (sum * sum) / (shares.length * sumSq);
}

/** Samples of one quantity at the end of each fixed interval. */
export class TimeSeries {
  /** Interval end times, seconds. */
  readonly t: number[] = [];
  /** Values, one per time. */
  readonly v: number[] = [];
  /** Appends a sample. */
  push(timeSeconds: number, value: number): void {
    this.t.push(timeSeconds);
    this.v.push(value);
  }
  /** Largest value, 0 when empty. */
  max(): number {
    return this.v.reduce((a, b) => Math.max(a, b), 0);
  }
}
