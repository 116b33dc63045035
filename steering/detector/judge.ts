import { median, medianAbsoluteDeviation } from 'simple-statistics';
import type { DetectorConfig, DetectorMetric } from './config.js';
import { DETECTOR_METRICS } from './config.js';
import { concurrentSessions, observeMetric, poolObservations, type MetricObservation, type SeriesAgg } from './series.js';
import type { CdnState, MetricState, ScopeState } from './state.js';
import { refreshStallDispersion, stallBaseline, stallOwnZ, stallPeerTest, stallsTrimmedHold, stallsWorse, type StallBaseline } from './stalls.js';
import {
  MAD_TO_SIGMA, binomialUpperTail, countTrue, cusumUpdate, ewmaAlphaForSpan, ewmaUpdate, poissonUpperTail, pushBounded, zFromUpperTail,
} from './stats.js';

/**
 * Metrics whose numerator is a count of rare events: the normal approximation is poor at a handful
 * of events, so their z is also read from the exact Poisson (own) / conditional binomial (peer) tail
 * and the smaller of the two is kept.
 */
const COUNT_METRICS: ReadonlySet<DetectorMetric> = new Set(['vsf_rate', 'vpf_rate', 'request_error_rate']);

/** The verdict on one metric of one CDN in one window. */
export interface Verdict {
  metric: DetectorMetric;
  /** This window's observation (null: not enough volume in this window). */
  window: MetricObservation | null;
  /** Pooled over the last spanWindows windows. */
  span: MetricObservation;
  /**
   * The level that is judged: the span, or — when the own test fired through the CUSUM — the
   * CUSUM's run of runWindows windows (peers are compared over the same windows).
   */
  level: MetricObservation;
  runWindows: number;
  /** Own baseline level; null while the history warms up. */
  baseline: number | null;
  /** σ of the span level (volume-scaled robust scale, floored); null while warming up. */
  spanScale: number | null;
  /** Robust z of the span level against the own baseline. */
  score: number;
  cusum: number;
  /** The own test fired on the level (ratio / percentile), or — rebuffer_ratio — on episode counts. */
  ownBad: boolean;
  ownLevel: boolean;
  ownStalls: boolean;
  /** rebuffer_ratio count evidence: the windows it was judged over (the span or the CUSUM's run) and its z. */
  stallLevel: MetricObservation | null;
  stallRunWindows: number;
  stallScore: number;
  /** Which evidence made the CDN bad: 'level' (stall time, failures, percentiles) or 'stalls' (episode counts). */
  evidence: 'level' | 'stalls';
  /** Best other not-demoted CDN of the scope in this window (filled after all own verdicts). */
  bestPeer: { cdn: string; value: number } | null;
  peerScore: number;
  bad: boolean;
  /** Degraded now, and elevated in ≥ persistenceK of the last persistenceM windows. */
  persistent: boolean;
}

export type ScopeVerdicts = Map<string, Map<DetectorMetric, Verdict>>;

function windowObservation(config: DetectorConfig, agg: SeriesAgg | undefined, metric: DetectorMetric): MetricObservation | null {
  if (!config.metrics[metric].enabled || agg === undefined) return null;
  if (concurrentSessions(agg, config.windowMs) < config.minConcurrentSessions) return null;
  return observeMetric(agg, metric, config.windowMs);
}

/** Robust σ per unit of volume: residuals (v − baseline)·√den of the history; max(1.4826·MAD, RMS). */
export function unitScale(history: ReadonlyArray<{ value: number; den: number }>, baseline: number): number {
  const r = history.map((h) => (h.value - baseline) * Math.sqrt(h.den));
  let ss = 0;
  for (const x of r) ss += x * x;
  const rms = Math.sqrt(ss / Math.max(1, r.length));
  const robust = r.length > 0 ? MAD_TO_SIGMA * medianAbsoluteDeviation(r) : 0;
  return Math.max(robust, rms);
}

function baselineOf(ms: MetricState, config: DetectorConfig): number | null {
  if (ms.history.length < config.minHistoryWindows || ms.baseNum === null || ms.baseDen === null || !(ms.baseDen > 0)) return null;
  return ms.baseNum / ms.baseDen;
}

/** σ of a level measured over `den` units of volume. */
function scaleAt(config: DetectorConfig, metric: DetectorMetric, unit: number, den: number, baseline: number): number {
  const rule = config.metrics[metric];
  return Math.max(unit / Math.sqrt(Math.max(den, Number.MIN_VALUE)), rule.minScale, config.minScaleRel * baseline, Number.MIN_VALUE);
}

