import { describe, expect, it } from 'vitest';
import type { MetricsRecord } from '../../processors/metrics-record.js';
import type { SteeringDecision } from '../decision.js';
import { createRng } from '../evaluation/random.js';
import { drawRecord, type CdnFactors } from '../evaluation/synth.js';
import {
  DEFAULT_DETECTOR_CONFIG, DEFAULT_METRIC_RULES, createDetectorState, evaluate, observe, resolveDetectorConfig, type DetectorConfigInput, type DetectorState,
} from './index.js';

const CDNS = ['cdn-a', 'cdn-b', 'cdn-c'];
const W = 10_000;
const T0 = Date.UTC(2026, 0, 5, 18);
const HEALTHY: CdnFactors = { rebuffer: 1, vsf: 1, ttfb: 1 };
const ONSET = 120;

interface Run {
  state: DetectorState;
  decisions: Array<{ window: number; d: SteeringDecision }>;
}

interface RunOpts {
  windows: number;
  /** Concurrent sessions per CDN (cdn-a, cdn-b, cdn-c). */
  concurrent: number[];
  factors?: (window: number, cdn: string) => CdnFactors;
  seed?: number;
  country?: string;
  config?: DetectorConfigInput;
  /** Split every window's record into two partition deltas. */
  split?: boolean;
}

/** Splits a record into two deltas that add up to it (a second source partition). */
function splitRecord(rec: MetricsRecord): MetricsRecord[] {
  const a: MetricsRecord = { ...rec, source_partition: 0 };
  const b: MetricsRecord = { ...rec, source_partition: 1, vst_hist_keys: [], vst_hist_counts: [], ttfb_hist_keys: [], ttfb_hist_counts: [] };
  for (const f of ['attempts', 'plays', 'vsf', 'vpf', 'playing_ms', 'rebuffer_ms', 'rebuffer_count', 'seek_ms', 'seek_count', 'active_ms', 'requests', 'request_errors']) {
    const v = Number(rec[f] ?? 0);
    a[f] = Math.floor(v / 2);
    b[f] = v - Math.floor(v / 2);
  }
  return [a, b];
}

function simulate(o: RunOpts): Run {
  const state = createDetectorState({ neutralPriority: CDNS, ...o.config });
  const rng = createRng(o.seed ?? 7);
  const decisions: Run['decisions'] = [];
  for (let w = 0; w < o.windows; w++) {
    const start = T0 + w * W;
    CDNS.forEach((cdn, i) => {
      const rec = drawRecord(rng, start, W, o.country ?? 'US', cdn, o.concurrent[i] ?? 0, o.factors?.(w, cdn) ?? HEALTHY);
      for (const r of o.split ? splitRecord(rec) : [rec]) observe(state, r);
    });
    for (const d of evaluate(state, start + W, start + W + 2_000)) decisions.push({ window: w, d });
  }
  return { state, decisions };
}

const stepOn = (cdns: string[], kind: keyof CdnFactors, factor: number, from = ONSET, to = Infinity) =>
  (w: number, cdn: string): CdnFactors => (cdns.includes(cdn) && w >= from && w < to ? { ...HEALTHY, [kind]: factor } : HEALTHY);

