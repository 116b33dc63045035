import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { emptyDims, type Dims } from '../schemas/events.js';
import { aggregateTruth } from './aggregate.js';
import { emitEvents } from './emit.js';
import { generatePopulation, type Ending, type PlayState, type Segment, type SegmentSignal, type ViewTimeline } from './model.js';
import { canonicalTruth, canonicalWindows, replayEvents } from './testing/replay.js';
import { computeTruth, type TruthMetrics, type TruthWindow } from './truth.js';

const W = 10_000;
const DIMS: Dims = { ...emptyDims(), cdn: 'cdn-a', country: 'US', streamType: 'vod', deviceType: 'desktop' };

type Step = [ms: number, signal: SegmentSignal, state: PlayState, bitrateKbps?: number];

/** A hand-built timeline: steps open segments; the ending closes the last one. */
function timeline(steps: readonly Step[], ending: Ending, extra: Partial<ViewTimeline> = {}): ViewTimeline {
  const segments: Segment[] = steps.map(([fromMs, signal, state, bitrateKbps], i) => ({
    fromMs,
    toMs: steps[i + 1]?.[0] ?? ending.ms,
    signal,
    state,
    bitrateKbps: bitrateKbps ?? null,
    playheadMs: 0,
  }));
  const firstFrame = steps.find((s) => s[1] === 'first_frame');
  return {
    index: 0,
    sessionId: 'hand-1',
    dims: DIMS,
    attemptMs: steps[0]?.[0] ?? 0,
    firstFrameMs: firstFrame?.[0] ?? null,
    segments,
    errors: [],
    requests: [],
    ending,
    endMs: ending.ms,
    ...extra,
  };
}

/** The nonzero fields of every window, keyed by window start. */
function byWindow(tl: ViewTimeline): Record<number, Partial<TruthMetrics>> {
  const out: Record<number, Partial<TruthMetrics>> = {};
  for (const w of computeTruth([{ timeline: tl }], W).windows) {
    const fields: Partial<TruthMetrics> = {};
    for (const [k, v] of Object.entries(w) as [keyof TruthWindow, unknown][]) {
      if (k === 'windowStartMs' || k === 'dims') continue;
      if (typeof v === 'number' && v !== 0) Object.assign(fields, { [k]: v });
      if (Array.isArray(v) && v.length > 0) Object.assign(fields, { [k]: v });
      if (k === 'playingMsByBitrateKbps' && typeof v === 'object' && v !== null && Object.keys(v).length > 0) Object.assign(fields, { [k]: v });
    }
    out[w.windowStartMs] = fields;
  }
  return out;
}

