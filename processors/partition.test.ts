import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { emptyDims, type EventType, type SessionEvent } from '../schemas/events.js';
import { advance, applyEvent, emptyPartitionState, type ProcessorSettings, type WindowOutput } from './partition.js';
import { emptyAcc, mergeAcc, type WindowAcc } from './accumulator.js';
import { histogramQuantile } from '../lib/histogram.js';

const W = 10_000;
const cfg: ProcessorSettings = {
  windowMs: W, graceMs: 0, sessionTimeoutMs: 60_000, maxSessions: 1000,
  maxClockAheadMs: 5000, maxClockSkewMs: 365 * 86_400_000, ebvsMinMs: 0,
};

function ev(sessionId: string, seq: number, tsMs: number, type: EventType, extra: Partial<SessionEvent> = {}): SessionEvent {
  return {
    sessionId, seq, tsMs, receivedAtMs: tsMs, type, source: 'native', dims: { ...emptyDims(), cdn: 'cdn-a' },
    bitrateKbps: null, playheadMs: null, droppedFrames: null, errorCode: null, errorFatal: null,
    httpStatus: null, ttfbMs: null, ttlbMs: null, startupMs: null, clientHash: '', ...extra,
  };
}

/** Runs events through one partition, closing everything at the end; returns windowStart → merged acc. */
function run(events: SessionEvent[], s: ProcessorSettings = cfg, advances: number[] = [], lead = 0): Map<number, WindowAcc> {
  const ps = emptyPartitionState();
  const out: WindowOutput[] = [];
  const points = [...advances].sort((a, b) => a - b);
  for (const e of events) {
    // An advance point runs before the first event it is at most `lead` ahead of.
    while (points.length > 0 && (points[0] ?? 0) - lead <= e.tsMs) out.push(...advance(ps, s, points.shift() ?? 0));
    applyEvent(ps, s, e);
  }
  out.push(...advance(ps, s, 10 ** 13));
  const byWindow = new Map<number, WindowAcc>();
  for (const o of out) byWindow.set(o.windowStartMs, mergeAcc(byWindow.get(o.windowStartMs) ?? emptyAcc(), o.acc));
  return byWindow;
}

function total(m: Map<number, WindowAcc>): WindowAcc {
  return [...m.values()].reduce(mergeAcc, emptyAcc());
}

