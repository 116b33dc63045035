import type { SteeringDecision } from '../decision.js';
import { createDetectorState, evaluate, observe, type DetectorConfigInput, type DetectorStats } from '../detector/index.js';
import { createRng } from './random.js';
import type { EvalScenario, LabelledDegradation } from './scenarios.js';
import { drawRecord, factorsAt } from './synth.js';
import { expectedConcurrent } from './scenarios.js';

/** A decision placed on the simulation's window grid. */
export interface PlacedDecision {
  window: number;
  decision: SteeringDecision;
}

export interface IncidentOutcome {
  degradation: LabelledDegradation;
  /** First demotion of a degraded CDN in the scope during the incident (+ persistence slack). */
  detectedAtWindow: number | null;
  /** Windows from onset to the decision, both counted: 1 = decided on the first degraded window. */
  delayWindows: number | null;
  /** The demotion named the degraded metric. */
  metricMatched: boolean;
  restoredAfterEndWindows: number | null;
}

export interface EvalReport {
  scenario: string;
  windows: number;
  days: number;
  decisions: number;
  demotions: number;
  restores: number;
  truePositives: number;
  falseDecisions: number;
  falseDecisionsPerDay: number;
  /** The false demotions themselves (for the report). */
  falseDemotions: PlacedDecision[];
  precision: number | null;
  incidents: IncidentOutcome[];
  /** Pairs of decisions in one scope closer than the cooldown. */
  cooldownViolations: number;
  maxDecisionsPerScopePerCooldown: number;
  stats: DetectorStats;
  elapsedMs: number;
}

const METRIC_OF_KIND: Record<string, string[]> = {
  rebuffer: ['rebuffer_ratio'],
  vsf: ['vsf_rate'],
  ttfb: ['ttfb_p90_ms'],
};

/** Runs the detector over a scenario, window by window (watermark = end of the window just drawn). */
export function runScenario(sc: EvalScenario, config: DetectorConfigInput): { decisions: PlacedDecision[]; stats: DetectorStats; elapsedMs: number } {
  const t0 = performance.now();
  const state = createDetectorState({ ...config, windowMs: sc.windowMs, neutralPriority: sc.cdns });
  const rng = createRng(sc.seed);
  const decisions: PlacedDecision[] = [];
  for (let w = 0; w < sc.windows; w++) {
    const startMs = sc.startMs + w * sc.windowMs;
    for (const scope of sc.scopes) {
      sc.cdns.forEach((cdn, i) => {
        const conc = expectedConcurrent(scope, i, startMs);
        const f = factorsAt(sc.degradations, scope.country, cdn, w);
        observe(state, drawRecord(rng, startMs, sc.windowMs, scope.country, cdn, conc, f));
      });
    }
    const endMs = startMs + sc.windowMs;
    for (const d of evaluate(state, endMs, endMs)) decisions.push({ window: (d.reason.windowStartMs - sc.startMs) / sc.windowMs, decision: d });
  }
  return { decisions, stats: { ...state.stats }, elapsedMs: performance.now() - t0 };
}

function matchIncident(sc: EvalScenario, p: PlacedDecision, slackWindows: number): LabelledDegradation | undefined {
  return sc.degradations.find((g) => g.country === p.decision.scope.country
    && p.window >= g.startWindow && p.window < g.startWindow + g.durationWindows + slackWindows
    && (g.cdns.includes(p.decision.reason.cdn) || g.expect === 'none'));
}

function cooldownCheck(decisions: PlacedDecision[], cooldownWindows: number): { violations: number; maxPerCooldown: number } {
  const byScope = new Map<string, number[]>();
  for (const p of decisions) {
    const k = `${p.decision.scope.country}/${p.decision.scope.asn}`;
    byScope.set(k, [...(byScope.get(k) ?? []), p.window]);
  }
  let violations = 0;
  let maxPerCooldown = 0;
  for (const ws of byScope.values()) {
    for (let i = 0; i < ws.length; i++) {
      if (i > 0 && (ws[i] ?? 0) - (ws[i - 1] ?? 0) < cooldownWindows) violations++;
      const inSpan = ws.filter((x) => x >= (ws[i] ?? 0) && x < (ws[i] ?? 0) + cooldownWindows).length;
      maxPerCooldown = Math.max(maxPerCooldown, inSpan);
    }
  }
  return { violations, maxPerCooldown };
}

/** Scores a run: matches demotions to labelled incidents, counts false decisions and cooldown respect. */
export function scoreRun(sc: EvalScenario, run: ReturnType<typeof runScenario>, cooldownMs: number): EvalReport {
  const slack = 30;
  const demotes = run.decisions.filter((p) => p.decision.action === 'demote');
  const restores = run.decisions.filter((p) => p.decision.action === 'restore');
  let tp = 0;
  const falseDemotions: PlacedDecision[] = [];
  for (const p of demotes) {
    const g = matchIncident(sc, p, slack);
    if (g && g.expect !== 'none') tp++;
    else falseDemotions.push(p);
  }
  const fp = falseDemotions.length;
  const incidents: IncidentOutcome[] = sc.degradations.map((g) => {
    const hit = demotes.find((p) => p.decision.scope.country === g.country && g.cdns.includes(p.decision.reason.cdn)
      && p.window >= g.startWindow && p.window < g.startWindow + g.durationWindows + slack);
    const end = g.startWindow + g.durationWindows;
    const restore = hit ? restores.find((p) => p.window > hit.window && p.decision.scope.country === g.country && p.decision.reason.cdn === hit.decision.reason.cdn) : undefined;
    return {
      degradation: g,
      detectedAtWindow: hit?.window ?? null,
      delayWindows: hit ? hit.window - g.startWindow + 1 : null,
      metricMatched: hit ? (METRIC_OF_KIND[g.kind] ?? []).includes(hit.decision.reason.metric) : false,
      restoredAfterEndWindows: restore ? restore.window - end + 1 : null,
    };
  });
  const days = (sc.windows * sc.windowMs) / 86_400_000;
  const cd = cooldownCheck(run.decisions, Math.round(cooldownMs / sc.windowMs));
  return {
    scenario: sc.name, windows: sc.windows, days, decisions: run.decisions.length, demotions: demotes.length, restores: restores.length,
    truePositives: tp, falseDecisions: fp, falseDecisionsPerDay: fp / days, falseDemotions, precision: demotes.length ? tp / demotes.length : null,
    incidents, cooldownViolations: cd.violations, maxDecisionsPerScopePerCooldown: cd.maxPerCooldown, stats: run.stats, elapsedMs: run.elapsedMs,
  };
}

export function evaluateScenario(sc: EvalScenario, config: DetectorConfigInput, cooldownMs: number): EvalReport {
  return scoreRun(sc, runScenario(sc, config), cooldownMs);
}