const cases: { name: string; tl: ViewTimeline; expected: Record<number, Partial<TruthMetrics>> }[] = [
  {
    name: 'startup across a window boundary, VST at the first_frame window, playing split at the boundary',
    tl: timeline([[9_000, 'play_request', 'starting'], [11_500, 'first_frame', 'playing', 3000]], { kind: 'quit', ms: 25_000 }),
    expected: {
      0: { attempts: 1, startingMs: 1_000, activeMs: 1_000 },
      10_000: { plays: 1, vstMs: [2_500], startingMs: 1_500, playingMs: 8_500, activeMs: 10_000, bitsPlayed: 3000 * 8_500, playingMsByBitrateKbps: { '3000': 8_500 } },
      20_000: { playingMs: 5_000, activeMs: 5_000, bitsPlayed: 3000 * 5_000, playingMsByBitrateKbps: { '3000': 5_000 } },
    },
  },
  {
    name: 'EBVS of an abandoned view is dated by its last event, and its time stops there',
    // Went silent at 28 000; its last heartbeat was at 25 000 (endMs).
    tl: timeline([[5_000, 'play_request', 'starting']], { kind: 'abandoned', ms: 28_000 }, { endMs: 25_000 }),
    expected: {
      0: { attempts: 1, startingMs: 5_000, activeMs: 5_000 },
      10_000: { startingMs: 10_000, activeMs: 10_000 },
      20_000: { ebvs: 1, startingMs: 5_000, activeMs: 5_000 },
    },
  },
  {
    name: 'EBVS by quit; a seek or stall during startup stays starting and is not counted',
    tl: timeline([[1_000, 'play_request', 'starting'], [2_000, 'seeking', 'starting'], [3_000, 'rebuffering', 'starting']], { kind: 'quit', ms: 4_000 }),
    expected: { 0: { attempts: 1, ebvs: 1, startingMs: 3_000, activeMs: 3_000 } },
  },
  {
    name: 'VSF: fatal error before the first frame',
    tl: timeline([[1_000, 'play_request', 'starting']], { kind: 'fatal', ms: 12_000, code: 'X' }),
    expected: { 0: { attempts: 1, startingMs: 9_000, activeMs: 9_000 }, 10_000: { vsf: 1, startingMs: 2_000, activeMs: 2_000 } },
  },
  {
    name: 'seek-induced buffering is seeking, a connection stall is rebuffering; VPF after start',
    tl: timeline(
      [
        [0, 'play_request', 'starting'],
        [1_000, 'first_frame', 'playing', 800],
        [3_000, 'seeking', 'seeking', 800],
        [3_500, 'playing', 'playing', 800],
        [5_000, 'rebuffering', 'rebuffering', 800],
        [7_000, 'playing', 'playing', 800],
        [8_000, 'paused', 'paused', 800],
      ],
      { kind: 'fatal', ms: 9_000, code: 'Y' },
    ),
    expected: {
      0: {
        attempts: 1,
        plays: 1,
        vpf: 1,
        vstMs: [1_000],
        startingMs: 1_000,
        playingMs: 4_500,
        seekMs: 500,
        rebufferMs: 2_000,
        pausedMs: 1_000,
        activeMs: 9_000,
        seekCount: 1,
        rebufferCount: 1,
        bitsPlayed: 800 * 4_500,
        playingMsByBitrateKbps: { '800': 4_500 },
      },
    },
  },
  {
    name: 'bitrate split: playing time per rendition across a boundary; ended counts in its window',
    tl: timeline(
      [
        [0, 'play_request', 'starting'],
        [500, 'first_frame', 'playing', 800],
        [8_000, 'bitrate_change', 'playing', 3000],
      ],
      { kind: 'ended', ms: 14_000 },
    ),
    expected: {
      0: { attempts: 1, plays: 1, vstMs: [500], startingMs: 500, playingMs: 9_500, activeMs: 10_000, bitsPlayed: 800 * 7_500 + 3000 * 2_000, playingMsByBitrateKbps: { '800': 7_500, '3000': 2_000 } },
      10_000: { ended: 1, playingMs: 4_000, activeMs: 4_000, bitsPlayed: 3000 * 4_000, playingMsByBitrateKbps: { '3000': 4_000 } },
    },
  },
  {
    name: 'requests: errors are status ≥ 400 or 0, ttfb only when a byte arrived',
    tl: timeline([[0, 'play_request', 'starting']], { kind: 'quit', ms: 3_000 }, {
      requests: [
        { ms: 100, httpStatus: 200, ttfbMs: 40, ttlbMs: 90 },
        { ms: 200, httpStatus: 404, ttfbMs: 30, ttlbMs: 31 },
        { ms: 300, httpStatus: 0, ttfbMs: null, ttlbMs: null },
        { ms: 400, httpStatus: 304, ttfbMs: 20, ttlbMs: 25 },
      ],
    }),
    expected: { 0: { attempts: 1, ebvs: 1, startingMs: 3_000, activeMs: 3_000, requests: 4, requestErrors: 2, ttfbMs: [40, 30, 20] } },
  },
];

describe('computeTruth on hand-built timelines', () => {
  it.each(cases)('$name', ({ tl, expected }) => {
    expect(byWindow(tl)).toEqual(expected);
  });

  it.each(cases.filter((c) => c.tl.ending.kind !== 'abandoned'))('agrees with a replay of the emitted events: $name', ({ tl }) => {
    expect(canonicalWindows(replayEvents(emitEvents(tl, 10_000), W))).toEqual(canonicalTruth(computeTruth([{ timeline: tl }], W)));
  });

  it('emits heartbeats for a silent view until it goes away (endMs = last heartbeat)', () => {
    const tl = timeline([[5_000, 'play_request', 'starting']], { kind: 'abandoned', ms: 28_000 });
    const events = emitEvents(tl, 10_000);
    expect(events.map((e) => [e.type, e.ts])).toEqual([
      ['play_request', 5_000],
      ['heartbeat', 15_000],
      ['heartbeat', 25_000],
    ]);
  });

  it('leaves out all-zero windows and sorts by window then dims', () => {
    const tl = timeline([[0, 'play_request', 'starting'], [0, 'first_frame', 'playing', 400]], { kind: 'quit', ms: 30_000 });
    const t = computeTruth([{ timeline: tl }], W);
    expect(t.windows.map((w) => w.windowStartMs)).toEqual([0, 10_000, 20_000]);
    expect([t.startMs, t.endMs, t.firstEventMs, t.lastEventMs]).toEqual([0, 40_000, 0, 30_000]); // the quit at 30 000 lies in [30 000, 40 000)
  });
});

