import type { EvalReport, IncidentOutcome } from './harness.js';

/** Plain-text summary of evaluation runs (printed by bench/steering-eval.ts). */

function pct(n: number, d: number): string {
  return d === 0 ? 'n/a' : `${((100 * n) / d).toFixed(0)}%`;
}

function quantile(xs: number[], q: number): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] ?? null;
}

export interface GroupRow {
  group: string;
  incidents: number;
  detected: number;
  within3: number;
  medianDelay: number | null;
  maxDelay: number | null;
}

function volumeBand(c: number): string {
  return c < 50 ? '<50' : c < 150 ? '50-150' : c < 500 ? '150-500' : '≥500';
}

/** Incidents grouped by kind × shape × factor × expectation (and volume band of the degraded CDN). */
export function groupIncidents(incidents: IncidentOutcome[], byVolume: boolean): GroupRow[] {
  const groups = new Map<string, IncidentOutcome[]>();
  for (const o of incidents) {
    const g = o.degradation;
    const who = g.cdns.length > 1 ? 'all CDNs' : 'one CDN';
    const key = `${g.kind} ${g.shape} ×${g.factor} ${who} [${g.expect}]${byVolume ? ` conc ${volumeBand(g.concurrentAtStart)}` : ''}`;
    groups.set(key, [...(groups.get(key) ?? []), o]);
  }
  return [...groups].sort(([a], [b]) => a.localeCompare(b)).map(([group, os]) => {
    const delays = os.flatMap((o) => (o.delayWindows === null ? [] : [o.delayWindows]));
    return {
      group, incidents: os.length, detected: delays.length, within3: delays.filter((d) => d <= 3).length,
      medianDelay: quantile(delays, 0.5), maxDelay: quantile(delays, 1),
    };
  });
}

export function formatReport(r: EvalReport): string {
  const lines = [
    `## ${r.scenario}: ${r.days.toFixed(1)} simulated days, ${r.windows} windows, run ${(r.elapsedMs / 1000).toFixed(1)} s`,
    `decisions ${r.decisions} (demote ${r.demotions}, restore ${r.restores}); true demotions ${r.truePositives}; ` +
      `false demotions ${r.falseDecisions} (${r.falseDecisionsPerDay.toFixed(2)}/day); precision ${r.precision === null ? 'n/a' : r.precision.toFixed(3)}`,
    `cooldown violations ${r.cooldownViolations}; max decisions per scope per cooldown ${r.maxDecisionsPerScopePerCooldown}; ` +
      `demotions held back by cooldown ${r.stats.suppressedByCooldown}`,
  ];
  for (const p of r.falseDemotions.slice(0, 10)) {
    const d = p.decision;
    lines.push(`- false demotion at window ${p.window} (day ${Math.floor(p.window / 8640)}): ${d.scope.country} ${d.reason.cdn} ${d.reason.metric} — ${d.reason.detail}`);
  }
  if (r.incidents.length > 0) lines.push('', formatIncidentTable(r.incidents));
  return lines.join('\n');
}

/** Incidents grouped by kind and volume band: detected, within 3 windows, delays. */
export function formatIncidentTable(incidents: IncidentOutcome[]): string {
  const lines = ['| incidents | n | detected | ≤ 3 windows | median delay | max delay |', '|---|---|---|---|---|---|'];
  for (const g of groupIncidents(incidents, true)) {
    lines.push(`| ${g.group} | ${g.incidents} | ${g.detected} (${pct(g.detected, g.incidents)}) | ${g.within3} (${pct(g.within3, g.incidents)}) | ${g.medianDelay ?? '-'} | ${g.maxDelay ?? '-'} |`);
  }
  return lines.join('\n');
}