/**
 * Unit of the exact-tail tests and of the Poisson CUSUM (quasi-Poisson): one event for COUNT_METRICS,
 * one baseline-mean stall episode (ms) for rebuffer_ratio, times the dispersion φ — the larger of
 * the configured minimum (1 for counts, rebufferDispersion for stalls) and the dispersion measured
 * on the history (robust σ² per unit volume / (baseline × unit)). null for percentiles.
 */
function pseudoCounts(config: DetectorConfig, ms: MetricState, metric: DetectorMetric): number | null {
  let unit: number;
  let minPhi = 1;
  if (COUNT_METRICS.has(metric)) unit = 1;
  else if (metric === 'rebuffer_ratio' && ms.baseNum !== null && ms.baseEvents !== null && ms.baseEvents > 0) {
    unit = Math.max(1, ms.baseNum / ms.baseEvents);
    minPhi = config.rebufferDispersion;
  } else return null;
  const base = ms.baseNum !== null && ms.baseDen !== null && ms.baseDen > 0 ? ms.baseNum / ms.baseDen : 0;
  const phiHat = ms.unitScale !== null && base > 0 ? (ms.unitScale * ms.unitScale) / (base * unit) : 0;
  return unit * Math.max(minPhi, phiHat);
}

/** Pools the recent observations of windows ending at or after fromEndMs (recent is in time order). */
function pooledSince(metric: DetectorMetric, ms: MetricState, fromEndMs: number): MetricObservation | null {
  const picked: MetricObservation[] = [];
  for (let i = ms.recent.length - 1; i >= 0; i--) {
    const r = ms.recent[i];
    if (!r || r.endMs < fromEndMs) break;
    picked.push(r.obs);
  }
  return poolObservations(metric, picked);
}

/** Poisson CUSUM step: log-likelihood ratio of rate ×ρ against the baseline for this window. */
function cusumStep(
  config: DetectorConfig, ms: MetricState, metric: DetectorMetric, obs: MetricObservation, baseline: number, endMs: number, sb: StallBaseline | null,
): void {
  const rho = config.cusumDesignRatio;
  let llr: number;
  if (sb) {
    // rebuffer_ratio with a stall baseline: the CUSUM runs on episode counts (see stalls.ts).
    llr = ((obs.stalls ?? 0) / sb.phi) * Math.log(rho) - ((sb.floorRate * (obs.exposureMs ?? 0)) / sb.phi) * (rho - 1);
  } else {
    const pc = pseudoCounts(config, ms, metric);
    if (pc === null) return;
    const floor = Math.max(baseline, config.metrics[metric].absFloor);
    llr = (obs.num / pc) * Math.log(rho) - ((floor * obs.den) / pc) * (rho - 1);
  }
  const was = ms.cusum;
  ms.cusum = cusumUpdate(ms.cusum, llr, 0, config.cusumStepCap);
  if (ms.cusum === 0) ms.cusumRunStartMs = null;
  else if (was === 0) ms.cusumRunStartMs = endMs;
}

/**
 * Robustness to one extreme window (stall durations are heavy-tailed): the span without its worst
 * window must still be worse than the baseline (ratio) with z ≥ zTrimmed. With spanWindows = 1
 * there is nothing to trim.
 */
function spanWindowsOf(config: DetectorConfig, ms: MetricState, endMs: number): MetricObservation[] {
  const from = endMs - (config.spanWindows - 1) * config.windowMs;
  return ms.recent.filter((r) => r.endMs >= from).map((r) => r.obs);
}

function trimmedHolds(
  config: DetectorConfig, ms: MetricState, metric: DetectorMetric, baseline: number, pc: number | null, endMs: number,
  worse: (o: MetricObservation) => boolean,
): boolean {
  const inSpan = spanWindowsOf(config, ms, endMs);
  if (inSpan.length < 2) return true;
  let worst = 0;
  inSpan.forEach((o, i) => {
    if (o.value > (inSpan[worst]?.value ?? -Infinity)) worst = i;
  });
  const trimmed = poolObservations(metric, inSpan.filter((_, i) => i !== worst));
  if (trimmed === null || ms.unitScale === null || !worse(trimmed)) return false;
  let z = (trimmed.value - baseline) / scaleAt(config, metric, ms.unitScale, trimmed.den, baseline);
  if (pc) z = Math.min(z, zFromUpperTail(poissonUpperTail(trimmed.num / pc, (baseline * trimmed.den) / pc)));
  return z >= config.zTrimmed;
}