function totals(ws: readonly TruthMetrics[]): TruthMetrics {
  const [first] = aggregateTruth({ windowMs: W, startMs: 0, endMs: 0, firstEventMs: 0, lastEventMs: 0, views: 0, events: 0, windows: ws.map((w) => ({ windowStartMs: 0, dims: DIMS, ...w })) }, []);
  if (first === undefined) throw new Error('no totals');
  return first;
}

describe('truth invariants over random populations', () => {
  it('holds for any seed', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.boolean(), fc.constantFrom(1_000, 10_000, 60_000), (seed, requests, windowMs) => {
        const views = generatePopulation({ views: 15, seed, startMs: 1_767_225_600_000, periodMs: 120_000, requests });
        const truth = computeTruth(views, windowMs);
        for (const w of truth.windows) {
          expect(w.windowStartMs % windowMs).toBe(0);
          expect(w.activeMs).toBe(w.startingMs + w.playingMs + w.pausedMs + w.seekMs + w.rebufferMs);
          expect(Object.values(w.playingMsByBitrateKbps).reduce((a, b) => a + b, 0)).toBe(w.playingMs);
          expect(Object.entries(w.playingMsByBitrateKbps).reduce((a, [r, ms]) => a + Number(r) * ms, 0)).toBe(w.bitsPlayed);
          expect(w.requestErrors).toBeLessThanOrEqual(w.requests);
        }
        const t = totals(truth.windows);
        expect(t.plays).toBeLessThanOrEqual(t.attempts);
        expect(t.attempts).toBe(views.length);
        // Every attempt ends exactly one way before its first frame, or starts.
        expect(t.plays + t.vsf + t.ebvs).toBe(t.attempts);
        expect(t.vstMs.length).toBe(t.plays);
        expect(t.vpf + t.ended).toBeLessThanOrEqual(t.plays);
        for (const v of views) expect(v.timeline.endMs - v.timeline.attemptMs).toBeLessThanOrEqual(1_800_000);
        const sessionTime = views.reduce((a, v) => a + (v.timeline.endMs - v.timeline.attemptMs), 0);
        expect(t.activeMs).toBe(sessionTime);
        for (const g of aggregateTruth(truth, ['cdn', 'country'])) expect(g.plays).toBeLessThanOrEqual(g.attempts);
        expect(truth.events).toBe(views.reduce((a, v) => a + v.events.length, 0));
      }),
      { numRuns: 20 },
    );
  });

  it('equals an independent replay of the emitted events', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.boolean(), (seed, requests) => {
        const views = generatePopulation({ views: 20, seed, startMs: 1_767_225_600_000, periodMs: 60_000, requests });
        const events = views.flatMap((v) => v.events);
        expect(canonicalWindows(replayEvents(events, W))).toEqual(canonicalTruth(computeTruth(views, W)));
      }),
      { numRuns: 30 },
    );
  });
});

describe('aggregateTruth', () => {
  const views = generatePopulation({ views: 200, seed: 1, startMs: 1_767_225_600_000, requests: true });
  const truth = computeTruth(views, W);

  it('conserves totals across any grouping and step', () => {
    const all = aggregateTruth(truth, []);
    expect(all).toHaveLength(1);
    const byCdn = aggregateTruth(truth, ['cdn']);
    expect(byCdn.map((g) => g.group.cdn).sort()).toEqual(['cdn-a', 'cdn-b', 'cdn-c']);
    const stepped = aggregateTruth(truth, ['cdn', 'deviceType'], { stepMs: 60_000 });
    for (const k of ['attempts', 'playingMs', 'rebufferMs', 'bitsPlayed', 'requests'] as const) {
      const sum = (gs: readonly TruthMetrics[]): number => gs.reduce((a, g) => a + g[k], 0);
      expect(sum(byCdn)).toBe(all[0]?.[k]);
      expect(sum(stepped)).toBe(all[0]?.[k]);
    }
    for (const g of stepped) expect((g.bucketStartMs ?? -1) % 60_000).toBe(0);
  });

  it('filters by dims and time and rejects unknown dims or steps', () => {
    const us = aggregateTruth(truth, ['country'], { dims: { country: 'US' } });
    expect(us.map((g) => g.group)).toEqual([{ country: 'US' }]);
    const late = aggregateTruth(truth, [], { fromMs: truth.startMs + 300_000 });
    expect(late[0]?.attempts ?? 0).toBeLessThan(aggregateTruth(truth, [])[0]?.attempts ?? 0);
    expect(() => aggregateTruth(truth, ['nope'])).toThrow(/unknown dimension/);
    expect(() => aggregateTruth(truth, [], { stepMs: 15_000 })).toThrow(/multiple/);
  });
});
