import { describe, expect, it } from 'vitest';
import { evaluateScenario } from './harness.js';
import { createRng, poisson } from './random.js';
import { CDNS, SCOPES, SIM_START_MS, incidentWeek, type EvalScenario } from './scenarios.js';
import { HEALTHY, dailyFactor, drawRecord } from './synth.js';

describe('synthetic series', () => {
  it('draws aggregates whose long-run rates match the healthy profile', () => {
    const rng = createRng(3);
    let stalled = 0;
    let watched = 0;
    let vsf = 0;
    let attempts = 0;
    for (let i = 0; i < 2_000; i++) {
      const r = drawRecord(rng, 0, 10_000, 'US', 'cdn-a', 300, { rebuffer: 1, vsf: 1, ttfb: 1 });
      const st = Number(r.rebuffer_ms) + Number(r.seek_ms);
      stalled += st;
      watched += Number(r.playing_ms) + st;
      vsf += Number(r.vsf);
      attempts += Number(r.attempts);
    }
    const expected = (HEALTHY.stallHazardPerS * HEALTHY.stallMeanMs + HEALTHY.seekHazardPerS * HEALTHY.seekMeanMs) / 1000;
    expect(stalled / watched).toBeGreaterThan(expected * 0.9);
    expect(stalled / watched).toBeLessThan(expected * 1.1);
    expect(vsf / attempts).toBeCloseTo(HEALTHY.vsfProb, 2);
  });

  it('poisson draws have the right mean on both paths', () => {
    const rng = createRng(9);
    for (const mean of [0.5, 4, 80]) {
      let s = 0;
      for (let i = 0; i < 20_000; i++) s += poisson(rng, mean);
      expect(s / 20_000).toBeCloseTo(mean, mean > 10 ? 0 : 1);
    }
  });

  it('has a daily cycle between 15% and 100% of the peak', () => {
    const f = Array.from({ length: 24 }, (_, h) => dailyFactor(h * 3_600_000, 0));
    expect(Math.max(...f)).toBeCloseTo(1, 5);
    expect(Math.min(...f)).toBeCloseTo(0.15, 5);
  });

  it('labels the incident week: one incident per 3 hours, all-CDN and tiny-scope ones expect no decision', () => {
    const sc = incidentWeek(1);
    expect(sc.degradations).toHaveLength(56);
    expect(sc.degradations.filter((d) => d.cdns.length === CDNS.length).every((d) => d.expect === 'none')).toBe(true);
    expect(sc.degradations.filter((d) => d.country === 'IS').every((d) => d.expect === 'none')).toBe(true);
  });
});

describe('evaluation harness', () => {
  it('scores a short run: a ×5 rebuffer step on a large CDN is detected, nothing else is decided', () => {
    const us = SCOPES.filter((s) => s.country === 'US');
    const sc: EvalScenario = {
      name: 'short', seed: 5, startMs: SIM_START_MS + 20 * 3_600_000, windowMs: 10_000, windows: 720, cdns: CDNS, scopes: us,
      degradations: [{
        id: 'x', country: 'US', cdns: ['cdn-b'], kind: 'rebuffer', shape: 'step', factor: 5, startWindow: 400, durationWindows: 120,
        rampWindows: 1, expectDecision: true, expect: 'decision', concurrentAtStart: 1000,
      }],
    };
    const r = evaluateScenario(sc, {}, 300_000);
    expect(r.falseDecisions).toBe(0);
    expect(r.truePositives).toBe(1);
    expect(r.incidents[0]?.delayWindows).toBeLessThanOrEqual(3);
    expect(r.incidents[0]?.restoredAfterEndWindows).not.toBeNull();
    expect(r.cooldownViolations).toBe(0);
  });
});