/** Own-baseline judgement of one metric of one CDN: null when this window or the span has too little volume. */
function judgeOwn(config: DetectorConfig, ms: MetricState, metric: DetectorMetric, obs: MetricObservation | null, endMs: number): Verdict | null {
  const rule = config.metrics[metric];
  const keepFrom = endMs - config.maxRunWindows * config.windowMs;
  while ((ms.recent[0]?.endMs ?? Infinity) <= keepFrom) ms.recent.shift();
  if (obs) ms.recent.push({ endMs, obs });
  const span = pooledSince(metric, ms, endMs - (config.spanWindows - 1) * config.windowMs);
  if (span === null || span.volume < rule.minVolume || obs === null) return null;
  const baseline = baselineOf(ms, config);
  const v: Verdict = {
    metric, window: obs, span, level: span, runWindows: config.spanWindows, baseline, spanScale: null, score: 0, cusum: ms.cusum,
    ownBad: false, ownLevel: false, ownStalls: false, stallLevel: null, stallRunWindows: config.spanWindows, stallScore: 0, evidence: 'level',
    bestPeer: null, peerScore: 0, bad: false, persistent: false,
  };
  if (baseline === null) return v;
  if (ms.unitScale === null || ms.sinceScaleRefresh >= config.scaleRefreshWindows) {
    ms.unitScale = unitScale(ms.history, baseline);
    if (metric === 'rebuffer_ratio') refreshStallDispersion(ms);
    ms.sinceScaleRefresh = 0;
  }
  ms.sinceScaleRefresh++;
  v.spanScale = scaleAt(config, metric, ms.unitScale, span.den, baseline);
  v.score = (span.value - baseline) / v.spanScale;
  const pc = pseudoCounts(config, ms, metric);
  if (pc) v.score = Math.min(v.score, zFromUpperTail(poissonUpperTail(span.num / pc, (baseline * span.den) / pc)));
  const sb = metric === 'rebuffer_ratio' ? stallBaseline(config, ms, baseline) : null;
  cusumStep(config, ms, metric, obs, baseline, endMs, sb);
  v.cusum = ms.cusum;
  const floor = Math.max(baseline, rule.absFloor);
  const worse = (o: MetricObservation): boolean => o.value >= config.ratioThreshold * floor && o.value - baseline >= rule.minAbsDelta;
  if (worse(span) && v.score >= config.zOwn && trimmedHolds(config, ms, metric, baseline, pc, endMs, worse)) v.ownLevel = true;
  if (sb) judgeOwnStalls(config, ms, sb, v, endMs);
  else if (!v.ownLevel && ms.cusum >= config.cusumH && ms.cusumRunStartMs !== null) {
    const run = pooledSince(metric, ms, ms.cusumRunStartMs);
    if (run && worse(run)) {
      v.ownLevel = true;
      v.level = run;
      v.runWindows = Math.round((endMs - ms.cusumRunStartMs) / config.windowMs) + 1;
      v.score = (run.value - baseline) / scaleAt(config, metric, ms.unitScale, run.den, baseline);
    }
  }
  v.ownBad = v.ownLevel || v.ownStalls;
  return v;
}

/** rebuffer_ratio on episode counts: the span (exact Poisson, trimmed) or the count CUSUM's run. */
function judgeOwnStalls(config: DetectorConfig, ms: MetricState, sb: StallBaseline, v: Verdict, endMs: number): void {
  const pool = (os: MetricObservation[]): MetricObservation | null => poolObservations('rebuffer_ratio', os);
  const z = stallOwnZ(sb, v.span);
  if (stallsWorse(config, sb, v.span, config.ratioThreshold) && z >= config.zStalls && stallsTrimmedHold(config, sb, spanWindowsOf(config, ms, endMs), pool)) {
    v.ownStalls = true;
    v.stallLevel = v.span;
    v.stallScore = z;
  } else if (ms.cusum >= config.cusumH && ms.cusumRunStartMs !== null) {
    const run = pooledSince('rebuffer_ratio', ms, ms.cusumRunStartMs);
    if (run && stallsWorse(config, sb, run, config.ratioThreshold)) {
      v.ownStalls = true;
      v.stallLevel = run;
      v.stallRunWindows = Math.round((endMs - ms.cusumRunStartMs) / config.windowMs) + 1;
      v.stallScore = stallOwnZ(sb, run);
    }
  }
}

export interface PeerLevel {
  cdn: string;
  value: number;
  num: number;
  den: number;
}

