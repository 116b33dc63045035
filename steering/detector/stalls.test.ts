import { describe, expect, it } from 'vitest';
import { resolveDetectorConfig } from './config.js';
import type { MetricObservation } from './series.js';
import { emptyCdnState } from './state.js';
import { refreshStallDispersion, stallBaseline, stallOwnZ, stallPeerTest, stallsTrimmedHold, stallsWorse } from './stalls.js';

const config = resolveDetectorConfig();

/** A rebuffer_ratio observation with `stalls` episodes over `exposureS` playing seconds. */
function obs(stalls: number, exposureS: number): MetricObservation {
  const stalledMs = stalls * 2_000;
  const den = exposureS * 1_000 + stalledMs;
  return { value: stalledMs / den, num: stalledMs, den, volume: 50, events: stalls, stalls, exposureMs: exposureS * 1_000 };
}

function pool(os: MetricObservation[]): MetricObservation {
  return os.reduce((a, o) => ({
    ...a, num: a.num + o.num, den: a.den + o.den, value: (a.num + o.num) / (a.den + o.den),
    stalls: (a.stalls ?? 0) + (o.stalls ?? 0), exposureMs: (a.exposureMs ?? 0) + (o.exposureMs ?? 0),
  }));
}

/** Baseline: 4 episodes per 1 000 playing seconds (the evaluation's healthy hazard), ratio 0.008. */
function baselineState(): ReturnType<typeof emptyCdnState>['metrics']['rebuffer_ratio'] {
  const ms = emptyCdnState('cdn-a').metrics.rebuffer_ratio;
  ms.baseStalls = 2;
  ms.baseExposureMs = 500_000;
  return ms;
}

describe('stall-count evidence', () => {
  it('baseline rate, the absFloor in rate units, and the dispersion floor', () => {
    const sb = stallBaseline(config, baselineState(), 0.008);
    expect(sb?.rate).toBeCloseTo(4e-6, 15);
    expect(sb?.ratioPerRate).toBeCloseTo(2_000, 9);
    // absFloor 0.002 < 0.008: the floor does not bind
    expect(sb?.floorRate).toBeCloseTo(4e-6, 15);
    expect(sb?.phi).toBe(1);
    // a tiny baseline ratio (0.001) is floored at absFloor 0.002: twice the rate
    expect(stallBaseline(config, baselineState(), 0.001)?.floorRate).toBeCloseTo(8e-6, 15);
    expect(stallBaseline(config, emptyCdnState('x').metrics.rebuffer_ratio, 0.008)).toBeNull();
  });

  it('dispersion measured on the history: Σ (x − μ)² / μ / n around the baseline rate', () => {
    const ms = baselineState();
    // μ = 4e-6 × 500 000 = 2 per window; counts 0 and 4 → (4 + 4) / 2 / 2 = 2
    ms.history = [{ value: 0, den: 1, stalls: 0, exposureMs: 500_000 }, { value: 0, den: 1, stalls: 4, exposureMs: 500_000 }];
    refreshStallDispersion(ms);
    expect(ms.stallDispersion).toBeCloseTo(2, 12);
    expect(stallBaseline(config, ms, 0.008)?.phi).toBeCloseTo(2, 12);
  });

  it('own test: exact Poisson tail of the span count (50 sessions × 3 windows ≈ 1 415 s of playing)', () => {
    const sb = stallBaseline(config, baselineState(), 0.008);
    if (!sb) throw new Error('no baseline');
    // λ = 4e-6 × 1 415 000 = 5.66; P(X ≥ 23) = 3.626e-8 → z 5.385 (Python, exact sum)
    expect(stallOwnZ(sb, obs(23, 1_415))).toBeCloseTo(5.385, 1);
    expect(stallsWorse(config, sb, obs(23, 1_415), 1.5)).toBe(true);
    // 8 episodes: rate ×1.41 < 1.5
    expect(stallsWorse(config, sb, obs(8, 1_415), 1.5)).toBe(false);
  });

  it('a one-window burst does not hold once trimmed; a sustained excess does', () => {
    const sb = stallBaseline(config, baselineState(), 0.008);
    if (!sb) throw new Error('no baseline');
    expect(stallsTrimmedHold(config, sb, [obs(2, 470), obs(30, 470), obs(2, 470)], pool)).toBe(false);
    expect(stallsTrimmedHold(config, sb, [obs(9, 470), obs(10, 470), obs(9, 470)], pool)).toBe(true);
  });

  it('peer test: conditional binomial against the pooled peers, with the ratio and delta gates', () => {
    const sb = stallBaseline(config, baselineState(), 0.008);
    if (!sb) throw new Error('no baseline');
    // 22 episodes over 100 s against 18 over 300 s: P(Binomial(40, ¼) ≥ 22) = 4.864e-5 → z 3.897 < zPeer 4
    const r = stallPeerTest(config, sb, obs(22, 100), obs(18, 300));
    expect(r?.z).toBeCloseTo(3.897, 1);
    expect(r?.value).toBeCloseTo((18 / 300_000) * 2_000, 9);
    expect(r?.bad).toBe(false);
    expect(stallPeerTest(config, sb, obs(30, 100), obs(18, 300))?.bad).toBe(true);
    // every CDN as bad: no evidence against the peers
    expect(stallPeerTest(config, sb, obs(30, 100), obs(90, 300))?.bad).toBe(false);
  });
});