describe('detector scenarios', () => {
  // Within 3 windows where the data allows it at zero false decisions per simulated week: ×5 from
  // ~100 concurrent sessions on the CDN (about half the time at 50), ×2 from ~800 (bench/README.md,
  // steering evaluation: the stall-episode counts of fewer sessions cannot tell ×2 from noise in 3
  // windows). At 60 sessions a ×5 step can take a few windows more.
  it.each([
    { factor: 5, concurrent: 100, seed: 1, within: 3 },
    { factor: 5, concurrent: 100, seed: 2, within: 3 },
    { factor: 5, concurrent: 200, seed: 3, within: 3 },
    { factor: 2, concurrent: 800, seed: 4, within: 3 },
    { factor: 2, concurrent: 800, seed: 5, within: 3 },
    { factor: 2, concurrent: 1500, seed: 6, within: 3 },
    { factor: 5, concurrent: 60, seed: 6, within: 6 },
    { factor: 5, concurrent: 60, seed: 7, within: 6 },
  ])('rebuffering ×$factor on cdn-a in US with $concurrent concurrent sessions: demoted within $within windows, ranked last', ({ factor, concurrent, seed, within }) => {
    const { decisions } = simulate({
      windows: ONSET + 10, concurrent: [concurrent, concurrent, concurrent], seed, factors: stepOn(['cdn-a'], 'rebuffer', factor),
    });
    expect(decisions).toHaveLength(1);
    const [first] = decisions;
    expect(first?.d.action).toBe('demote');
    expect(first?.window).toBeGreaterThanOrEqual(ONSET);
    expect(first?.window).toBeLessThanOrEqual(ONSET + within - 1);
    expect(first?.d.priority).toEqual(['cdn-b', 'cdn-c', 'cdn-a']);
    expect(first?.d.scope).toEqual({ country: 'US', asn: '' });
    expect(first?.d.reason).toMatchObject({ metric: 'rebuffer_ratio', cdn: 'cdn-a', windowMs: W, windowStartMs: T0 + (first?.window ?? 0) * W });
    expect(first?.d.reason.value).toBeGreaterThan(1.5 * (first?.d.reason.baseline ?? 0));
    expect(first?.d.ttlMs).toBe(DEFAULT_DETECTOR_CONFIG.ttlMs);
  });

  it('rebuffering ×5 at 100 sessions is decided on the stall-episode counts, against the pooled peers', () => {
    const { decisions } = simulate({ windows: ONSET + 10, concurrent: [100, 100, 100], seed: 8, factors: stepOn(['cdn-a'], 'rebuffer', 5) });
    expect(decisions.map((x) => [x.d.action, x.d.reason.cdn, x.d.reason.metric])).toEqual([['demote', 'cdn-a', 'rebuffer_ratio']]);
    expect(decisions[0]?.d.reason.detail).toMatch(/on stall episodes: \d+ in [\d.]+ s of playing.*best peer cdn-b\+cdn-c/);
    // the count test's z (exact Poisson tail) is what is reported, at or above zStalls
    expect(decisions[0]?.d.reason.score).toBeGreaterThanOrEqual(DEFAULT_DETECTOR_CONFIG.zStalls);
  });

  it('start failures ×5 (sparse counts: the Poisson CUSUM path) and TTFB ×3 are demoted on their metric', () => {
    const vsf = simulate({ windows: ONSET + 80, concurrent: [1500, 1500, 1500], seed: 11, factors: stepOn(['cdn-b'], 'vsf', 5) });
    expect(vsf.decisions.map((x) => [x.d.action, x.d.reason.cdn, x.d.reason.metric])).toEqual([['demote', 'cdn-b', 'vsf_rate']]);
    expect(vsf.decisions[0]?.window).toBeGreaterThanOrEqual(ONSET);
    const ttfb = simulate({ windows: ONSET + 20, concurrent: [300, 300, 300], seed: 12, factors: stepOn(['cdn-c'], 'ttfb', 3) });
    expect(ttfb.decisions.map((x) => [x.d.action, x.d.reason.cdn, x.d.reason.metric])).toEqual([['demote', 'cdn-c', 'ttfb_p90_ms']]);
    expect(ttfb.decisions[0]?.window).toBeLessThanOrEqual(ONSET + 2);
    expect(ttfb.decisions[0]?.d.priority).toEqual(['cdn-a', 'cdn-b', 'cdn-c']);
  });

  it('all CDNs degrading together: no decision (nowhere better to go)', () => {
    const { decisions } = simulate({ windows: ONSET + 180, concurrent: [300, 300, 300], factors: stepOn(CDNS, 'rebuffer', 5) });
    expect(decisions).toEqual([]);
  });

  it('low-volume scope: no decision even for ×5', () => {
    const { decisions } = simulate({ windows: ONSET + 180, concurrent: [12, 12, 12], factors: stepOn(['cdn-a'], 'rebuffer', 5) });
    expect(decisions).toEqual([]);
  });

  it('steady noisy traffic: no decision over 6 hours', () => {
    const { decisions, state } = simulate({ windows: 2_160, concurrent: [400, 150, 60], seed: 21 });
    expect(decisions).toEqual([]);
    expect(state.stats.windowsEvaluated).toBe(2_160);
  });

  it('recovery: restored only after the hysteresis windows, to the neutral priority; seq strictly increasing', () => {
    const end = ONSET + 60;
    const { decisions } = simulate({ windows: end + 60, concurrent: [200, 200, 200], seed: 31, factors: stepOn(['cdn-a'], 'rebuffer', 5, ONSET, end) });
    expect(decisions.map((x) => x.d.action)).toEqual(['demote', 'restore']);
    const [demote, restore] = decisions;
    expect(restore?.d.priority).toEqual(CDNS);
    // the cooldown (30 windows) has passed long before; restore waits for recoveryWindows good windows
    expect(restore?.window).toBeGreaterThanOrEqual(end + DEFAULT_DETECTOR_CONFIG.recoveryWindows - 1);
    expect(restore?.d.seq).toBe((demote?.d.seq ?? 0) + 1);
    expect(restore?.d.id).toBe(`US-all-${restore?.d.seq}`);
  });

  it('no flapping: a degradation toggling every few windows gives at most one decision per cooldown', () => {
    const toggling = (w: number, cdn: string): CdnFactors => (cdn === 'cdn-a' && w >= ONSET && Math.floor(w / 8) % 2 === 0 ? { ...HEALTHY, rebuffer: 6 } : HEALTHY);
    const { decisions } = simulate({ windows: ONSET + 360, concurrent: [300, 300, 300], seed: 41, factors: toggling });
    expect(decisions.length).toBeGreaterThan(0);
    const cooldownWindows = DEFAULT_DETECTOR_CONFIG.cooldownMs / W;
    for (let i = 1; i < decisions.length; i++) {
      expect((decisions[i]?.window ?? 0) - (decisions[i - 1]?.window ?? 0)).toBeGreaterThanOrEqual(cooldownWindows);
    }
  });

  it('moves at most one CDN per decision: two CDNs degrading at once are demoted one per cooldown', () => {
    const { decisions } = simulate({ windows: ONSET + 60, concurrent: [300, 300, 300], seed: 51, factors: stepOn(['cdn-a', 'cdn-b'], 'rebuffer', 6) });
    expect(decisions.map((x) => x.d.action)).toEqual(['demote', 'demote']);
    const [first, second] = decisions;
    expect(first?.window).toBeLessThanOrEqual(ONSET + 2);
    expect((second?.window ?? 0) - (first?.window ?? 0)).toBeGreaterThanOrEqual(DEFAULT_DETECTOR_CONFIG.cooldownMs / W);
    // each decision moves exactly one CDN to the end
    expect(first?.d.priority.slice(0, 2)).toContain('cdn-c');
    expect(second?.d.priority).toEqual(['cdn-c', 'cdn-a', 'cdn-b']);
  });
});

