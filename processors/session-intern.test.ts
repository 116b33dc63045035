import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DIMENSIONS, emptyDims, type Dimension, type Dims } from '../schemas/events.js';
import { dimsKey } from './accumulator.js';
import { deserializePartition } from './snapshot.js';
import {
  DIMS_POOL_MAX, dimsPoolSize, intern, INTERN_POOL_MAX, internPoolSize, newSession, pooledDimsOfKey, sharedDims, type Session,
} from './session.js';

describe('intern pool of dimension values', () => {
  it('gives back an equal string, and holds at most INTERN_POOL_MAX strings (it starts over at the bound)', () => {
    for (let i = 0; i < INTERN_POOL_MAX + 1000; i++) {
      const s = `value-${i}`;
      expect(intern(s)).toBe(s);
      expect(internPoolSize()).toBeLessThanOrEqual(INTERN_POOL_MAX);
    }
    // Started over once: the 1,000 strings after the bound are what it holds (plus nothing else).
    expect(internPoolSize()).toBe(1000);
    expect(intern('value-0')).toBe('value-0');
  });

  it('leaves a new session\'s dims and key equal to what it was given', () => {
    const dims: Dims = { ...emptyDims(), cdn: 'cdn-a', country: 'US', browser: 'Chrome' };
    const s = newSession('s1', dims, 1000, 0);
    expect(s.dims).toEqual(dims);
    expect(s.dims).not.toBe(dims);
    expect(s.dimsKey).toBe(dimsKey(dims));
  });

  it('restores a checkpointed session without a cached key (older format) with its key computed', () => {
    const dims: Dims = { ...emptyDims(), cdn: 'cdn-b', country: 'DE' };
    const { dimsKey: _dropped, ...old } = newSession('s2', dims, 1000, 0);
    const ps = deserializePartition({ sessions: [old as Session], open: [], corrections: [], closedBeforeMs: null, counters: {} });
    const s = ps.sessions.get('s2');
    expect(s?.dimsKey).toBe(dimsKey(dims));
    expect(Object.keys(s?.dims ?? {})).toEqual([...DIMENSIONS]);
    expect(s?.dims).toEqual(dims);
  });
});

describe('shared dims of sessions', () => {
  const WINDOW_DIMS: readonly Dimension[] = ['cdn', 'country', 'asn', 'streamType', 'playerName', 'deviceType', 'os', 'browser'];
  /** What a session kept before the pool: the kept dimensions' values, '' for the others. */
  const projected = (d: Dims, kept: readonly Dimension[]): Dims => {
    const out = emptyDims();
    for (const k of kept) out[k] = d[k];
    return out;
  };

  it('one object for sessions with equal dims (each event brings its own), equal to what each was given', () => {
    const a = newSession('a', { ...emptyDims(), cdn: 'cdn-a', country: 'FR' }, 1000, 0);
    const b = newSession('b', { ...emptyDims(), cdn: 'cdn-a', country: 'FR' }, 1000, 0);
    const c = newSession('c', { ...emptyDims(), cdn: 'cdn-b', country: 'FR' }, 1000, 0);
    expect(b.dims).toBe(a.dims);
    expect(b.dimsKey).toBe(a.dimsKey);
    expect(c.dims).not.toBe(a.dims);
    expect(c.dims).toEqual({ ...emptyDims(), cdn: 'cdn-b', country: 'FR' });
    expect(pooledDimsOfKey(a.dimsKey)).toBe(a.dims);
  });

  it('two tuples with one key (values holding U+0000): each session keeps its own values', () => {
    const a: Dims = { ...emptyDims(), cdn: 'q\u0000r' };
    const b: Dims = { ...emptyDims(), cdn: 'q', country: 'r\u0000' };
    expect(dimsKey(a)).toBe(dimsKey(b));
    expect(newSession('a', a, 1000, 0).dims).toEqual(a);
    expect(newSession('b', b, 1000, 0).dims).toEqual(b);
    expect(newSession('a2', { ...a }, 1000, 0).dims).toEqual(a);
  });

  const dimValue = fc.oneof(fc.constantFrom('', 'cdn-a', 'x'), fc.string({ maxLength: 4 }), fc.constantFrom('\u0000', 'a\u0000', '\u0000b'));
  const dimsArb = fc.record(Object.fromEntries(DIMENSIONS.map((d) => [d, dimValue])) as Record<Dimension, fc.Arbitrary<string>>) as fc.Arbitrary<Dims>;

  it('for any dims and kept dimensions: the kept values (others \'\'), their dimsKey, and never another tuple\'s object', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(dimsArb, fc.constantFrom<readonly Dimension[]>(DIMENSIONS, WINDOW_DIMS)), { minLength: 1, maxLength: 30 }), (cases) => {
        for (const [d, kept] of cases) {
          const want = projected(d, kept);
          const got = sharedDims(d, kept);
          expect(got.dims).toEqual(want);
          expect(got.key).toBe(dimsKey(want));
          // Values holding U+0000 can give two tuples one key: each still gets its own values.
          expect(sharedDims({ ...want }, DIMENSIONS).dims).toEqual(want);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('holds at most DIMS_POOL_MAX tuples (it starts over at the bound), and stays right after', () => {
    const before = dimsPoolSize();
    for (let i = 0; i < DIMS_POOL_MAX + 10; i++) {
      sharedDims({ ...emptyDims(), contentId: `content-${i}` });
      expect(dimsPoolSize()).toBeLessThanOrEqual(DIMS_POOL_MAX);
    }
    // Cleared once, on reaching the bound: what came after is what it holds.
    expect(dimsPoolSize()).toBe(before + 10);
    const old = sharedDims({ ...emptyDims(), contentId: 'content-0' });
    expect(old.dims).toEqual({ ...emptyDims(), contentId: 'content-0' });
    expect(sharedDims({ ...emptyDims(), contentId: 'content-0' }).dims).toBe(old.dims);
  });
});