/** The other not-demoted CDNs of the scope with a verdict, each with its level over the same windows. */
function peerLevels(
  config: DetectorConfig, scope: ScopeState, verdicts: ScopeVerdicts, cdn: string, metric: DetectorMetric, runWindows: number, endMs: number,
): Array<{ cdn: string; level: MetricObservation }> {
  const out: Array<{ cdn: string; level: MetricObservation }> = [];
  for (const other of scope.neutral) {
    if (other === cdn || scope.cdns.get(other)?.demotion) continue;
    const v = verdicts.get(other)?.get(metric);
    const ms = scope.cdns.get(other)?.metrics[metric];
    if (!v || !ms) continue;
    const level = runWindows === config.spanWindows ? v.span : pooledSince(metric, ms, endMs - (runWindows - 1) * config.windowMs);
    if (level) out.push({ cdn: other, level });
  }
  return out;
}

/** Lowest level (over the same windows) among the other not-demoted CDNs of the scope with a verdict. */
export function bestPeerOf(
  config: DetectorConfig, scope: ScopeState, verdicts: ScopeVerdicts, cdn: string, metric: DetectorMetric, runWindows: number, endMs: number,
): PeerLevel | null {
  let best: PeerLevel | null = null;
  for (const { cdn: other, level } of peerLevels(config, scope, verdicts, cdn, metric, runWindows, endMs)) {
    if (best === null || level.value < best.value) best = { cdn: other, value: level.value, num: level.num, den: level.den };
  }
  return best;
}

/** The other not-demoted CDNs of the scope with a verdict, pooled over the same windows. */
function pooledPeers(config: DetectorConfig, scope: ScopeState, verdicts: ScopeVerdicts, cdn: string, metric: DetectorMetric, runWindows: number, endMs: number): { cdns: string[]; obs: MetricObservation } | null {
  const peers = peerLevels(config, scope, verdicts, cdn, metric, runWindows, endMs);
  const obs = poolObservations(metric, peers.map((p) => p.level));
  return obs && { cdns: peers.map((p) => p.cdn), obs };
}

/** Peer judgement of the episode-count evidence (rebuffer_ratio): against the pooled peers. */
function judgePeerStalls(config: DetectorConfig, scope: ScopeState, verdicts: ScopeVerdicts, cdn: string, v: Verdict, ms: MetricState, endMs: number): void {
  const sb = v.baseline === null ? null : stallBaseline(config, ms, v.baseline);
  if (!sb || !v.stallLevel) return;
  const peers = pooledPeers(config, scope, verdicts, cdn, v.metric, v.stallRunWindows, endMs);
  const r = peers && stallPeerTest(config, sb, v.stallLevel, peers.obs);
  if (!peers || !r || !r.bad) return;
  v.bad = true;
  v.evidence = 'stalls';
  v.level = v.stallLevel;
  v.runWindows = v.stallRunWindows;
  v.score = v.stallScore;
  v.bestPeer = { cdn: peers.cdns.join('+'), value: r.value };
  v.peerScore = r.z;
}

/**
 * Peer judgement: significantly worse than the best other CDN (ratio, absolute delta, two-sample z)
 * on the level; for rebuffer_ratio, failing that, on episode counts against the pooled peers.
 */
function judgePeer(config: DetectorConfig, scope: ScopeState, verdicts: ScopeVerdicts, cdn: string, v: Verdict, ms: MetricState, endMs: number): void {
  if (v.ownLevel) judgePeerLevel(config, scope, verdicts, cdn, v, ms, endMs);
  if (!v.bad && v.ownStalls) judgePeerStalls(config, scope, verdicts, cdn, v, ms, endMs);
}

function judgePeerLevel(config: DetectorConfig, scope: ScopeState, verdicts: ScopeVerdicts, cdn: string, v: Verdict, ms: MetricState, endMs: number): void {
  const unit = ms.unitScale;
  const rule = config.metrics[v.metric];
  if (unit === null) return;
  const peer = bestPeerOf(config, scope, verdicts, cdn, v.metric, v.runWindows, endMs);
  v.bestPeer = peer ? { cdn: peer.cdn, value: peer.value } : null;
  if (!peer) return;
  const sigma = Math.max(unit * Math.sqrt(1 / v.level.den + 1 / Math.max(peer.den, Number.MIN_VALUE)), rule.minScale, config.minScaleRel * peer.value);
  v.peerScore = (v.level.value - peer.value) / sigma;
  const pc = pseudoCounts(config, ms, v.metric);
  if (pc) {
    const share = v.level.den / (v.level.den + peer.den);
    const x = Math.round(v.level.num / pc);
    v.peerScore = Math.min(v.peerScore, zFromUpperTail(binomialUpperTail(x, x + Math.round(peer.num / pc), share)));
  }
  v.bad = v.level.value >= config.peerRatioThreshold * Math.max(peer.value, rule.absFloor)
    && v.level.value - peer.value >= rule.minAbsDelta && v.peerScore >= config.zPeer;
}

