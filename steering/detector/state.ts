import type { SteeringScope } from '../decision.js';
import { DETECTOR_METRICS, resolveDetectorConfig, type DetectorConfig, type DetectorConfigInput, type DetectorMetric } from './config.js';
import type { MetricObservation, SeriesAgg } from './series.js';

/** Per scope × CDN × metric: the own-baseline history and the running statistics. */
export interface MetricState {
  /** Value and denominator of the last judged, not degraded windows (ring of config.historyWindows). */
  history: Array<{ value: number; den: number; stalls?: number; exposureMs?: number }>;
  /** Baseline level: EWMA of numerator and denominator over the same windows. */
  baseNum: number | null;
  baseDen: number | null;
  /** rebuffer_ratio: EWMA of stall episodes, for the mean episode length (baseNum / baseEvents). */
  baseEvents: number | null;
  /** rebuffer_ratio: EWMA of rebuffering episodes and of playing time: the baseline stall rate. */
  baseStalls: number | null;
  baseExposureMs: number | null;
  /** rebuffer_ratio: Pearson dispersion of the episode counts of the history (refreshed with unitScale). */
  stallDispersion: number | null;
  /** Windows folded into the baseline so far. */
  learned: number;
  /** Consecutive suspect windows kept out of the baseline. */
  suspectStreak: number;
  /** Robust σ per unit of volume (see DetectorConfig.historyWindows), refreshed every scaleRefreshWindows. */
  unitScale: number | null;
  sinceScaleRefresh: number;
  /** Observations of the last maxRunWindows windows, newest last. */
  recent: Array<{ endMs: number; obs: MetricObservation }>;
  cusum: number;
  /** End of the first window of the CUSUM's current run (when it last left 0). */
  cusumRunStartMs: number | null;
  /** Elevated-or-not of the last persistenceM windows, newest last. */
  flags: boolean[];
}

export interface Demotion {
  metric: DetectorMetric;
  /** Own baseline when demoted (the history is frozen while demoted). */
  baseline: number;
  sinceWindowEndMs: number;
  lastBadWindowEndMs: number;
  goodStreak: number;
}

export interface CdnState {
  cdn: string;
  metrics: Record<DetectorMetric, MetricState>;
  demotion: Demotion | null;
}

export interface ScopeState {
  key: string;
  scope: SteeringScope;
  /** Neutral priority of the scope (from config): the CDNs that are judged and steered between. */
  neutral: string[];
  cdns: Map<string, CdnState>;
  lastDecisionWindowEndMs: number | null;
}

export interface DetectorStats {
  records: number;
  /** Records for windows already evaluated (late corrections): counted, not applied. */
  lateRecords: number;
  /** Records without country or CDN, with another window_ms, or for a CDN outside the scope's priority list. */
  ignoredRecords: number;
  /** Records dropped because maxScopes was reached. */
  droppedScopeRecords: number;
  /** Pending windows dropped at the maxPendingWindows / maxCatchUpWindows bounds. */
  droppedWindows: number;
  windowsEvaluated: number;
  decisions: number;
  /** Demotions that were due but held back by the cooldown. */
  suppressedByCooldown: number;
}

export interface DetectorState {
  readonly config: DetectorConfig;
  /** seq of the next decision; strictly increasing. */
  nextSeq: number;
  scopes: Map<string, ScopeState>;
  /** window start → `${scopeKey}\u0000${cdn}` → summed deltas, until the window is evaluated. */
  pending: Map<number, Map<string, SeriesAgg>>;
  /** End of the last evaluated window (records before it are late). */
  evaluatedUpToMs: number | null;
  stats: DetectorStats;
}

export function createDetectorState(config: DetectorConfigInput = {}): DetectorState {
  const cfg = resolveDetectorConfig(config);
  return {
    config: cfg,
    nextSeq: cfg.initialSeq,
    scopes: new Map(),
    pending: new Map(),
    evaluatedUpToMs: null,
    stats: {
      records: 0, lateRecords: 0, ignoredRecords: 0, droppedScopeRecords: 0, droppedWindows: 0,
      windowsEvaluated: 0, decisions: 0, suppressedByCooldown: 0,
    },
  };
}

/** 'US' or 'US/7922'. */
export function scopeKey(scope: SteeringScope): string {
  return scope.asn === '' ? scope.country : `${scope.country}/${scope.asn}`;
}

export function neutralPriorityFor(config: DetectorConfig, scope: SteeringScope): string[] {
  return [...(config.scopePriority[scopeKey(scope)] ?? config.scopePriority[scope.country] ?? config.neutralPriority)];
}

function emptyMetricState(): MetricState {
  return {
    history: [], baseNum: null, baseDen: null, baseEvents: null, baseStalls: null, baseExposureMs: null, stallDispersion: null,
    learned: 0, suspectStreak: 0, unitScale: null, sinceScaleRefresh: 0, recent: [], cusum: 0, cusumRunStartMs: null, flags: [],
  };
}

export function emptyCdnState(cdn: string): CdnState {
  const metrics = {} as Record<DetectorMetric, MetricState>;
  for (const m of DETECTOR_METRICS) metrics[m] = emptyMetricState();
  return { cdn, metrics, demotion: null };
}

/** The scope's state, created on first sight; null at the maxScopes bound. */
export function getOrCreateScope(state: DetectorState, scope: SteeringScope): ScopeState | null {
  const key = scopeKey(scope);
  const found = state.scopes.get(key);
  if (found) return found;
  if (state.scopes.size >= state.config.maxScopes) return null;
  const neutral = neutralPriorityFor(state.config, scope);
  const created: ScopeState = {
    key, scope: { ...scope }, neutral, cdns: new Map(neutral.map((c) => [c, emptyCdnState(c)])), lastDecisionWindowEndMs: null,
  };
  state.scopes.set(key, created);
  return created;
}

/** Current priority: the neutral order with demoted CDNs moved last (in neutral order among them). */
export function currentPriority(scope: ScopeState): string[] {
  const demoted = (c: string): boolean => scope.cdns.get(c)?.demotion != null;
  return [...scope.neutral.filter((c) => !demoted(c)), ...scope.neutral.filter(demoted)];
}