describe('session metrics, table-driven', () => {
  const T = 1_700_000_000_000; // a window boundary (divisible by 10 s)
  const cases: Array<{ name: string; events: SessionEvent[]; expect: Partial<Record<keyof WindowAcc, number>>; perWindow?: Record<number, Partial<Record<keyof WindowAcc, number>>> }> = [
    {
      name: 'start, play across a window boundary, end',
      events: [ev('s', 0, T + 1000, 'play_request'), ev('s', 1, T + 3000, 'first_frame', { bitrateKbps: 3000 }), ev('s', 2, T + 14_000, 'ended')],
      expect: { attempts: 1, plays: 1, ended: 1, startingMs: 2000, playingMs: 11_000, activeMs: 13_000, bitsPlayed: 3000 * 11_000, vstCount: 1, vstSumMs: 2000 },
      perWindow: { [T]: { playingMs: 7000, startingMs: 2000, attempts: 1, plays: 1 }, [T + W]: { playingMs: 4000, ended: 1 } },
    },
    {
      name: 'connection stall vs seek-induced buffering are kept apart',
      events: [
        ev('s', 0, T, 'play_request'), ev('s', 1, T + 500, 'first_frame'), ev('s', 2, T + 1500, 'rebuffering'),
        ev('s', 3, T + 2500, 'playing'), ev('s', 4, T + 3000, 'seeking'), ev('s', 5, T + 3200, 'rebuffering'),
        ev('s', 6, T + 4000, 'playing'), ev('s', 7, T + 5000, 'quit'),
      ],
      expect: { rebufferMs: 1000, rebufferCount: 1, seekMs: 1000, seekCount: 1, playingMs: 1000 + 500 + 1000, startingMs: 500 },
    },
    {
      name: 'fatal error before first frame is a start failure',
      events: [ev('s', 0, T, 'play_request'), ev('s', 1, T + 4000, 'error', { errorCode: 'E1', errorFatal: true })],
      expect: { attempts: 1, vsf: 1, plays: 0, vpf: 0, ebvs: 0, startingMs: 4000 },
    },
    {
      name: 'fatal error after first frame is a playback failure',
      events: [ev('s', 0, T, 'play_request'), ev('s', 1, T + 1000, 'first_frame'), ev('s', 2, T + 2000, 'error', { errorCode: 'E2', errorFatal: true })],
      expect: { vpf: 1, vsf: 0, plays: 1 },
    },
    {
      name: 'quit before first frame is EBVS',
      events: [ev('s', 0, T, 'play_request'), ev('s', 1, T + 700, 'quit')],
      expect: { attempts: 1, ebvs: 1, plays: 0, startingMs: 700 },
    },
    {
      name: 'an attempt that goes silent becomes EBVS at expiry, and its extrapolated time is retracted',
      events: [ev('s', 0, T, 'play_request'), ev('s', 1, T + 5000, 'heartbeat')],
      expect: { attempts: 1, ebvs: 1, startingMs: 5000, activeMs: 5000 },
    },
    {
      name: 'an abandoned playing view counts time only up to its last event',
      events: [ev('s', 0, T, 'play_request'), ev('s', 1, T + 1000, 'first_frame', { bitrateKbps: 800 }), ev('s', 2, T + 25_000, 'heartbeat')],
      expect: { playingMs: 24_000, bitsPlayed: 800 * 24_000, ebvs: 0 },
    },
    {
      name: 'duplicates are ignored, reordered events applied at the cursor',
      events: [ev('s', 0, T, 'play_request'), ev('s', 1, T + 1000, 'first_frame'), ev('s', 1, T + 1000, 'first_frame'), ev('s', 2, T + 2000, 'ended')],
      expect: { plays: 1, ended: 1, playingMs: 1000 },
    },
    {
      name: 'bitrate changes split playing time by bucket',
      events: [
        ev('s', 0, T, 'play_request'), ev('s', 1, T, 'first_frame', { bitrateKbps: 800 }),
        ev('s', 2, T + 4000, 'bitrate_change', { bitrateKbps: 3000 }), ev('s', 3, T + 10_000, 'ended'),
      ],
      expect: { playingMs: 10_000, bitsPlayed: 800 * 4000 + 3000 * 6000 },
    },
    {
      name: 'a client clock an hour ahead is corrected to the receive time',
      events: [
        ev('s', 0, T + 3_600_000, 'play_request', { receivedAtMs: T }),
        ev('s', 1, T + 3_602_000, 'first_frame', { receivedAtMs: T + 2000 }),
        ev('s', 2, T + 3_605_000, 'ended', { receivedAtMs: T + 5000 }),
      ],
      expect: { startingMs: 2000, playingMs: 3000 },
      perWindow: { [T]: { attempts: 1, plays: 1, ended: 1 } },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const res = run(c.events);
      const tot = total(res);
      for (const [k, v] of Object.entries(c.expect)) expect(tot[k as keyof WindowAcc], k).toBe(v);
      for (const [w, exp] of Object.entries(c.perWindow ?? {})) {
        const acc = res.get(Number(w)) ?? emptyAcc();
        for (const [k, v] of Object.entries(exp)) expect(acc[k as keyof WindowAcc], `${k} @ ${w}`).toBe(v);
      }
    });
  }

  it('VST percentile comes from the histogram within 2%', () => {
    const events: SessionEvent[] = [];
    const vsts = [120, 800, 950, 1500, 2300, 4000, 9000];
    vsts.forEach((v, i) => events.push(ev(`v${i}`, 0, T, 'play_request'), ev(`v${i}`, 1, T + v, 'first_frame')));
    events.sort((a, b) => a.tsMs - b.tsMs);
    const tot = total(run(events));
    const p50 = histogramQuantile(tot.vstHist, 0.5) ?? 0;
    expect(Math.abs(p50 - 1500) / 1500).toBeLessThanOrEqual(0.02);
  });

  it('a late event is clamped into the first open window and reported for the dead letters', () => {
    const ps = emptyPartitionState();
    applyEvent(ps, cfg, ev('s', 0, T, 'play_request'));
    applyEvent(ps, cfg, ev('s', 1, T + 1000, 'first_frame'));
    advance(ps, cfg, T + 25_000); // closes [T, T+10s) and [T+10s, T+20s)
    const res = applyEvent(ps, cfg, ev('s', 2, T + 5000, 'ended'));
    expect(res).toEqual({ kind: 'dead_letter', reason: 'late', tsMs: T + 5000 });
    expect(ps.counters.late).toBe(1);
    const closing = advance(ps, cfg, 10 ** 13);
    const tot = closing.map((o) => o.acc).reduce(mergeAcc, emptyAcc());
    expect(tot.ended).toBe(1);
    expect(closing.find((o) => o.acc.ended === 1)?.windowStartMs).toBe(T + 20_000);
  });

  it('fires a window when the watermark passes its end; a straggler within the grace period comes out as a delta row', () => {
    const graced = { ...cfg, graceMs: 5000 };
    const ps = emptyPartitionState();
    applyEvent(ps, graced, ev('a', 0, T + 1000, 'play_request'));
    applyEvent(ps, graced, ev('a', 1, T + 2000, 'first_frame', { bitrateKbps: 800 }));
    applyEvent(ps, graced, ev('b', 0, T + 9000, 'play_request'));
    // Watermark just past the end of [T, T+10s): the window fires, with the open states up to its end.
    const onTime = advance(ps, graced, T + W + 100);
    expect(onTime.map((o) => o.windowStartMs)).toEqual([T]);
    const fired = onTime.map((o) => o.acc).reduce(mergeAcc, emptyAcc());
    expect(fired).toMatchObject({ attempts: 2, plays: 1, startingMs: 1000 + 1000, playingMs: 8000, activeMs: 10_000 });
    // b's first frame (at T+9.5s) and a's rebuffering (from T+6s) arrive after the window fired, within grace.
    expect(applyEvent(ps, graced, ev('b', 1, T + 9500, 'first_frame'))).toEqual({ kind: 'ok' });
    expect(applyEvent(ps, graced, ev('a', 2, T + 6000, 'rebuffering'))).toEqual({ kind: 'ok' });
    expect(ps.counters.late).toBe(0);
    const delta = advance(ps, graced, T + W + 5000).map((o) => o.acc).reduce(mergeAcc, emptyAcc());
    // b: 500 ms moved from starting to playing; a: 4 s moved from playing to rebuffering.
    expect(delta).toMatchObject({ plays: 1, startingMs: -500, playingMs: 500 - 4000, rebufferMs: 4000, rebufferCount: 1, activeMs: 0 });
    const final = mergeAcc(fired, delta);
    expect(final).toMatchObject({ attempts: 2, plays: 2, startingMs: 1000 + 500, playingMs: 4000 + 500, rebufferMs: 4000, activeMs: 10_000 });
    expect(final.bitsPlayed).toBe(800 * 4000);
  });

  it('expires the least recently updated session at the session bound', () => {
    const ps = emptyPartitionState();
    const small = { ...cfg, maxSessions: 2 };
    applyEvent(ps, small, ev('a', 0, T, 'play_request'));
    applyEvent(ps, small, ev('b', 0, T, 'play_request'));
    applyEvent(ps, small, ev('c', 0, T + 10, 'play_request'));
    expect([...ps.sessions.keys()]).toEqual(['b', 'c']);
    expect(ps.counters.evicted).toBe(1);
  });
});