/**
 * A suspect window (own test fired, or the CUSUM is past half its interval) is kept out of the
 * baseline so that a degradation is not learnt while evidence accumulates — for at most
 * maxRunWindows windows in a row, after which the baseline follows a lasting shift.
 */
function holdBack(config: DetectorConfig, ms: MetricState, v: Verdict | undefined): boolean {
  const suspect = (v?.ownBad ?? false) || ms.cusum >= config.cusumH / 2;
  ms.suspectStreak = suspect ? ms.suspectStreak + 1 : 0;
  return suspect && ms.suspectStreak <= config.maxRunWindows;
}

/** Folds a judged, not degraded window into the own baseline (never while the CDN is demoted). */
function learn(config: DetectorConfig, ms: MetricState, obs: MetricObservation): void {
  // Until historyWindows windows are learnt, α = 1/n (the plain mean): no weight stuck on the first window.
  ms.learned++;
  const alpha = Math.max(ewmaAlphaForSpan(config.historyWindows), 1 / ms.learned);
  ms.baseNum = ewmaUpdate(ms.baseNum, obs.num, alpha);
  ms.baseDen = ewmaUpdate(ms.baseDen, obs.den, alpha);
  if (obs.events !== undefined) ms.baseEvents = ewmaUpdate(ms.baseEvents, obs.events, alpha);
  if (obs.stalls !== undefined && obs.exposureMs !== undefined) {
    ms.baseStalls = ewmaUpdate(ms.baseStalls, obs.stalls, alpha);
    ms.baseExposureMs = ewmaUpdate(ms.baseExposureMs, obs.exposureMs, alpha);
  }
  pushBounded(ms.history, { value: obs.value, den: obs.den, stalls: obs.stalls, exposureMs: obs.exposureMs }, config.historyWindows);
}

/**
 * Judges one window of one scope: each CDN against its own baseline, then against the best other
 * CDN, then persistence; finally updates the baselines (not with degraded windows, not while demoted).
 */
export function judgeScopeWindow(config: DetectorConfig, scope: ScopeState, win: Map<string, SeriesAgg> | undefined, endMs: number): ScopeVerdicts {
  const verdicts: ScopeVerdicts = new Map();
  const windowObs = new Map<string, Map<DetectorMetric, MetricObservation | null>>();
  for (const cdn of scope.neutral) {
    const cs = scope.cdns.get(cdn);
    if (!cs) continue;
    const agg = win?.get(`${scope.key}\u0000${cdn}`);
    const perMetric = new Map<DetectorMetric, Verdict>();
    const perObs = new Map<DetectorMetric, MetricObservation | null>();
    for (const metric of DETECTOR_METRICS) {
      const obs = windowObservation(config, agg, metric);
      perObs.set(metric, obs);
      const v = judgeOwn(config, cs.metrics[metric], metric, obs, endMs);
      if (v) perMetric.set(metric, v);
    }
    verdicts.set(cdn, perMetric);
    windowObs.set(cdn, perObs);
  }
  for (const cdn of scope.neutral) {
    const cs: CdnState | undefined = scope.cdns.get(cdn);
    if (!cs) continue;
    for (const metric of DETECTOR_METRICS) {
      const ms = cs.metrics[metric];
      const v = verdicts.get(cdn)?.get(metric);
      const obs = windowObs.get(cdn)?.get(metric) ?? null;
      if (v) judgePeer(config, scope, verdicts, cdn, v, ms, endMs);
      const base = v?.baseline ?? null;
      const sb = metric === 'rebuffer_ratio' && base !== null ? stallBaseline(config, ms, base) : null;
      const elevated = obs !== null && base !== null && (obs.value >= config.elevatedRatio * Math.max(base, config.metrics[metric].absFloor)
        || (sb !== null && stallsWorse(config, sb, obs, config.elevatedRatio)));
      pushBounded(ms.flags, elevated, config.persistenceM);
      if (v) v.persistent = v.bad && countTrue(ms.flags) >= config.persistenceK;
      if (obs && !(v?.bad ?? false) && cs.demotion === null && !holdBack(config, ms, v)) learn(config, ms, obs);
    }
  }
  return verdicts;
}

/** Median of the history values (reported in decision details next to the EWMA baseline). */
export function historyMedian(ms: MetricState): number | null {
  return ms.history.length === 0 ? null : median(ms.history.map((h) => h.value));
}
