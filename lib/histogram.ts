/**
 * Mergeable fixed log-bucket histogram (the DDSketch mapping with a fixed γ). Bucket i holds values
 * in (γ^(i-1), γ^i]; its representative 2γ^i/(γ+1) is within RELATIVE_ACCURACY of every value in it,
 * so any quantile read from merged counts is within 2% (relative) of the exact quantile of the samples
 * (for values ≥ 1; values below 1 share bucket 0, represented as 0). Buckets are fixed, so histograms
 * from any windows, dimensions and processes merge by adding counts: percentiles stay exact to that
 * bound after any re-aggregation, in TypeScript or in SQL (sumMap over the key/count arrays).
 */

export const RELATIVE_ACCURACY = 0.02;
const GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY);
const LN_GAMMA = Math.log(GAMMA);
/** Highest bucket: γ^MAX_KEY ≈ 2.4e8 covers durations up to ~66 hours in ms. */
export const MAX_KEY = 480;

/** Sparse histogram: bucket key → count. */
export type Histogram = Map<number, number>;

export function bucketKey(value: number): number {
  if (!(value >= 1)) return 0;
  const k = Math.ceil(Math.log(value) / LN_GAMMA);
  return Math.min(Math.max(k, 1), MAX_KEY);
}

export function bucketValue(key: number): number {
  if (key <= 0) return 0;
  return (2 * Math.pow(GAMMA, key)) / (GAMMA + 1);
}

export function emptyHistogram(): Histogram {
  return new Map();
}

export function addToHistogram(h: Histogram, value: number, count = 1): void {
  const k = bucketKey(value);
  h.set(k, (h.get(k) ?? 0) + count);
}

export function mergeHistograms(a: Histogram, b: Histogram): Histogram {
  const out = new Map(a);
  for (const [k, c] of b) out.set(k, (out.get(k) ?? 0) + c);
  return out;
}

/** Sorted parallel arrays, the storage form (ClickHouse Array(UInt16) / Array(Int64)). */
export function histogramToArrays(h: Histogram, into?: { keys: number[]; counts: number[] }): { keys: number[]; counts: number[] } {
  const out = into ?? { keys: [], counts: [] };
  const n = sortBuckets(h, out.keys, out.counts);
  out.keys.length = n;
  out.counts.length = n;
  return out;
}

/**
 * The non-zero buckets of `h` in key order into keys[0, n) and counts[0, n); returns n. What the
 * arrays hold from n on is left as it was: a writer that reuses them reads n entries (cutting them
 * to length, or emptying them first, would drop their storage, and the next histogram grow it again).
 */
export function sortBuckets(h: Histogram, keys: number[], counts: number[]): number {
  // An insertion sort: a window's histograms hold few buckets, and spread + filter + sort + map
  // made four arrays and a sort's work space for each of the three histograms of every metrics
  // record. Map#forEach with a shared callback and state: for…of made a [key, count] array per
  // bucket, a callback closing over the arrays a closure per call.
  fill.keys = keys;
  fill.counts = counts;
  fill.n = 0;
  h.forEach(insertBucket, fill);
  fill.keys = fill.counts = NONE;
  return fill.n;
}

const NONE: number[] = [];
const fill = { keys: NONE, counts: NONE, n: 0 };

function insertBucket(this: typeof fill, c: number, k: number): void {
  if (c === 0) return;
  const { keys, counts } = this;
  let i = this.n++;
  for (; i > 0 && (keys[i - 1] as number) > k; i--) {
    keys[i] = keys[i - 1] as number;
    counts[i] = counts[i - 1] as number;
  }
  keys[i] = k;
  counts[i] = c;
}

export function histogramFromArrays(keys: readonly number[], counts: readonly number[]): Histogram {
  const h: Histogram = new Map();
  keys.forEach((k, i) => h.set(k, (h.get(k) ?? 0) + (counts[i] ?? 0)));
  return h;
}

export function histogramCount(h: Histogram): number {
  let n = 0;
  for (const c of h.values()) n += c;
  return n;
}

/**
 * The q-quantile (0..1) by the nearest-rank rule: the value of rank ceil(q·n) (1-based) in sorted
 * order, read from the bucket holding that rank. null when empty.
 */
export function histogramQuantile(h: Histogram, q: number): number | null {
  const n = histogramCount(h);
  if (n <= 0) return null;
  const rank = Math.max(1, Math.ceil(q * n));
  let seen = 0;
  for (const k of [...h.keys()].sort((x, y) => x - y)) {
    seen += h.get(k) ?? 0;
    if (seen >= rank) return bucketValue(k);
  }
  return bucketValue(MAX_KEY);
}