// ---- properties -----------------------------------------------------------------------------

const STATE_EVENTS: EventType[] = ['playing', 'paused', 'seeking', 'rebuffering', 'heartbeat', 'bitrate_change'];
const arbSession = fc.record({
  startTs: fc.integer({ min: 0, max: 40_000 }),
  startup: fc.integer({ min: 0, max: 5000 }),
  steps: fc.array(fc.record({ type: fc.constantFrom(...STATE_EVENTS), gap: fc.integer({ min: 0, max: 15_000 }), kbps: fc.constantFrom(400, 1600, 6000) }), { maxLength: 12 }),
  end: fc.constantFrom<EventType | null>('ended', 'quit', null),
});

type Arb = { startTs: number; startup: number; steps: Array<{ type: EventType; gap: number; kbps: number }>; end: EventType | null };

function toEvents(id: string, a: Arb): SessionEvent[] {
  const base = 1_700_000_000_000;
  let ts = base + a.startTs;
  const out = [ev(id, 0, ts, 'play_request')];
  ts += a.startup;
  out.push(ev(id, 1, ts, 'first_frame', { bitrateKbps: 1600 }));
  for (const s of a.steps) {
    ts += s.gap;
    out.push(ev(id, out.length, ts, s.type, s.type === 'bitrate_change' ? { bitrateKbps: s.kbps } : {}));
  }
  if (a.end) out.push(ev(id, out.length, ts + 1000, a.end));
  return out;
}

