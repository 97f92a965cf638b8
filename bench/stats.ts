/** Summary statistics of recorded durations and rates, as every benchmark phase reports them. */

/**
 * The `p`-th percentile (0–100) of `values` by the nearest-rank method; NaN when empty.
 * @example
 * ```ts
 * percentile([5, 1, 4, 2, 3], 50); // 3
 * percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 99); // 10
 * ```
 */
export function percentile(values: readonly number[], p: number): number {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`Percentile must be 0-100, got ${p}`);
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1];
}

/** p50, p99 and max of a set of durations, in milliseconds. */
export interface LatencySummary {
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
}

/** Summarizes durations (ms), rounded to 0.1 ms. */
export function summarize(durations: readonly number[]): LatencySummary {
  return {
    p50_ms: round(percentile(durations, 50), 1),
    p99_ms: round(percentile(durations, 99), 1),
    max_ms: round(percentile(durations, 100), 1),
  };
}

/** Events per second for `count` events over `ms` milliseconds, rounded to a whole number. */
export function perSecond(count: number, ms: number): number {
  return ms > 0 ? Math.round((count * 1000) / ms) : NaN;
}

/** Rounds to `digits` decimals, leaving NaN as is. */
export function round(value: number, digits = 0): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
