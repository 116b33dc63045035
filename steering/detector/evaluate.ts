import { DECISION_SCHEMA_VERSION, type DecisionReason, type SteeringAction, type SteeringDecision } from '../decision.js';
import type { DetectorConfig } from './config.js';
import { bestPeerOf, historyMedian, judgeScopeWindow, type ScopeVerdicts, type Verdict } from './judge.js';
import type { SeriesAgg } from './series.js';
import { currentPriority, emptyCdnState, type CdnState, type DetectorState, type ScopeState } from './state.js';

interface Candidate {
  cdn: string;
  verdict: Verdict;
  /** Smoothed value / own baseline: how the candidates of one window are ranked. */
  severity: number;
}

function fmt(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toPrecision(4);
}

function demotionCandidate(config: DetectorConfig, scope: ScopeState, verdicts: ScopeVerdicts): Candidate | null {
  let best: Candidate | null = null;
  for (const cdn of scope.neutral) {
    if (scope.cdns.get(cdn)?.demotion) continue;
    for (const v of verdicts.get(cdn)?.values() ?? []) {
      if (!v.persistent || v.baseline === null) continue;
      const severity = v.level.value / Math.max(v.baseline, config.metrics[v.metric].absFloor);
      if (best === null || severity > best.severity) best = { cdn, verdict: v, severity };
    }
  }
  return best;
}

/** Updates the recovery bookkeeping of every demoted CDN; returns the first one due for restore. */
function recoveryDue(config: DetectorConfig, scope: ScopeState, verdicts: ScopeVerdicts, endMs: number): CdnState | null {
  let due: CdnState | null = null;
  for (const cdn of scope.neutral) {
    const cs = scope.cdns.get(cdn);
    const d = cs?.demotion;
    if (!cs || !d) continue;
    const v = verdicts.get(cdn)?.get(d.metric);
    if (v) {
      const floor = config.metrics[d.metric].absFloor;
      const peer = bestPeerOf(config, scope, verdicts, cdn, d.metric, config.spanWindows, endMs);
      const stillWorse = v.span.value >= config.recoveryRatio * Math.max(d.baseline, floor)
        && (peer === null || v.span.value >= config.recoveryPeerRatio * Math.max(peer.value, floor));
      if (stillWorse) {
        d.goodStreak = 0;
        d.lastBadWindowEndMs = endMs;
      } else d.goodStreak++;
    }
    // No volume (traffic steered away): neither good nor bad; maxHoldMs bounds how long that lasts.
    const isDue = d.goodStreak >= config.recoveryWindows || endMs - d.lastBadWindowEndMs >= config.maxHoldMs;
    if (isDue && due === null) due = cs;
  }
  return due;
}

function resetSeries(cs: CdnState): void {
  for (const ms of Object.values(cs.metrics)) {
    ms.cusum = 0;
    ms.cusumRunStartMs = null;
    ms.flags = [];
  }
}

function decision(state: DetectorState, scope: ScopeState, action: SteeringAction, reason: DecisionReason, nowMs: number): SteeringDecision {
  const seq = state.nextSeq++;
  state.stats.decisions++;
  scope.lastDecisionWindowEndMs = reason.windowStartMs + reason.windowMs;
  return {
    version: DECISION_SCHEMA_VERSION,
    id: `${scope.scope.country}-${scope.scope.asn === '' ? 'all' : scope.scope.asn}-${seq}`,
    seq,
    issuedAtMs: nowMs,
    scope: { ...scope.scope },
    priority: currentPriority(scope),
    action,
    reason,
    ttlMs: state.config.ttlMs,
  };
}

function detail(v: Verdict, extra: string): string {
  const peer = v.bestPeer ? `, best peer ${v.bestPeer.cdn} ${fmt(v.bestPeer.value)} (z ${fmt(v.peerScore)})` : '';
  const win = v.window ? `, last window ${fmt(v.window.value)}` : '';
  const stalls = v.evidence === 'stalls' && v.level.stalls !== undefined
    ? `, on stall episodes: ${v.level.stalls} in ${fmt((v.level.exposureMs ?? 0) / 1000)} s of playing` : '';
  return `${extra}: level ${fmt(v.level.value)} over ${v.runWindows} windows (volume ${fmt(v.level.volume)})${win}${stalls}, cusum ${fmt(v.cusum)}${peer}`;
}

