import { histogramToArrays } from '../../lib/histogram.js';
import type { MetricsRecord } from '../../processors/metrics-record.js';
import { binomial, exponentialSum, lognormalHistogram, poisson, type Rng } from './random.js';

/**
 * Synthetic per-window aggregates (qoe.metrics.v1 records) for the detector evaluation: no sessions
 * are simulated, each window × scope × CDN is drawn directly with binomial / Poisson / compound-
 * Poisson noise around a healthy profile, with a daily cycle of volume and labelled degradations.
 */

export type DegradationKind = 'rebuffer' | 'vsf' | 'ttfb';

export interface Degradation {
  id: string;
  country: string;
  /** Degraded CDNs (all of the scope's CDNs for an "everything degrades together" case). */
  cdns: string[];
  kind: DegradationKind;
  shape: 'step' | 'ramp';
  /** Multiplier reached by the metric's driver (stall hazard, failure probability, TTFB median). */
  factor: number;
  startWindow: number;
  durationWindows: number;
  /** Ramps reach `factor` after this many windows. */
  rampWindows: number;
  /** Whether a demotion is the right answer (false: all CDNs degrade, or the scope is too small). */
  expectDecision: boolean;
}

export interface ScopeProfile {
  country: string;
  /** Concurrent sessions of the whole scope at the daily peak. */
  peakConcurrent: number;
  /** Share of the scope's sessions per CDN (same order as cdns). */
  cdnShare: number[];
  /** Local hour offset from UTC (moves the daily peak). */
  utcOffsetHours: number;
}

export interface HealthyProfile {
  meanSessionMs: number;
  vsfProb: number;
  ebvsProb: number;
  vstMedianMs: number;
  vstSigma: number;
  pausedShare: number;
  /** Stall episodes per playing second and mean stall duration: ratio ≈ hazard × mean. */
  stallHazardPerS: number;
  stallMeanMs: number;
  seekHazardPerS: number;
  seekMeanMs: number;
  vpfPerPlay: number;
  requestEveryMs: number;
  requestErrorProb: number;
  ttfbMedianMs: number;
  ttfbSigma: number;
}

export const HEALTHY: HealthyProfile = {
  meanSessionMs: 300_000,
  vsfProb: 0.01,
  ebvsProb: 0.04,
  vstMedianMs: 1_500,
  vstSigma: 0.6,
  pausedShare: 0.05,
  stallHazardPerS: 0.004,
  stallMeanMs: 2_000,
  seekHazardPerS: 0.001,
  seekMeanMs: 600,
  vpfPerPlay: 0.003,
  requestEveryMs: 4_000,
  requestErrorProb: 0.003,
  ttfbMedianMs: 60,
  ttfbSigma: 0.5,
};

/** Daily cycle of volume: trough 15% of peak around 04:00 local, peak around 20:00 local. */
export function dailyFactor(windowStartMs: number, utcOffsetHours: number): number {
  const hour = (((windowStartMs / 3_600_000 + utcOffsetHours) % 24) + 24) % 24;
  return 0.575 + 0.425 * Math.cos((2 * Math.PI * (hour - 20)) / 24);
}

export function degradationFactor(d: Degradation, window: number): number {
  if (window < d.startWindow || window >= d.startWindow + d.durationWindows) return 1;
  if (d.shape === 'step') return d.factor;
  return 1 + (d.factor - 1) * Math.min(1, (window - d.startWindow + 1) / d.rampWindows);
}

export interface CdnFactors {
  rebuffer: number;
  vsf: number;
  ttfb: number;
}

/** Draws one window of one CDN in one scope as a window-metrics record. */
export function drawRecord(
  rng: Rng, windowStartMs: number, windowMs: number, country: string, cdn: string, concurrent: number, f: CdnFactors, h: HealthyProfile = HEALTHY,
): MetricsRecord {
  const sessions = poisson(rng, concurrent);
  const activeMs = sessions * windowMs;
  const attempts = poisson(rng, (concurrent * windowMs) / h.meanSessionMs);
  const vsf = binomial(rng, attempts, Math.min(1, h.vsfProb * f.vsf));
  const ebvs = binomial(rng, attempts - vsf, h.ebvsProb);
  const plays = attempts - vsf - ebvs;
  const vst = histogramToArrays(lognormalHistogram(rng, plays, h.vstMedianMs, h.vstSigma));
  const startingMs = plays * h.vstMedianMs;
  const pausedMs = Math.round(activeMs * h.pausedShare);
  const playingS = Math.max(0, activeMs - startingMs - pausedMs) / 1000;
  const stalls = poisson(rng, playingS * h.stallHazardPerS * f.rebuffer);
  const rebufferMs = Math.round(exponentialSum(rng, stalls, h.stallMeanMs));
  const seeks = poisson(rng, playingS * h.seekHazardPerS);
  const seekMs = Math.round(exponentialSum(rng, seeks, h.seekMeanMs));
  const playingMs = Math.max(0, activeMs - startingMs - pausedMs - rebufferMs - seekMs);
  const vpf = poisson(rng, (concurrent * windowMs * h.vpfPerPlay) / h.meanSessionMs);
  const ttfb = lognormalHistogram(rng, poisson(rng, activeMs / h.requestEveryMs), h.ttfbMedianMs * f.ttfb, h.ttfbSigma);
  const ttfbArr = histogramToArrays(ttfb);
  const requests = ttfbArr.counts.reduce((a, b) => a + b, 0);
  return {
    window_start_ms: windowStartMs, window_ms: windowMs, source_partition: 0, errors: [],
    cdn, country, asn: '', attempts, plays, vsf, ebvs, vpf, ended: 0,
    vst_count: plays, vst_sum_ms: startingMs, starting_ms: startingMs, playing_ms: playingMs, paused_ms: pausedMs,
    rebuffer_ms: rebufferMs, rebuffer_count: stalls, seek_ms: seekMs, seek_count: seeks, active_ms: activeMs,
    requests, request_errors: binomial(rng, requests, h.requestErrorProb),
    vst_hist_keys: vst.keys, vst_hist_counts: vst.counts, ttfb_hist_keys: ttfbArr.keys, ttfb_hist_counts: ttfbArr.counts,
  };
}

/** The factors of one CDN in one scope at one window, from the labelled degradations. */
export function factorsAt(degradations: readonly Degradation[], country: string, cdn: string, window: number): CdnFactors {
  const f: CdnFactors = { rebuffer: 1, vsf: 1, ttfb: 1 };
  for (const d of degradations) {
    if (d.country !== country || !d.cdns.includes(cdn)) continue;
    f[d.kind] *= degradationFactor(d, window);
  }
  return f;
}
