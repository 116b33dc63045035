import { MAX_KEY, bucketValue, type Histogram } from '../../lib/histogram.js';
import type { MetricsRecord } from '../../processors/metrics-record.js';
import type { DetectorMetric } from './config.js';

/**
 * The sums the detector needs from qoe.metrics.v1 records, per window × scope × CDN. Records are
 * deltas: any number of them (partitions, dimension sets, corrections) add up, in any order.
 */
export interface SeriesAgg {
  attempts: number;
  plays: number;
  vsf: number;
  vpf: number;
  playingMs: number;
  rebufferMs: number;
  rebufferCount: number;
  seekMs: number;
  seekCount: number;
  activeMs: number;
  requests: number;
  requestErrors: number;
  vstHist: Histogram;
  ttfbHist: Histogram;
}

export function emptySeriesAgg(): SeriesAgg {
  return {
    attempts: 0, plays: 0, vsf: 0, vpf: 0, playingMs: 0, rebufferMs: 0, rebufferCount: 0, seekMs: 0, seekCount: 0, activeMs: 0,
    requests: 0, requestErrors: 0, vstHist: new Map(), ttfbHist: new Map(),
  };
}

function num(rec: MetricsRecord, field: string): number {
  const v = rec[field];
  if (typeof v === 'number') return Number.isFinite(v) ? v : 0;
  if (typeof v === 'bigint') return Number(v);
  return 0;
}

function nums(rec: MetricsRecord, field: string): number[] {
  const v = rec[field];
  return Array.isArray(v) ? v.map((x) => (typeof x === 'number' || typeof x === 'bigint' ? Number(x) : 0)) : [];
}

export function str(rec: MetricsRecord, field: string): string {
  const v = rec[field];
  return typeof v === 'string' ? v : '';
}

/** In-place merge of the storage form (parallel key / count arrays) into a histogram. */
function addBuckets(h: Histogram, keys: readonly number[], counts: readonly number[]): void {
  keys.forEach((k, i) => h.set(k, (h.get(k) ?? 0) + (counts[i] ?? 0)));
}

/** Adds one record (a delta) into the aggregate, in place. */
export function addRecord(agg: SeriesAgg, rec: MetricsRecord): void {
  agg.attempts += num(rec, 'attempts');
  agg.plays += num(rec, 'plays');
  agg.vsf += num(rec, 'vsf');
  agg.vpf += num(rec, 'vpf');
  agg.playingMs += num(rec, 'playing_ms');
  agg.rebufferMs += num(rec, 'rebuffer_ms');
  agg.rebufferCount += num(rec, 'rebuffer_count');
  agg.seekMs += num(rec, 'seek_ms');
  agg.seekCount += num(rec, 'seek_count');
  agg.activeMs += num(rec, 'active_ms');
  agg.requests += num(rec, 'requests');
  agg.requestErrors += num(rec, 'request_errors');
  addBuckets(agg.vstHist, nums(rec, 'vst_hist_keys'), nums(rec, 'vst_hist_counts'));
  addBuckets(agg.ttfbHist, nums(rec, 'ttfb_hist_keys'), nums(rec, 'ttfb_hist_counts'));
}

/**
 * One metric of one window (or of a pooled span of windows). For ratios value = num / den; for
 * percentiles value = the p90 of the (merged) histogram, den = its sample count and num = value × den,
 * so that pooled num / den stays a volume-weighted level. volume is in the unit MetricRule.minVolume
 * is stated in. null when the window has no denominator.
 */
export interface MetricObservation {
  value: number;
  num: number;
  den: number;
  volume: number;
  /** rebuffer_ratio: stall episodes (rebuffer + seek counts) behind num. */
  events?: number;
  /**
   * rebuffer_ratio: rebuffering episodes (seeks excluded) and the playing time they happened in (ms):
   * the count evidence of the stall-rate test (episodes ~ Poisson in playing time).
   */
  stalls?: number;
  exposureMs?: number;
  /** Percentile metrics: the histograms the value was read from (merged when windows are pooled). */
  hists?: readonly Histogram[];
}

/** Concurrent sessions estimated as active time / window length. */
export function concurrentSessions(agg: SeriesAgg, windowMs: number): number {
  return agg.activeMs / windowMs;
}