/** Judges one window of one scope and returns at most one decision (the cap: one CDN moved). */
function evaluateScopeWindow(state: DetectorState, scope: ScopeState, win: Map<string, SeriesAgg> | undefined, startMs: number, nowMs: number): SteeringDecision | null {
  const { config } = state;
  const endMs = startMs + config.windowMs;
  const verdicts = judgeScopeWindow(config, scope, win, endMs);
  const restore = recoveryDue(config, scope, verdicts, endMs);
  const cooled = scope.lastDecisionWindowEndMs === null || endMs - scope.lastDecisionWindowEndMs >= config.cooldownMs;
  const cand = demotionCandidate(config, scope, verdicts);
  const window = { windowStartMs: startMs, windowMs: config.windowMs };
  if (cand && !cooled) state.stats.suppressedByCooldown++;
  if (cand && cooled) {
    const cs = scope.cdns.get(cand.cdn) ?? emptyCdnState(cand.cdn);
    const v = cand.verdict;
    const baseline = v.baseline ?? 0;
    cs.demotion = { metric: v.metric, baseline, sinceWindowEndMs: endMs, lastBadWindowEndMs: endMs, goodStreak: 0 };
    const reason: DecisionReason = {
      metric: v.metric, cdn: cand.cdn, value: v.level.value, baseline, score: v.score, ...window,
      detail: detail(v, `${fmt(cand.severity)}× own baseline (history median ${fmt(historyMedian(cs.metrics[v.metric]) ?? 0)})`),
    };
    return decision(state, scope, 'demote', reason, nowMs);
  }
  if (restore && restore.demotion && cooled) {
    const d = restore.demotion;
    const v = verdicts.get(restore.cdn)?.get(d.metric);
    restore.demotion = null;
    resetSeries(restore);
    const why = d.goodStreak >= config.recoveryWindows ? `recovered for ${d.goodStreak} windows` : 'no bad evidence within maxHoldMs';
    const reason: DecisionReason = {
      metric: d.metric, cdn: restore.cdn, value: v?.span.value ?? 0, baseline: d.baseline, score: v?.score ?? 0, ...window,
      detail: v ? detail(v, why) : why,
    };
    return decision(state, scope, 'restore', reason, nowMs);
  }
  return null;
}

function evaluateWindow(state: DetectorState, startMs: number, nowMs: number, out: SteeringDecision[]): void {
  const win = state.pending.get(startMs);
  for (const scope of state.scopes.values()) {
    const d = evaluateScopeWindow(state, scope, win, startMs, nowMs);
    if (d) out.push(d);
  }
  state.pending.delete(startMs);
  state.stats.windowsEvaluated++;
}

/**
 * Evaluates every window that ends at or before closedUpToMs (the watermark, or the watermark minus
 * a grace period: windows up to it are complete) and has not been evaluated yet, oldest first.
 * Empty windows in between are evaluated too (no volume: they count as not degraded). nowMs only
 * stamps issuedAtMs; cooldown, persistence and hysteresis run on event time (window ends), so a
 * replay gives the same decisions.
 */
export function evaluate(state: DetectorState, closedUpToMs: number, nowMs: number): SteeringDecision[] {
  const { windowMs, maxCatchUpWindows } = state.config;
  let cursor = state.evaluatedUpToMs;
  if (cursor === null) {
    if (state.pending.size === 0) return [];
    cursor = Math.min(...state.pending.keys());
  }
  const earliest = Math.floor(closedUpToMs / windowMs) * windowMs - maxCatchUpWindows * windowMs;
  if (cursor < earliest) cursor = earliest;
  for (const start of [...state.pending.keys()]) {
    if (start < cursor) {
      state.pending.delete(start);
      state.stats.droppedWindows++;
    }
  }
  const out: SteeringDecision[] = [];
  while (cursor + windowMs <= closedUpToMs) {
    evaluateWindow(state, cursor, nowMs, out);
    cursor += windowMs;
    state.evaluatedUpToMs = cursor;
  }
  return out;
}
