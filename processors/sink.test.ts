import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { Row } from '../lib/store/types.js';
import { dayRuns, nextFlushAt, SINK_LINGER_MS, SINK_MIN_GAP_MS } from './sink.js';

const DAY = 86_400;

describe('sink inserts: one day per insert, offsets contiguous per partition', () => {
  it('cuts the buffer into runs of one day, in buffer order', () => {
    const row = (p: number, o: number, day: number): Row => ({ src_partition: p, src_offset: o, window_start: day * DAY + 10 });
    // Yesterday's on-time rows, today's, then a late delta for yesterday (higher offset).
    const rows = [row(0, 1, 5), row(1, 1, 5), row(0, 2, 6), row(1, 2, 6), row(0, 3, 5)];
    expect(dayRuns(rows).map((run) => run.map((r) => `${String(r.src_partition)}:${String(r.src_offset)}`))).toEqual([
      ['0:1', '1:1'], ['0:2', '1:2'], ['0:3'],
    ]);
  });

  it('whatever prefix of the runs is stored, each partition has stored exactly its offsets up to the highest stored', () => {
    fc.assert(fc.property(fc.array(fc.record({ p: fc.integer({ min: 0, max: 2 }), day: fc.integer({ min: 0, max: 2 }) }), { maxLength: 60 }), fc.nat(), (spec, cut) => {
      const next = [0, 0, 0];
      const rows: Row[] = spec.map(({ p, day }) => ({ src_partition: p, src_offset: next[p]!++, window_start: day * DAY }));
      const runs = dayRuns(rows);
      expect(runs.flat()).toEqual(rows);
      for (const run of runs) expect(new Set(run.map((r) => Math.floor(Number(r.window_start) / DAY))).size).toBe(1);
      const stored = runs.slice(0, runs.length === 0 ? 0 : cut % (runs.length + 1)).flat();
      for (const p of [0, 1, 2]) {
        const offsets = stored.filter((r) => r.src_partition === p).map((r) => Number(r.src_offset)).sort((a, b) => a - b);
        expect(offsets).toEqual(offsets.map((_, i) => i));
      }
    }));
  });
});

describe('sink flush timing (nextFlushAt)', () => {
  const state = fc.record({
    lastFlushAt: fc.integer({ min: 0, max: 100_000 }),
    firstWaitingAt: fc.integer({ min: 0, max: 100_000 }),
    arrivalAfterFirst: fc.integer({ min: 0, max: 100_000 }),
    flushMs: fc.integer({ min: 10, max: 60_000 }),
  });

  it('never flushes sooner than the minimum gap after the last flush, nor later than flushMs after the oldest arrival (or the gap)', () => {
    fc.assert(fc.property(state, ({ lastFlushAt, firstWaitingAt, arrivalAfterFirst, flushMs }) => {
      const at = nextFlushAt({ lastFlushAt, firstWaitingAt, lastArrivalAt: firstWaitingAt + arrivalAfterFirst, flushMs });
      const gap = Math.min(SINK_MIN_GAP_MS, flushMs);
      expect(at).toBeGreaterThanOrEqual(lastFlushAt + gap);
      expect(at).toBeLessThanOrEqual(Math.max(lastFlushAt + gap, firstWaitingAt + flushMs));
    }));
  });

  it('after a quiet interval, flushes a burst once arrivals pause for the linger time', () => {
    // Last flush 10 s ago; a window's rows arrive over 40 ms.
    expect(nextFlushAt({ lastFlushAt: 0, firstWaitingAt: 10_000, lastArrivalAt: 10_040, flushMs: 1000 })).toBe(10_040 + SINK_LINGER_MS);
    // Steady arrivals never pause: flushMs after the oldest.
    expect(nextFlushAt({ lastFlushAt: 9_900, firstWaitingAt: 10_000, lastArrivalAt: 10_990, flushMs: 1000 })).toBe(11_000);
    // Right after a flush: the minimum gap.
    expect(nextFlushAt({ lastFlushAt: 10_000, firstWaitingAt: 10_010, lastArrivalAt: 10_010, flushMs: 1000 })).toBe(10_000 + SINK_MIN_GAP_MS);
  });
});