describe('detector mechanics', () => {
  it('partition deltas add up: split records give the same decisions', () => {
    const opts: RunOpts = { windows: ONSET + 10, concurrent: [150, 150, 150], seed: 3, factors: stepOn(['cdn-a'], 'rebuffer', 5) };
    const strip = (r: Run) => r.decisions.map((x) => ({ ...x.d, reason: { ...x.d.reason, detail: '' } }));
    expect(strip(simulate({ ...opts, split: true }))).toEqual(strip(simulate(opts)));
  });

  it('counts late and ignored records, and uses only CDNs of the priority list', () => {
    const state = createDetectorState({ neutralPriority: CDNS });
    const rec = (over: Partial<MetricsRecord>): MetricsRecord => ({
      window_start_ms: T0, window_ms: W, source_partition: 0, errors: [], cdn: 'cdn-a', country: 'US', asn: '', active_ms: 1_000_000, ...over,
    });
    expect(observe(state, rec({}))).toBe('ok');
    expect(observe(state, rec({ cdn: 'cdn-x' }))).toBe('ignored');
    expect(observe(state, rec({ window_ms: 60_000 }))).toBe('ignored');
    expect(observe(state, rec({ country: '' }))).toBe('ignored');
    expect(evaluate(state, T0 + W, 0)).toEqual([]);
    expect(observe(state, rec({}))).toBe('late');
    expect(state.stats).toMatchObject({ records: 5, lateRecords: 1, ignoredRecords: 3, windowsEvaluated: 1 });
    expect(state.pending.size).toBe(0);
  });

  it('evaluates only complete windows, empty ones included, and bounds the pending windows', () => {
    const state = createDetectorState({ neutralPriority: CDNS, maxPendingWindows: 2 });
    const rec = (w: number): MetricsRecord => ({ window_start_ms: T0 + w * W, window_ms: W, source_partition: 0, errors: [], cdn: 'cdn-a', country: 'US' });
    observe(state, rec(0));
    observe(state, rec(5));
    evaluate(state, T0 + 3 * W - 1, 0);
    expect(state.stats.windowsEvaluated).toBe(2);
    expect(state.evaluatedUpToMs).toBe(T0 + 2 * W);
    observe(state, rec(6));
    observe(state, rec(7));
    expect(state.stats.droppedWindows).toBe(1);
    expect(state.pending.size).toBe(2);
  });

  it('ASN scopes are evaluated alongside the country when configured', () => {
    const state = createDetectorState({ neutralPriority: CDNS, asnScopes: true, scopePriority: { 'US/7922': ['cdn-b', 'cdn-a'] } });
    observe(state, { window_start_ms: T0, window_ms: W, source_partition: 0, errors: [], cdn: 'cdn-c', country: 'US', asn: '7922' });
    expect([...state.scopes.keys()]).toEqual(['US', 'US/7922']);
    expect(state.scopes.get('US/7922')?.neutral).toEqual(['cdn-b', 'cdn-a']);
    expect(state.pending.get(T0)?.size).toBe(1);
  });

  it('minConcurrentSessions also sets the rebuffer_ratio volume gate (same unit) unless that is set explicitly', () => {
    expect(resolveDetectorConfig().metrics.rebuffer_ratio.minVolume).toBe(DEFAULT_METRIC_RULES.rebuffer_ratio.minVolume);
    expect(resolveDetectorConfig({ minConcurrentSessions: 10 }).metrics.rebuffer_ratio.minVolume).toBe(10);
    expect(resolveDetectorConfig({ minConcurrentSessions: 10, metrics: { rebuffer_ratio: { minVolume: 25 } } }).metrics.rebuffer_ratio.minVolume).toBe(25);
    // Peers below the default gate (25 sessions) are judged once minConcurrentSessions is lowered: a
    // CDN whose peers have no verdict is never demoted.
    const run = (config: DetectorConfigInput): Run => simulate({
      windows: ONSET + 20, concurrent: [60, 25, 25], seed: 6, factors: stepOn(['cdn-a'], 'rebuffer', 5), config,
    });
    expect(run({}).decisions).toEqual([]);
    const lowered = run({ minConcurrentSessions: 10 }).decisions;
    expect(lowered.map((x) => [x.d.action, x.d.reason.cdn, x.d.reason.metric])).toEqual([['demote', 'cdn-a', 'rebuffer_ratio']]);
    expect(lowered[0]?.window).toBeGreaterThanOrEqual(ONSET);
  });

  it('rejects inconsistent configuration', () => {
    expect(() => createDetectorState({ persistenceK: 4, persistenceM: 3 })).toThrow(RangeError);
    expect(() => createDetectorState({ recoveryRatio: 2 })).toThrow(/hysteresis/);
    expect(() => createDetectorState({ neutralPriority: [] })).toThrow(RangeError);
  });

  it('seq continues from initialSeq', () => {
    const { decisions } = simulate({ windows: ONSET + 10, concurrent: [150, 150, 150], seed: 3, factors: stepOn(['cdn-a'], 'rebuffer', 5), config: { initialSeq: 1000 } });
    expect(decisions[0]?.d.seq).toBe(1000);
    expect(decisions[0]?.d.id).toBe('US-all-1000');
  });
});