/** Independent truth: the state after event i holds until event i+1; overlap with each window by min/max. */
function truthActiveByWindow(events: SessionEvent[]): Map<number, number> {
  const m = new Map<number, number>();
  for (let i = 0; i + 1 < events.length; i++) {
    const a = events[i]!.tsMs;
    const b = events[i + 1]!.tsMs;
    for (let w = Math.floor(a / W) * W; w < b; w += W) {
      const overlap = Math.min(b, w + W) - Math.max(a, w);
      if (overlap > 0) m.set(w, (m.get(w) ?? 0) + overlap);
    }
  }
  return m;
}

describe('window attribution properties', () => {
  /**
   * Runs random sessions with advances at random points, `lead` at most ahead of the events still to
   * come, and compares each window's active time with the independent truth.
   */
  function checkAttribution(settings: ProcessorSettings, lead: number): void {
    fc.assert(fc.property(fc.array(arbSession, { minLength: 1, maxLength: 6 }), fc.array(fc.integer({ min: 0, max: 200_000 }), { maxLength: 8 }), (sessions, adv) => {
      const perSession = sessions.map((a, i) => toEvents(`s${i}`, a));
      const all = perSession.flat().sort((x, y) => x.tsMs - y.tsMs || x.seq - y.seq);
      const base = 1_700_000_000_000;
      const res = run(all, { ...settings, sessionTimeoutMs: 10 ** 9 }, adv.map((x) => base + x), lead);
      const truth = new Map<number, number>();
      for (const evs of perSession) for (const [w, ms] of truthActiveByWindow(evs)) truth.set(w, (truth.get(w) ?? 0) + ms);
      const got = new Map([...res].map(([w, acc]) => [w, acc.activeMs] as [number, number]).filter(([, ms]) => ms !== 0));
      expect(got).toEqual(new Map([...truth].filter(([, ms]) => ms !== 0)));
      const tot = total(res);
      expect(tot.startingMs + tot.playingMs + tot.pausedMs + tot.seekMs + tot.rebufferMs).toBe(tot.activeMs);
      let byBucket = 0;
      for (const ms of tot.bitrateMs.values()) byBucket += ms;
      expect(byBucket).toBe(tot.playingMs);
      expect(tot.plays).toBeLessThanOrEqual(tot.attempts);
    }), { numRuns: 300 });
  }

  it('every millisecond between events is attributed exactly once, whenever windows close', () => {
    // Close windows only behind every event still to come (no late data): advance points ≤ next event ts.
    checkAttribution(cfg, 0);
  });

  it('with a grace period, events arriving after their window fired still land in it exactly', () => {
    // The watermark runs up to the grace period ahead of the events still to come: windows fire
    // before their last events arrive, but none closes before them (no late data).
    checkAttribution({ ...cfg, graceMs: 15_000 }, 15_000);
  });

  it('merge is associative and commutative', () => {
    const arbAcc = fc.record({ attempts: fc.integer({ min: 0, max: 9 }), playingMs: fc.integer({ min: -50, max: 5000 }), k: fc.integer({ min: 0, max: 5 }), c: fc.integer({ min: 1, max: 4 }) })
      .map(({ attempts, playingMs, k, c }) => {
        const a = emptyAcc();
        a.attempts = attempts;
        a.playingMs = playingMs;
        a.vstHist.set(k, c);
        a.bitrateMs.set(k, playingMs);
        a.errors = new Map([[`1:E${k}`, c]]);
        return a;
      });
    fc.assert(fc.property(arbAcc, arbAcc, arbAcc, (a, b, c) => {
      expect(mergeAcc(mergeAcc(a, b), c)).toEqual(mergeAcc(a, mergeAcc(b, c)));
      expect(mergeAcc(a, b)).toEqual(mergeAcc(b, a));
    }));
  });
});
