import type { DetectorConfig } from './config.js';
import type { MetricObservation } from './series.js';
import type { MetricState } from './state.js';
import { pearsonDispersion, poissonExcessZ, rateRatioZ } from './stats.js';

/**
 * Count evidence for rebuffer_ratio: rebuffering episodes per playing time. A CDN that stalls more
 * often shows it first in the number of episodes — a count whose noise is Poisson — while the stalled
 * time adds the spread of the durations on top (compound Poisson: for exponential durations half
 * the information is lost). So the own and peer tests on episode counts are exact Poisson /
 * conditional-binomial tests, with a dispersion measured on the history for sessions whose stalls
 * cluster. Stall time (the level tests of judge.ts) still catches longer stalls at an unchanged rate.
 */

export interface StallBaseline {
  /** Episodes per playing ms (EWMA of counts / EWMA of playing time). */
  rate: number;
  /** rate, raised so that the implied rebuffer ratio is at least the metric's absFloor. */
  floorRate: number;
  /** Quasi-Poisson dispersion: max(configured minimum, measured on the history). */
  phi: number;
  /** rebuffer_ratio baseline / rate: converts a stall-rate difference into ratio units. */
  ratioPerRate: number;
}

/** null until the history holds stall episodes (nothing to scale an excess against). */
export function stallBaseline(config: DetectorConfig, ms: MetricState, baseline: number): StallBaseline | null {
  if (ms.baseStalls === null || ms.baseExposureMs === null || !(ms.baseStalls > 0 && ms.baseExposureMs > 0 && baseline > 0)) return null;
  const rate = ms.baseStalls / ms.baseExposureMs;
  const ratioPerRate = baseline / rate;
  return {
    rate,
    floorRate: Math.max(rate, config.metrics.rebuffer_ratio.absFloor / ratioPerRate),
    phi: Math.max(config.stallDispersion, ms.stallDispersion ?? 1),
    ratioPerRate,
  };
}

/** Pearson dispersion of the history's episode counts around the baseline rate (1 = Poisson). */
export function refreshStallDispersion(ms: MetricState): void {
  if (ms.baseStalls === null || ms.baseExposureMs === null || !(ms.baseExposureMs > 0)) return;
  const rate = ms.baseStalls / ms.baseExposureMs;
  ms.stallDispersion = pearsonDispersion(ms.history.flatMap((h) => (h.stalls === undefined || h.exposureMs === undefined
    ? [] : [{ count: h.stalls, expected: rate * h.exposureMs }])));
}

function rateOf(o: MetricObservation): number | null {
  return o.stalls !== undefined && o.exposureMs !== undefined && o.exposureMs > 0 ? o.stalls / o.exposureMs : null;
}

/** Stall rate ≥ ratio × the floored baseline rate, and the implied ratio ≥ minAbsDelta above the baseline. */
export function stallsWorse(config: DetectorConfig, sb: StallBaseline, o: MetricObservation, ratio: number): boolean {
  const rate = rateOf(o);
  return rate !== null && rate >= ratio * sb.floorRate && (rate - sb.rate) * sb.ratioPerRate >= config.metrics.rebuffer_ratio.minAbsDelta;
}

/** z of the episode count of o against the baseline rate over its playing time (exact Poisson tail). */
export function stallOwnZ(sb: StallBaseline, o: MetricObservation): number {
  return poissonExcessZ(o.stalls ?? 0, sb.rate * (o.exposureMs ?? 0), sb.phi);
}

/**
 * A one-window burst (a transient glitch stalling many sessions at once) must not demote on its own:
 * the span without its window of highest stall rate must still be worse, with z ≥ zTrimmed.
 */
export function stallsTrimmedHold(config: DetectorConfig, sb: StallBaseline, inSpan: readonly MetricObservation[], pool: (o: MetricObservation[]) => MetricObservation | null): boolean {
  if (inSpan.length < 2) return true;
  let worst = 0;
  inSpan.forEach((o, i) => {
    if ((rateOf(o) ?? -1) > (rateOf(inSpan[worst] ?? o) ?? -1)) worst = i;
  });
  const trimmed = pool(inSpan.filter((_, i) => i !== worst));
  return trimmed !== null && stallsWorse(config, sb, trimmed, 1) && stallOwnZ(sb, trimmed) >= config.zTrimmed;
}

export interface StallPeerResult {
  /** Stall rate of the pooled peers, in implied rebuffer-ratio units. */
  value: number;
  z: number;
  bad: boolean;
}

/**
 * Peer test on counts: the CDN's episodes against those of its peers pooled over the same windows
 * (exact conditional binomial: equal rates ⇒ X | X + Y ~ Binomial(n, ex / (ex + ey))). Pooling the
 * peers gives the reference the most volume and no min-of-peers selection bias; a peer that degrades
 * too only raises the reference (conservative), and when every CDN degrades the null holds: no decision.
 */
export function stallPeerTest(config: DetectorConfig, sb: StallBaseline, o: MetricObservation, peers: MetricObservation): StallPeerResult | null {
  const rate = rateOf(o);
  const peerRate = rateOf(peers);
  if (rate === null || peerRate === null) return null;
  const rule = config.metrics.rebuffer_ratio;
  const z = rateRatioZ(o.stalls ?? 0, o.exposureMs ?? 0, peers.stalls ?? 0, peers.exposureMs ?? 0, sb.phi);
  const floorRate = Math.max(peerRate, rule.absFloor / sb.ratioPerRate);
  const bad = rate >= config.peerRatioThreshold * floorRate && (rate - peerRate) * sb.ratioPerRate >= rule.minAbsDelta && z >= config.zPeer;
  return { value: peerRate * sb.ratioPerRate, z, bad };
}
