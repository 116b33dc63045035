import { gammaln, median, medianAbsoluteDeviation, probit } from 'simple-statistics';

/**
 * The detector's statistics: small pure functions, table-tested in stats.test.ts.
 * EWMA and CUSUM are written here; median and MAD come from simple-statistics.
 */

/** 1.4826 × MAD estimates σ for normally distributed data. */
export const MAD_TO_SIGMA = 1.4826;

/**
 * Exponentially weighted moving average: α·x + (1 − α)·prev. The first observation (prev = null)
 * is taken as is. α in (0, 1]; α = 1 keeps only the latest value.
 */
export function ewmaUpdate(prev: number | null, x: number, alpha: number): number {
  if (!(alpha > 0 && alpha <= 1)) throw new RangeError(`ewma alpha must be in (0, 1], got ${alpha}`);
  return prev === null ? x : alpha * x + (1 - alpha) * prev;
}

/** α of an EWMA whose centre of mass matches a simple moving average over `span` points: 2 / (span + 1). */
export function ewmaAlphaForSpan(span: number): number {
  if (!(span >= 1)) throw new RangeError(`ewma span must be ≥ 1, got ${span}`);
  return 2 / (span + 1);
}

/**
 * One step of the upper one-sided CUSUM on standardised scores (Page, 1954):
 * S_t = max(0, S_{t−1} + min(z_t, zCap) − k). k (the reference value, about half the shift to
 * detect, in σ) drains the statistic under the null; zCap bounds what one outlier window can add,
 * so a single spike cannot cross the decision interval h on its own when zCap − k < h.
 */
export function cusumUpdate(prev: number, z: number, k: number, zCap = Infinity): number {
  if (!Number.isFinite(z)) return prev;
  return Math.max(0, prev + Math.min(z, zCap) - k);
}

export interface RobustZ {
  median: number;
  /** Raw median absolute deviation (not scaled). */
  mad: number;
  /** σ estimate used as the denominator (1.4826·MAD, floored). */
  scale: number;
  z: number;
}

export interface RobustZOptions {
  /** Absolute lower bound of the scale. */
  minScale?: number;
  /** Lower bound of the scale relative to |median|. */
  minScaleRel?: number;
  /** null below this many history points. Default 1. */
  minHistory?: number;
}

/**
 * Robust z-score of x against a history: (x − median) / max(1.4826·MAD, minScale, minScaleRel·|median|).
 * The floors keep a flat history (MAD = 0) from turning every small change into an infinite score.
 * null when the history holds fewer than minHistory points.
 */
export function robustZ(x: number, history: readonly number[], opts: RobustZOptions = {}): RobustZ | null {
  if (history.length === 0 || history.length < (opts.minHistory ?? 1)) return null;
  const m = median(history);
  const mad = medianAbsoluteDeviation(history);
  const scale = Math.max(MAD_TO_SIGMA * mad, opts.minScale ?? 0, (opts.minScaleRel ?? 0) * Math.abs(m), Number.MIN_VALUE);
  return { median: m, mad, scale, z: (x - m) / scale };
}

/** Fixed-capacity ring of the latest values (push drops the oldest beyond capacity). */
export function pushBounded<T>(arr: T[], x: T, capacity: number): void {
  arr.push(x);
  while (arr.length > capacity) arr.shift();
}

/** How many of the values are true. */
export function countTrue(flags: readonly boolean[]): number {
  let n = 0;
  for (const f of flags) if (f) n++;
  return n;
}

/**
 * z of a one-sided upper-tail probability: the z with P(Z ≥ z) = p. Beyond double precision of
 * the probit the tail asymptote √(−2 ln p − ln(−2 ln p) − ln 2π) is used; capped at 40.
 */
export function zFromUpperTail(p: number): number {
  if (!(p < 1)) return -40;
  if (!(p > 0)) return 40;
  if (p > 0.5) return -zFromUpperTail(1 - p);
  if (p >= 1e-15) return Math.min(40, -probit(p));
  const l = -2 * Math.log(p);
  return Math.min(40, Math.sqrt(l - Math.log(l) - Math.log(2 * Math.PI)));
}

function tailSum(first: number, ratio: (k: number) => number, from: number, to: number): number {
  let term = first;
  let sum = 0;
  for (let k = from; k <= to && term > 0; k++) {
    sum += term;
    if (term < sum * 1e-12) break;
    term *= ratio(k);
  }
  return Math.min(1, sum);
}

/** P(X ≥ x) for X ~ Poisson(λ), summed over the tail (accurate for tiny tails). */
export function poissonUpperTail(x: number, lambda: number): number {
  const k0 = Math.ceil(x);
  if (k0 <= 0) return 1;
  if (!(lambda > 0)) return 0;
  const first = Math.exp(k0 * Math.log(lambda) - lambda - gammaln(k0 + 1));
  return tailSum(first, (k) => lambda / (k + 1), k0, k0 + 100_000);
}

/** P(X ≥ x) for X ~ Binomial(n, p), summed over the tail. */
export function binomialUpperTail(x: number, n: number, p: number): number {
  const k0 = Math.ceil(x);
  if (k0 <= 0) return 1;
  if (k0 > n || !(p > 0)) return 0;
  if (p >= 1) return 1;
  const first = Math.exp(gammaln(n + 1) - gammaln(k0 + 1) - gammaln(n - k0 + 1) + k0 * Math.log(p) + (n - k0) * Math.log(1 - p));
  return tailSum(first, (k) => ((n - k) / (k + 1)) * (p / (1 - p)), k0, n);
}

/**
 * Exact one-sided test of a count against its expected value, on the quasi-Poisson scale: x events
 * where λ were expected, with dispersion φ ≥ 1 (variance φ·λ) read as x/φ ~ Poisson(λ/φ).
 * Returns z with P(Z ≥ z) = P(X ≥ x); 0 when nothing was expected and nothing seen.
 */
export function poissonExcessZ(x: number, lambda: number, phi = 1): number {
  const f = Math.max(1, phi);
  if (!(lambda > 0)) return x > 0 ? 40 : 0;
  return zFromUpperTail(poissonUpperTail(x / f, lambda / f));
}

/**
 * Exact conditional test of two Poisson rates (x events over exposure ex against y over ey):
 * given n = x + y, X ~ Binomial(n, ex / (ex + ey)) when the rates are equal. Counts are read on the
 * quasi-Poisson scale (divided by φ, rounded). z with P(Z ≥ z) = P(X ≥ x | n); 0 without events.
 */
export function rateRatioZ(x: number, ex: number, y: number, ey: number, phi = 1): number {
  const f = Math.max(1, phi);
  if (!(ex > 0 && ey > 0)) return 0;
  const xs = Math.round(x / f);
  const n = xs + Math.round(y / f);
  if (n === 0) return 0;
  return zFromUpperTail(binomialUpperTail(xs, n, ex / (ex + ey)));
}

/**
 * Pearson dispersion of counts against their expected values: Σ (x − μ)² / μ over the points,
 * divided by their number (1 for Poisson counts; > 1 when events cluster). Points with μ ≤ 0 are
 * skipped; 1 without any point.
 */
export function pearsonDispersion(points: ReadonlyArray<{ count: number; expected: number }>): number {
  let chi2 = 0;
  let n = 0;
  for (const { count, expected } of points) {
    if (!(expected > 0)) continue;
    chi2 += ((count - expected) ** 2) / expected;
    n++;
  }
  return n === 0 ? 1 : chi2 / n;
}
