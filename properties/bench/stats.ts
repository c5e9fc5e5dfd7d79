/** Small statistics for benchmark figures. Missing values (a search that found nothing) are +∞. */

/** The q-quantile (0 < q ≤ 1) by the nearest-rank method: an observed value, or +∞. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[rank - 1]!;
}

/** The median: the mean of the two middle values for an even count (+∞ if one of them is). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  if (sorted.length % 2 === 1) return sorted[mid]!;
  const [a, b] = [sorted[mid - 1]!, sorted[mid]!];
  return b === Number.POSITIVE_INFINITY ? b : (a + b) / 2;
}

/** JSON has no +∞: a figure that is not finite is recorded as null. */
export const finiteOrNull = (x: number): number | null => (Number.isFinite(x) ? x : null);

export const round = (x: number, digits = 0): number => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};
