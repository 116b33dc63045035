import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  binomialUpperTail, countTrue, cusumUpdate, ewmaAlphaForSpan, ewmaUpdate, pearsonDispersion, poissonExcessZ, poissonUpperTail, pushBounded,
  rateRatioZ, robustZ, zFromUpperTail,
} from './stats.js';

describe('ewmaUpdate', () => {
  it.each([
    { prev: null, x: 7, alpha: 0.3, want: 7 },
    { prev: 10, x: 20, alpha: 0.5, want: 15 },
    { prev: 10, x: 20, alpha: 1, want: 20 },
    { prev: 10, x: 20, alpha: 0.1, want: 11 },
    { prev: -4, x: 4, alpha: 0.25, want: -2 },
  ])('prev $prev, x $x, α $alpha → $want', ({ prev, x, alpha, want }) => {
    expect(ewmaUpdate(prev, x, alpha)).toBeCloseTo(want, 12);
  });

  it.each([0, -0.1, 1.5, Number.NaN])('rejects α = %s', (alpha) => {
    expect(() => ewmaUpdate(1, 2, alpha)).toThrow(RangeError);
  });

  it('converges geometrically to a constant input', () => {
    let e: number | null = 0;
    for (let i = 0; i < 10; i++) e = ewmaUpdate(e, 1, 0.5);
    expect(e).toBeCloseTo(1 - 0.5 ** 10, 12);
  });

  it('stays within the range of its inputs (property)', () => {
    fc.assert(fc.property(fc.array(fc.double({ min: -1e6, max: 1e6, noNaN: true }), { minLength: 1 }), fc.double({ min: 0.01, max: 1, noNaN: true }), (xs, alpha) => {
      let e: number | null = null;
      for (const x of xs) e = ewmaUpdate(e, x, alpha);
      return e !== null && e >= Math.min(...xs) - 1e-6 && e <= Math.max(...xs) + 1e-6;
    }));
  });

  it.each([{ span: 1, want: 1 }, { span: 3, want: 0.5 }, { span: 179, want: 2 / 180 }])('α for span $span = $want', ({ span, want }) => {
    expect(ewmaAlphaForSpan(span)).toBeCloseTo(want, 12);
  });
});

describe('cusumUpdate', () => {
  it.each([
    { prev: 0, z: 0, k: 0.5, cap: Infinity, want: 0 },
    { prev: 0, z: -3, k: 0.5, cap: Infinity, want: 0 },
    { prev: 2, z: 1.5, k: 0.5, cap: Infinity, want: 3 },
    { prev: 2, z: -1, k: 0.5, cap: Infinity, want: 0.5 },
    { prev: 0, z: 100, k: 1, cap: 4, want: 3 },
    { prev: 1, z: Number.NaN, k: 1, cap: 4, want: 1 },
  ])('S $prev, z $z, k $k, cap $cap → $want', ({ prev, z, k, cap, want }) => {
    expect(cusumUpdate(prev, z, k, cap)).toBeCloseTo(want, 12);
  });

  it('a sustained shift crosses h after about h / (shift − k) steps; a single capped spike does not', () => {
    let s = 0;
    let steps = 0;
    while (s < 5) {
      s = cusumUpdate(s, 1.5, 0.5);
      steps++;
    }
    expect(steps).toBe(5);
    expect(cusumUpdate(0, 50, 0.5, 4)).toBeLessThan(5);
  });

  it('never goes negative (property)', () => {
    fc.assert(fc.property(fc.array(fc.double({ min: -100, max: 100, noNaN: true })), (zs) => {
      let s = 0;
      for (const z of zs) {
        s = cusumUpdate(s, z, 0.5, 4);
        if (s < 0) return false;
      }
      return true;
    }));
  });
});

