import { describe, expect, it } from 'vitest';
import { DIMENSIONS, emptyDims, type Dims } from '../schemas/events.js';
import { dimsKey } from './accumulator.js';
import { deserializePartition } from './snapshot.js';
import { intern, INTERN_POOL_MAX, internPoolSize, newSession, type Session } from './session.js';

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
