import { errorFunction } from 'simple-statistics';
import { MAX_KEY, bucketKey, type Histogram } from '../../lib/histogram.js';

/** Seeded randomness for the synthetic series: reproducible runs, no Math.random. */
export type Rng = () => number;

/** mulberry32: small, fast, good enough for simulation noise. */
export function createRng(seed: number): Rng {
  let a = seed >>> 0;
  return function next(): number {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function normal(rng: Rng): number {
  const u = Math.max(rng(), Number.MIN_VALUE);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
}

/** Poisson draw: Knuth's product method for small means, a normal approximation above 30. */
export function poisson(rng: Rng, mean: number): number {
  if (!(mean > 0)) return 0;
  if (mean > 30) return Math.max(0, Math.round(mean + Math.sqrt(mean) * normal(rng)));
  const limit = Math.exp(-mean);
  let k = 0;
  let p = rng();
  while (p > limit) {
    k++;
    p *= rng();
  }
  return k;
}

/** Binomial draw: exact for small n, Poisson for rare events, normal otherwise. */
export function binomial(rng: Rng, n: number, p: number): number {
  if (n <= 0 || p <= 0) return 0;
  if (p >= 1) return n;
  if (n < 40) {
    let k = 0;
    for (let i = 0; i < n; i++) if (rng() < p) k++;
    return k;
  }
  if (n * p < 30) return Math.min(n, poisson(rng, n * p));
  const sd = Math.sqrt(n * p * (1 - p));
  return Math.min(n, Math.max(0, Math.round(n * p + sd * normal(rng))));
}

/** Sum of `count` exponential durations with the given mean. */
export function exponentialSum(rng: Rng, count: number, mean: number): number {
  let s = 0;
  for (let i = 0; i < count; i++) s -= mean * Math.log(Math.max(rng(), Number.MIN_VALUE));
  return s;
}

const bucketProbCache = new Map<string, Array<[number, number]>>();

/** P(bucket) of a log-normal over the histogram buckets (cached per quantised median and σ). */
function lognormalBuckets(medianMs: number, sigma: number): Array<[number, number]> {
  const q = medianMs;
  const key = `${q}|${sigma}`;
  const hit = bucketProbCache.get(key);
  if (hit) return hit;
  const mu = Math.log(q);
  const cdf = (x: number): number => (x <= 0 ? 0 : 0.5 * (1 + errorFunction((Math.log(x) - mu) / (sigma * Math.SQRT2))));
  const lo = bucketKey(Math.exp(mu - 5 * sigma));
  const hi = Math.min(MAX_KEY, bucketKey(Math.exp(mu + 5 * sigma)));
  const gamma = 1.02 / 0.98;
  const out: Array<[number, number]> = [];
  for (let k = lo; k <= hi; k++) {
    const p = cdf(Math.pow(gamma, k)) - cdf(Math.pow(gamma, k - 1));
    if (p > 1e-7) out.push([k, p]);
  }
  if (bucketProbCache.size > 10_000) bucketProbCache.clear();
  bucketProbCache.set(key, out);
  return out;
}

/**
 * A histogram of n log-normal samples. Below 200 samples each one is drawn. Above, the histogram is
 * the expected bucket counts of a log-normal whose location carries the sampling noise of the p90
 * (sd of a sample quantile in z units: sqrt(p(1 − p) / n) / φ(z_p) ≈ 1.709 / √n): the percentiles the
 * detector reads get realistic noise at a fraction of the cost of n draws.
 */
export function lognormalHistogram(rng: Rng, n: number, medianMs: number, sigma: number): Histogram {
  const h: Histogram = new Map();
  if (n < 200) {
    for (let i = 0; i < n; i++) {
      const k = bucketKey(medianMs * Math.exp(sigma * normal(rng)));
      h.set(k, (h.get(k) ?? 0) + 1);
    }
    return h;
  }
  const shifted = medianMs * Math.exp((sigma * 1.709 * normal(rng)) / Math.sqrt(n));
  // Quantise the location to 0.5% steps so the bucket probabilities are cached.
  const q = Math.exp(Math.round(Math.log(shifted) / 0.005) * 0.005);
  for (const [k, p] of lognormalBuckets(q, sigma)) {
    const c = Math.round(n * p);
    if (c > 0) h.set(k, c);
  }
  return h;
}
