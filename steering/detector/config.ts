/**
 * Detector configuration: typed options with documented defaults (README.md in this folder lists
 * them with the reasons behind the values; the evaluation harness is what they were tuned on).
 */

export const DETECTOR_METRICS = ['rebuffer_ratio', 'vsf_rate', 'vst_p90_ms', 'vpf_rate', 'request_error_rate', 'ttfb_p90_ms'] as const;
export type DetectorMetric = (typeof DETECTOR_METRICS)[number];

export interface MetricRule {
  enabled: boolean;
  /**
   * Minimum volume of the window for the metric to be judged, in the metric's own denominator:
   * concurrent sessions (active_ms / window_ms) for rebuffer_ratio, attempts for vsf_rate, started
   * views (VST samples) for vst_p90_ms, plays for vpf_rate, requests for request_error_rate and
   * TTFB samples for ttfb_p90_ms. rebuffer_ratio's volume is the unit of minConcurrentSessions: unless
   * set explicitly, its minVolume follows minConcurrentSessions (see resolveDetectorConfig).
   */
  minVolume: number;
  /** Absolute floor under baselines and peer values (metric units): ×N of almost nothing is not news. */
  absFloor: number;
  /** A degraded value must also exceed the baseline and the best peer by at least this much (metric units). */
  minAbsDelta: number;
  /** Lower bound of the robust scale (σ) in metric units, on top of minScaleRel × baseline. */
  minScale: number;
}

export interface DetectorConfig {
  /** Window length of the qoe.metrics.v1 records; records with another window_ms are dropped (counted). */
  windowMs: number;
  /** Neutral CDN priority (most preferred first) of any scope without its own entry. */
  neutralPriority: string[];
  /** Per-scope neutral priority, keyed 'US' (country) or 'US/7922' (country/ASN). */
  scopePriority: Record<string, string[]>;
  /** Also evaluate country+ASN scopes (in addition to the country scope). */
  asnScopes: boolean;
  /** The series is judged only when its CDN carries at least this many concurrent sessions in the window. */
  minConcurrentSessions: number;
  metrics: Record<DetectorMetric, MetricRule>;
  /** Current level: pooled over the last spanWindows windows (sums; merged histograms for percentiles). */
  spanWindows: number;
  /**
   * Own baseline: level = EWMA (α = 2 / (historyWindows + 1)) of numerator and denominator over the
   * judged, not degraded windows; spread = robust scale of the volume-normalised residuals of the last
   * historyWindows such windows (max of 1.4826·MAD and the RMS — the MAD alone understates the spread
   * of skewed low-count rates).
   */
  historyWindows: number;
  /** No own-baseline verdict before the history holds this many windows. */
  minHistoryWindows: number;
  /** The robust scale is recomputed every this many observed windows (it moves slowly). */
  scaleRefreshWindows: number;
  /** σ floor relative to the baseline (σ ≥ minScaleRel × baseline). */
  minScaleRel: number;
  /**
   * Own test, fast path: the span level ≥ ratioThreshold × baseline and its robust z ≥ zOwn.
   * Slow path (sparse counts): a Poisson CUSUM of log-likelihood ratios for a rate ×cusumDesignRatio
   * (increment x·ln ρ − λ₀(ρ − 1) per window, at most cusumStepCap) reaching cusumH, with the level
   * pooled over the CUSUM's run (≤ maxRunWindows) ≥ ratioThreshold × baseline. Count metrics and
   * rebuffer_ratio only (pseudo-counts); cusumH = Infinity disables it.
   */
  ratioThreshold: number;
  zOwn: number;
  /** The span without its worst window must still be worse than the baseline with z ≥ zTrimmed. */
  zTrimmed: number;
  cusumDesignRatio: number;
  cusumH: number;
  cusumStepCap: number;
  maxRunWindows: number;
  /** Peer test: pooled level ≥ peerRatioThreshold × the best other not-demoted CDN and two-sample z ≥ zPeer. */
  peerRatioThreshold: number;
  zPeer: number;
  /**
   * rebuffer_ratio is a compound count (episodes × durations): its exact-tail test counts stalled time
   * in baseline-mean episodes and divides by the dispersion, at least this E[D²]/E[D]² (2 for
   * exponential durations; the dispersion measured on the history is used when larger).
   */
  rebufferDispersion: number;
  /**
   * rebuffer_ratio count evidence (stalls.ts): minimum quasi-Poisson dispersion of rebuffering-episode
   * counts (1 = Poisson; the Pearson dispersion measured on the history is used when larger).
   * The own test on counts uses zOwn / zTrimmed, the peer test zPeer, the slow path the CUSUM settings.
   */
  stallDispersion: number;
  /**
   * Own test on episode counts: z (exact Poisson tail) ≥ zStalls. Higher than zOwn: it is OR-ed with
   * the stall-time test, and conditional on an extreme count the peer, trimmed and persistence gates
   * add little (one false demotion per simulated week at 5).
   */
  zStalls: number;
  /** Persistence: at least k of the last m windows individually ≥ elevatedRatio × baseline. */
  elevatedRatio: number;
  persistenceK: number;
  persistenceM: number;
  /** Recovery: recoveryWindows consecutive good windows, judged with the lower recovery thresholds. */
  recoveryWindows: number;
  recoveryRatio: number;
  recoveryPeerRatio: number;
  /** A demoted CDN with no volume (traffic steered away) is restored after this long without bad evidence. */
  maxHoldMs: number;
  /** At most one decision per scope per cooldown (event time, window ends). */
  cooldownMs: number;
  /** TTL carried by each decision. */
  ttlMs: number;
  /** seq of the first decision (continue from the last published seq after a restart). */
  initialSeq: number;
  /** Bounds: windows waiting for evaluation, scopes tracked, windows caught up in one evaluate call. */
  maxPendingWindows: number;
  maxScopes: number;
  maxCatchUpWindows: number;
}