describe('robustZ', () => {
  it.each([
    // median 3, MAD 1 → scale 1.4826
    { x: 6, hist: [1, 2, 3, 4, 5], opts: {}, median: 3, mad: 1, z: 3 / 1.4826 },
    // an outlier in the history barely moves median and MAD
    { x: 6, hist: [1, 2, 3, 4, 1000], opts: {}, median: 3, mad: 1, z: 3 / 1.4826 },
    // flat history: MAD 0, the absolute floor is the scale
    { x: 12, hist: [10, 10, 10, 10], opts: { minScale: 0.5 }, median: 10, mad: 0, z: 4 },
    // relative floor: 10% of the median
    { x: 130, hist: [100, 100, 100, 101], opts: { minScaleRel: 0.1 }, median: 100, mad: 0, z: 3 },
    { x: 2, hist: [1, 2, 3, 4, 5], opts: {}, median: 3, mad: 1, z: -1 / 1.4826 },
  ])('x $x against $hist', ({ x, hist, opts, median, mad, z }) => {
    const r = robustZ(x, hist, opts);
    expect(r?.median).toBeCloseTo(median, 9);
    expect(r?.mad).toBeCloseTo(mad, 9);
    expect(r?.z).toBeCloseTo(z, 9);
  });

  it('is null without enough history', () => {
    expect(robustZ(1, [], {})).toBeNull();
    expect(robustZ(1, [1, 2], { minHistory: 3 })).toBeNull();
  });

  it('is finite even for a constant history without floors', () => {
    expect(Number.isFinite(robustZ(1, [1, 1, 1], {})?.z)).toBe(true);
  });
});

describe('tail probabilities', () => {
  it.each([
    { x: 0, lambda: 3, want: 1 },
    { x: 1, lambda: 2, want: 1 - Math.exp(-2) },
    { x: 3, lambda: 1, want: 1 - Math.exp(-1) * (1 + 1 + 0.5) },
    { x: 5, lambda: 0, want: 0 },
  ])('Poisson P(X ≥ $x | λ $lambda)', ({ x, lambda, want }) => {
    expect(poissonUpperTail(x, lambda)).toBeCloseTo(want, 10);
  });

  it.each([
    { x: 0, n: 10, p: 0.3, want: 1 },
    { x: 2, n: 2, p: 0.5, want: 0.25 },
    { x: 2, n: 3, p: 0.5, want: 0.5 },
    { x: 11, n: 10, p: 0.5, want: 0 },
    { x: 1, n: 4, p: 0.1, want: 1 - 0.9 ** 4 },
  ])('binomial P(X ≥ $x | n $n, p $p)', ({ x, n, p, want }) => {
    expect(binomialUpperTail(x, n, p)).toBeCloseTo(want, 10);
  });

  it('stays accurate far in the tail', () => {
    // P(Poisson(1) ≥ 30) ≈ e⁻¹/30! (the first term dominates)
    const want = Math.exp(-1) / 2.652528598121910e32;
    expect(poissonUpperTail(30, 1) / want).toBeCloseTo(1, 1);
  });

  it.each([
    { p: 0.5, z: 0 },
    { p: 0.15865525393145707, z: 1 },
    { p: 2.866515718791939e-7, z: 5 },
    { p: 0.8413447460685429, z: -1 },
  ])('z of an upper tail $p = $z', ({ p, z }) => {
    // simple-statistics probit is an approximation: good to ~0.02 σ out to 5 σ, enough for thresholds.
    expect(zFromUpperTail(p)).toBeCloseTo(z, 1);
  });

  it('z is monotone and capped for vanishing tails', () => {
    expect(zFromUpperTail(1e-20)).toBeGreaterThan(zFromUpperTail(1e-14));
    expect(zFromUpperTail(1e-20)).toBeGreaterThan(9);
    expect(zFromUpperTail(0)).toBe(40);
  });
});

