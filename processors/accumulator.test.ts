import { describe, expect, it } from 'vitest';
import { bucketKey } from '../lib/histogram.js';
import { NO_COUNTS, addError, addTtfb, countsOf, emptyAcc, isEmptyAcc, mergeAcc } from './accumulator.js';

describe('accumulators without errors or TTFB counts', () => {
  it('share one empty map that refuses writes', () => {
    const a = emptyAcc();
    expect(a.errors).toBe(NO_COUNTS);
    expect(a.ttfbHist).toBe(NO_COUNTS);
    expect(() => a.errors.set('1:E1', 1)).toThrow(/NO_COUNTS/);
    expect(() => a.ttfbHist.set(3, 1)).toThrow(/NO_COUNTS/);
    expect(NO_COUNTS.size).toBe(0);
  });

  it('get a map of their own at the first count; the others stay without', () => {
    const [a, b, c] = [emptyAcc(), emptyAcc(), emptyAcc()];
    addError(a, 'E42', true);
    addError(a, 'E42', true);
    addError(a, 'E7', false);
    addTtfb(b, 120);
    addTtfb(b, 120);
    expect([...a.errors]).toEqual([['1:E42', 2], ['0:E7', 1]]);
    expect([...b.ttfbHist]).toEqual([[bucketKey(120), 2]]);
    expect(a.ttfbHist).toBe(NO_COUNTS);
    expect(b.errors).toBe(NO_COUNTS);
    expect(c.errors).toBe(NO_COUNTS);
    expect(c.ttfbHist).toBe(NO_COUNTS);
    expect(NO_COUNTS.size).toBe(0);
    expect(isEmptyAcc(c)).toBe(true);
    expect(isEmptyAcc(a)).toBe(false);
    // Merged with one that has counts, or with none: the counts as they are, NO_COUNTS untouched.
    expect([...mergeAcc(c, a).errors]).toEqual([...a.errors]);
    expect([...mergeAcc(b, c).ttfbHist]).toEqual([...b.ttfbHist]);
    expect(NO_COUNTS.size).toBe(0);
  });

  it('restored: NO_COUNTS when there are none, a map of their own otherwise', () => {
    expect(countsOf([])).toBe(NO_COUNTS);
    const m = countsOf([['1:E1', 3]]);
    expect(m).not.toBe(NO_COUNTS);
    m.set('0:E2', 1);
    expect([...m]).toEqual([['1:E1', 3], ['0:E2', 1]]);
  });
});
