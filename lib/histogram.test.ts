import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  addToHistogram, bucketKey, bucketValue, emptyHistogram, histogramFromArrays, histogramQuantile, histogramToArrays,
  mergeHistograms, RELATIVE_ACCURACY,
} from './histogram.js';

function exactQuantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1] ?? NaN;
}

describe('log-bucket histogram', () => {
  it('every value is within the relative accuracy of its bucket representative', () => {
    fc.assert(fc.property(fc.double({ min: 1, max: 1e8, noNaN: true }), (v) => {
      expect(Math.abs(bucketValue(bucketKey(v)) - v) / v).toBeLessThanOrEqual(RELATIVE_ACCURACY + 1e-12);
    }));
  });

  it('quantiles of merged histograms are within 2% of the exact quantile of all samples', () => {
    const sample = fc.array(fc.integer({ min: 1, max: 600_000 }), { minLength: 1, maxLength: 200 });
    fc.assert(fc.property(sample, sample, fc.constantFrom(0.5, 0.9, 0.95, 0.99), (a, b, q) => {
      const ha = emptyHistogram();
      const hb = emptyHistogram();
      a.forEach((v) => addToHistogram(ha, v));
      b.forEach((v) => addToHistogram(hb, v));
      const exact = exactQuantile([...a, ...b], q);
      const got = histogramQuantile(mergeHistograms(ha, hb), q) ?? NaN;
      expect(Math.abs(got - exact) / exact).toBeLessThanOrEqual(RELATIVE_ACCURACY + 1e-12);
    }));
  });

  it('round-trips through the storage arrays and merges like sumMap', () => {
    const h = emptyHistogram();
    [5, 5, 900, 12_000].forEach((v) => addToHistogram(h, v));
    const { keys, counts } = histogramToArrays(h);
    expect(keys).toEqual([...keys].sort((x, y) => x - y));
    expect(histogramFromArrays(keys, counts)).toEqual(h);
    expect(histogramQuantile(emptyHistogram(), 0.5)).toBeNull();
    expect(bucketKey(0)).toBe(0);
  });

  it('storage arrays hold the non-zero buckets in key order, whatever the order they were added in', () => {
    const entries = fc.array(fc.tuple(fc.integer({ min: 0, max: 480 }), fc.integer({ min: -5, max: 5 })), { maxLength: 60 });
    fc.assert(fc.property(entries, (es) => {
      const h = new Map(es);
      const { keys, counts } = histogramToArrays(h);
      const expected = [...h].filter(([, c]) => c !== 0).sort(([x], [y]) => x - y);
      expect(keys).toEqual(expected.map(([k]) => k));
      expect(counts).toEqual(expected.map(([, c]) => c));
    }));
  });

  it('fills given arrays the same way, whatever they held before (longer or shorter)', () => {
    const entries = fc.array(fc.tuple(fc.integer({ min: 0, max: 480 }), fc.integer({ min: -5, max: 5 })), { maxLength: 60 });
    const into = { keys: [] as number[], counts: [] as number[] };
    fc.assert(fc.property(entries, fc.array(fc.integer(), { maxLength: 80 }), (es, stale) => {
      into.keys.push(...stale);
      into.counts.push(...stale.map((x) => -x));
      const h = new Map(es);
      const got = histogramToArrays(h, into);
      expect(got).toBe(into);
      expect(got).toEqual(histogramToArrays(h));
    }));
  });
});