export const DEFAULT_METRIC_RULES: Readonly<Record<DetectorMetric, MetricRule>> = Object.freeze({
  rebuffer_ratio: { enabled: true, minVolume: 40, absFloor: 0.002, minAbsDelta: 0.004, minScale: 0.001 },
  vsf_rate: { enabled: true, minVolume: 20, absFloor: 0.005, minAbsDelta: 0.02, minScale: 0.005 },
  vst_p90_ms: { enabled: true, minVolume: 100, absFloor: 500, minAbsDelta: 500, minScale: 50 },
  vpf_rate: { enabled: true, minVolume: 20, absFloor: 0.005, minAbsDelta: 0.02, minScale: 0.005 },
  request_error_rate: { enabled: true, minVolume: 200, absFloor: 0.002, minAbsDelta: 0.005, minScale: 0.001 },
  ttfb_p90_ms: { enabled: true, minVolume: 200, absFloor: 50, minAbsDelta: 50, minScale: 5 },
});

export const DEFAULT_DETECTOR_CONFIG: Readonly<DetectorConfig> = Object.freeze({
  windowMs: 10_000,
  neutralPriority: ['cdn-a', 'cdn-b', 'cdn-c'],
  scopePriority: {},
  asnScopes: false,
  minConcurrentSessions: 40,
  metrics: DEFAULT_METRIC_RULES,
  spanWindows: 3,
  historyWindows: 180,
  minHistoryWindows: 30,
  scaleRefreshWindows: 18,
  minScaleRel: 0.05,
  ratioThreshold: 1.5,
  zOwn: 5,
  zTrimmed: 3.5,
  cusumDesignRatio: 2,
  cusumH: 14,
  cusumStepCap: 5,
  maxRunWindows: 60,
  peerRatioThreshold: 1.5,
  zPeer: 4,
  rebufferDispersion: 2,
  stallDispersion: 1,
  zStalls: 5.5,
  elevatedRatio: 1.5,
  persistenceK: 2,
  persistenceM: 3,
  recoveryWindows: 6,
  recoveryRatio: 1.2,
  recoveryPeerRatio: 1.2,
  maxHoldMs: 1_800_000,
  cooldownMs: 300_000,
  ttlMs: 3_600_000,
  initialSeq: 1,
  maxPendingWindows: 360,
  maxScopes: 10_000,
  maxCatchUpWindows: 8_640,
});

export interface DetectorConfigInput extends Partial<Omit<DetectorConfig, 'metrics'>> {
  metrics?: Partial<Record<DetectorMetric, Partial<MetricRule>>>;
}

/** Defaults + overrides, validated; throws RangeError on an inconsistent configuration. */
export function resolveDetectorConfig(input: DetectorConfigInput = {}): DetectorConfig {
  const { metrics: metricOverrides, ...rest } = input;
  const metrics = {} as Record<DetectorMetric, MetricRule>;
  for (const m of DETECTOR_METRICS) metrics[m] = { ...DEFAULT_METRIC_RULES[m], ...(metricOverrides?.[m] ?? {}) };
  const cfg: DetectorConfig = { ...DEFAULT_DETECTOR_CONFIG, ...rest, metrics };
  // rebuffer_ratio's volume is concurrent sessions, the unit of minConcurrentSessions: one gate, not two.
  // Without this, lowering minConcurrentSessions (QOE_DETECTOR_MIN_CONCURRENT_SESSIONS) left the
  // rebuffer_ratio span gate at its default, so CDNs between the two were never judged — nor usable
  // as peers, and a CDN with no peer verdict is never demoted.
  if (metricOverrides?.rebuffer_ratio?.minVolume === undefined && rest.minConcurrentSessions !== undefined) {
    metrics.rebuffer_ratio.minVolume = rest.minConcurrentSessions;
  }
  const fail = (msg: string): never => {
    throw new RangeError(`detector config: ${msg}`);
  };
  if (!(cfg.windowMs > 0)) fail('windowMs must be > 0');
  if (cfg.neutralPriority.length === 0) fail('neutralPriority must list at least one CDN');
  if (!(cfg.persistenceK >= 1 && cfg.persistenceK <= cfg.persistenceM)) fail('need 1 ≤ persistenceK ≤ persistenceM');
  if (!(cfg.minHistoryWindows >= 1 && cfg.minHistoryWindows <= cfg.historyWindows)) fail('need 1 ≤ minHistoryWindows ≤ historyWindows');
  if (!(cfg.recoveryRatio <= cfg.ratioThreshold && cfg.recoveryPeerRatio <= cfg.peerRatioThreshold)) {
    fail('recovery thresholds must not exceed the degradation thresholds (hysteresis)');
  }
  if (!(cfg.spanWindows >= 1 && cfg.scaleRefreshWindows >= 1)) fail('spanWindows and scaleRefreshWindows must be ≥ 1');
  if (!(cfg.maxRunWindows >= cfg.spanWindows)) fail('maxRunWindows must be ≥ spanWindows');
  if (!(cfg.cusumDesignRatio > 1 && cfg.cusumStepCap > 0)) fail('need cusumDesignRatio > 1 and cusumStepCap > 0');
  if (!(cfg.stallDispersion >= 1 && cfg.rebufferDispersion >= 1)) fail('stallDispersion and rebufferDispersion must be ≥ 1');
  if (!(cfg.recoveryWindows >= 1)) fail('recoveryWindows must be ≥ 1');
  if (!(cfg.maxPendingWindows >= 1 && cfg.maxScopes >= 1 && cfg.maxCatchUpWindows >= 1)) fail('bounds must be ≥ 1');
  return cfg;
}
