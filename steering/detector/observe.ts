import type { MetricsRecord } from '../../processors/metrics-record.js';
import type { SteeringScope } from '../decision.js';
import { addRecord, emptySeriesAgg, str, type SeriesAgg } from './series.js';
import { getOrCreateScope, type DetectorState } from './state.js';

export type ObserveOutcome = 'ok' | 'late' | 'ignored' | 'dropped';

function scopesOf(rec: MetricsRecord, asnScopes: boolean): SteeringScope[] {
  const country = str(rec, 'country');
  const asn = str(rec, 'asn');
  const out: SteeringScope[] = [{ country, asn: '' }];
  if (asnScopes && asn !== '') out.push({ country, asn });
  return out;
}

/** The pending window, created on first sight; at the bound the oldest pending window is dropped. */
function pendingWindow(state: DetectorState, startMs: number): Map<string, SeriesAgg> | null {
  const found = state.pending.get(startMs);
  if (found) return found;
  if (state.pending.size >= state.config.maxPendingWindows) {
    const oldest = Math.min(...state.pending.keys());
    if (startMs < oldest) return null;
    state.pending.delete(oldest);
    state.stats.droppedWindows++;
  }
  const created = new Map<string, SeriesAgg>();
  state.pending.set(startMs, created);
  return created;
}

/**
 * Adds one qoe.metrics.v1 record (a delta) to its window × scope × CDN sums. Pure apart from the
 * state it is given; the outcome says what happened (late and ignored records are counted in stats).
 */
export function observe(state: DetectorState, rec: MetricsRecord): ObserveOutcome {
  const { config, stats } = state;
  stats.records++;
  const startMs = Number(rec.window_start_ms);
  const cdn = str(rec, 'cdn');
  if (Number(rec.window_ms) !== config.windowMs || !Number.isFinite(startMs) || cdn === '' || str(rec, 'country') === '') {
    stats.ignoredRecords++;
    return 'ignored';
  }
  if (state.evaluatedUpToMs !== null && startMs < state.evaluatedUpToMs) {
    stats.lateRecords++;
    return 'late';
  }
  let applied = 0;
  let outcome: ObserveOutcome = 'ignored';
  for (const scope of scopesOf(rec, config.asnScopes)) {
    const s = getOrCreateScope(state, scope);
    if (s === null) {
      outcome = 'dropped';
      continue;
    }
    if (!s.cdns.has(cdn)) continue;
    const win = pendingWindow(state, startMs);
    if (win === null) {
      outcome = 'dropped';
      continue;
    }
    const key = `${s.key}\u0000${cdn}`;
    let agg = win.get(key);
    if (!agg) {
      agg = emptySeriesAgg();
      win.set(key, agg);
    }
    addRecord(agg, rec);
    applied++;
  }
  if (applied > 0) return 'ok';
  if (outcome === 'dropped') stats.droppedScopeRecords++;
  else stats.ignoredRecords++;
  return outcome;
}
