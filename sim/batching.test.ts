import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTerminal, planBatches } from './batching.js';
import type { SimEvent } from './emit.js';
import { generatePopulation } from './model.js';

const ev = (sessionId: string, seq: number, ts: number, type: SimEvent['type'] = 'heartbeat'): SimEvent => ({ sessionId, seq, ts, type });

describe('planBatches', () => {
  it('flushes on size, on age in simulated time, and at the terminal event', () => {
    const a = [ev('a', 0, 0, 'play_request'), ev('a', 1, 1_000), ev('a', 2, 2_000), ev('a', 3, 9_000), ev('a', 4, 9_500, 'quit')];
    const b = [ev('b', 0, 500, 'play_request'), ev('b', 1, 20_000)];
    const batches = planBatches([{ events: a }, { events: b }], { batchSize: 3, batchIntervalMs: 5_000 });
    expect(batches.map((x) => [x.sessionId, x.sendAtMs, x.events.map((e) => e.seq)])).toEqual([
      ['a', 2_000, [0, 1, 2]], // size
      ['b', 5_500, [0]], // age: oldest at 500 + 5 000
      ['a', 9_500, [3, 4]], // terminal
      ['b', 25_000, [1]], // age, drained at the end of the run
    ]);
  });

  it('rejects batch sizes outside 1..500', () => {
    expect(() => planBatches([], { batchSize: 0, batchIntervalMs: 1 })).toThrow();
    expect(() => planBatches([], { batchSize: 501, batchIntervalMs: 1 })).toThrow();
  });

  it('sends every event exactly once, in global time order, each view in seq order', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e6 }), fc.integer({ min: 1, max: 60 }), fc.integer({ min: 0, max: 20_000 }), (seed, batchSize, batchIntervalMs) => {
        const views = generatePopulation({ views: 15, seed, startMs: 1_767_225_600_000, periodMs: 60_000, requests: seed % 2 === 0 });
        const batches = planBatches(views, { batchSize, batchIntervalMs });
        const sent = batches.flatMap((b) => b.events);
        expect(sent.length).toBe(views.reduce((n, v) => n + v.events.length, 0));
        const lastSeq = new Map<string, number>();
        for (const b of batches) {
          expect(b.events.length).toBeGreaterThan(0);
          expect(b.events.length).toBeLessThanOrEqual(batchSize);
          for (const e of b.events) {
            expect(e.sessionId).toBe(b.sessionId);
            expect(e.seq).toBe((lastSeq.get(e.sessionId) ?? -1) + 1);
            lastSeq.set(e.sessionId, e.seq);
            expect(e.ts).toBeLessThanOrEqual(b.sendAtMs);
          }
          const oldest = b.events[0]?.ts ?? 0;
          expect(b.sendAtMs - oldest).toBeLessThanOrEqual(batchIntervalMs);
          // Only the last event of a batch may be terminal.
          expect(b.events.slice(0, -1).some(isTerminal)).toBe(false);
        }
        for (let i = 1; i < batches.length; i++) expect(batches[i]?.sendAtMs).toBeGreaterThanOrEqual(batches[i - 1]?.sendAtMs ?? 0);
      }),
      { numRuns: 30 },
    );
  });
});