function ratioObs(n: number, d: number, volume: number): MetricObservation | null {
  return d > 0 ? { value: n / d, num: n, den: d, volume } : null;
}

// Dense scratch for percentile reads over merged histograms (keys are 0..MAX_KEY): no sort, no
// allocation per call. Always left zeroed, so the functions using it stay pure from the outside.
const scratch = new Float64Array(MAX_KEY + 1);

/**
 * The q-quantile of the sum of the histograms, by the nearest-rank rule of lib/histogram.ts
 * histogramQuantile (same value), with the total count. null when empty.
 */
export function mergedQuantile(hists: readonly Histogram[], q: number): { value: number; count: number } | null {
  let n = 0;
  let lo = MAX_KEY;
  let hi = 0;
  for (const h of hists) {
    for (const [k0, c] of h) {
      const k = Math.min(Math.max(k0, 0), MAX_KEY);
      scratch[k] = (scratch[k] ?? 0) + c;
      n += c;
      if (k < lo) lo = k;
      if (k > hi) hi = k;
    }
  }
  let value: number | null = null;
  if (n > 0) {
    const rank = Math.max(1, Math.ceil(q * n));
    let seen = 0;
    for (let k = lo; k <= hi && value === null; k++) {
      seen += scratch[k] ?? 0;
      if (seen >= rank) value = bucketValue(k);
    }
    value ??= bucketValue(hi);
  }
  scratch.fill(0, Math.min(lo, hi), hi + 1);
  return value === null ? null : { value, count: n };
}

function p90Obs(hists: readonly Histogram[]): MetricObservation | null {
  const r = mergedQuantile(hists, 0.9);
  return r === null ? null : { value: r.value, num: r.value * r.count, den: r.count, volume: r.count, hists };
}

export const PERCENTILE_METRICS: ReadonlySet<DetectorMetric> = new Set(['vst_p90_ms', 'ttfb_p90_ms']);

/** Metric definitions as in query/metrics.ts (ratios of sums, percentiles of merged histograms). */
export function observeMetric(agg: SeriesAgg, metric: DetectorMetric, windowMs: number): MetricObservation | null {
  switch (metric) {
    case 'rebuffer_ratio': {
      const stalled = agg.rebufferMs + agg.seekMs;
      const o = ratioObs(stalled, agg.playingMs + stalled, concurrentSessions(agg, windowMs));
      return o && { ...o, events: agg.rebufferCount + agg.seekCount, stalls: agg.rebufferCount, exposureMs: agg.playingMs };
    }
    case 'vsf_rate':
      return ratioObs(agg.vsf, agg.attempts, agg.attempts);
    case 'vpf_rate':
      return ratioObs(agg.vpf, agg.plays, agg.plays);
    case 'request_error_rate':
      return ratioObs(agg.requestErrors, agg.requests, agg.requests);
    case 'vst_p90_ms':
      return p90Obs([agg.vstHist]);
    case 'ttfb_p90_ms':
      return p90Obs([agg.ttfbHist]);
  }
}

/**
 * Pools observations of consecutive windows: sums for ratios, merged histograms for percentiles
 * (the volume of a pooled rebuffer_ratio is the mean concurrency, of the others the summed count).
 */
export function poolObservations(metric: DetectorMetric, obs: readonly MetricObservation[]): MetricObservation | null {
  if (obs.length === 0) return null;
  if (PERCENTILE_METRICS.has(metric)) {
    return obs.length === 1 && obs[0] ? obs[0] : p90Obs(obs.flatMap((o) => o.hists ?? []));
  }
  let num = 0;
  let den = 0;
  let volume = 0;
  let events = 0;
  let stalls = 0;
  let exposureMs = 0;
  for (const o of obs) {
    num += o.num;
    den += o.den;
    volume += o.volume;
    events += o.events ?? 0;
    stalls += o.stalls ?? 0;
    exposureMs += o.exposureMs ?? 0;
  }
  if (metric !== 'rebuffer_ratio') return ratioObs(num, den, volume);
  const o = ratioObs(num, den, volume / obs.length);
  return o && { ...o, events, stalls, exposureMs };
}