// Reference values computed independently (Python: exact Poisson / binomial sums, statistics.NormalDist
// for z); the probit of simple-statistics is good to ~0.02 σ, hence 1 decimal for z.
describe('count tests', () => {
  it.each([
    // P(Poisson(2) ≥ 3) = 1 − 5e⁻² = 0.32332 → z 0.4584
    { x: 3, lambda: 2, phi: 1, z: 0.4584 },
    // quasi-Poisson φ 2: 6 events where 2 were expected read as P(Poisson(1) ≥ 3) = 1 − 2.5/e = 0.08030 → z 1.4030
    { x: 6, lambda: 2, phi: 2, z: 1.403 },
    // 50 sessions × 3 windows at the evaluation's healthy stall rate (λ 5.66): 17 episodes, p 8.878e-5
    { x: 17, lambda: 5.66, phi: 1, z: 3.749 },
    // … 23 episodes, p 3.626e-8
    { x: 23, lambda: 5.66, phi: 1, z: 5.385 },
    // φ below 1 is read as 1 (Poisson is the least dispersion assumed)
    { x: 3, lambda: 2, phi: 0.5, z: 0.4584 },
  ])('poissonExcessZ($x, λ $lambda, φ $phi) = $z', ({ x, lambda, phi, z }) => {
    expect(poissonExcessZ(x, lambda, phi)).toBeCloseTo(z, 1);
  });

  it('poissonExcessZ without any expected event: 0 for none seen, the cap for any', () => {
    expect(poissonExcessZ(0, 0)).toBe(0);
    expect(poissonExcessZ(2, 0)).toBe(40);
  });

  it.each([
    // equal exposure: P(Binomial(10, ½) ≥ 8) = 56/1024 → z 1.6010
    { x: 8, ex: 1, y: 2, ey: 1, phi: 1, z: 1.601 },
    // the same counts doubled with φ 2
    { x: 16, ex: 5, y: 4, ey: 5, phi: 2, z: 1.601 },
    // exposure 1 : 2 → p ⅓; 3 of 3 events: (⅓)³ = 1/27 → z 1.7862
    { x: 3, ex: 1, y: 0, ey: 2, phi: 1, z: 1.786 },
    // exposure 1 : 3 → p ¼; 22 of 40 events: P(Binomial(40, ¼) ≥ 22) = 4.864e-5 → z 3.897
    { x: 22, ex: 100, y: 18, ey: 300, phi: 1, z: 3.897 },
  ])('rateRatioZ($x over $ex vs $y over $ey, φ $phi) = $z', ({ x, ex, y, ey, phi, z }) => {
    expect(rateRatioZ(x, ex, y, ey, phi)).toBeCloseTo(z, 1);
  });

  it('rateRatioZ is 0 without events or exposure', () => {
    expect(rateRatioZ(0, 1, 0, 1)).toBe(0);
    expect(rateRatioZ(5, 0, 1, 1)).toBe(0);
  });

  it.each([
    // ((3 − 2)²/2 + (1 − 2)²/2) / 2; a point with nothing expected is skipped
    { points: [{ count: 3, expected: 2 }, { count: 1, expected: 2 }, { count: 2, expected: 0 }], want: 0.5 },
    { points: [{ count: 4, expected: 1 }], want: 9 },
    { points: [], want: 1 },
  ])('pearsonDispersion %#', ({ points, want }) => {
    expect(pearsonDispersion(points)).toBeCloseTo(want, 12);
  });

  it('pearsonDispersion of Poisson draws is about 1', () => {
    // Poisson(4) by inversion on a fixed grid of uniforms: deterministic, no RNG dependency.
    const pts: Array<{ count: number; expected: number }> = [];
    for (let i = 0; i < 2_000; i++) {
      const u = (i + 0.5) / 2_000;
      let k = 0;
      let term = Math.exp(-4);
      let cdf = term;
      while (cdf < u) {
        k++;
        term *= 4 / k;
        cdf += term;
      }
      pts.push({ count: k, expected: 4 });
    }
    expect(pearsonDispersion(pts)).toBeCloseTo(1, 1);
  });
});

describe('bounded helpers', () => {
  it('pushBounded keeps the newest values', () => {
    const a: number[] = [];
    for (let i = 1; i <= 5; i++) pushBounded(a, i, 3);
    expect(a).toEqual([3, 4, 5]);
    expect(countTrue([true, false, true])).toBe(2);
  });
});
