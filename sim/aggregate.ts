/**
 * Roll truth windows up the way a query API would: filter by dims and time, group by some dims and
 * (optionally) step-aligned buckets, and derive the ratios from the sums.
 */
import { DIMENSIONS, type Dimension } from '../schemas/events.js';
import { emptyMetrics, mergeMetrics, type Truth, type TruthMetrics } from './truth.js';

export interface TruthFilter {
  /** Keep windows whose dim equals the value (or one of the values). */
  dims?: Partial<Record<Dimension, string | readonly string[]>>;
  /** Keep windows with windowStartMs ≥ fromMs. */
  fromMs?: number;
  /** Keep windows with windowStartMs < toMs. */
  toMs?: number;
  /** Bucket size (a multiple of truth.windowMs); omitted = one bucket over the whole range. */
  stepMs?: number;
}

export interface TruthGroup extends TruthMetrics {
  /** The groupBy dims of this group. */
  group: Partial<Record<Dimension, string>>;
  /** floor(windowStartMs / stepMs) · stepMs, or null without stepMs. */
  bucketStartMs: number | null;
}

function isDimension(name: string): name is Dimension {
  return (DIMENSIONS as readonly string[]).includes(name);
}

export function aggregateTruth(truth: Truth, groupBy: readonly string[], filter: TruthFilter = {}): TruthGroup[] {
  const dimsBy: Dimension[] = groupBy.map((g) => {
    if (!isDimension(g)) throw new Error(`aggregateTruth: unknown dimension "${g}"`);
    return g;
  });
  const step = filter.stepMs;
  if (step !== undefined && (!Number.isInteger(step) || step <= 0 || step % truth.windowMs !== 0)) {
    throw new Error(`aggregateTruth: stepMs must be a positive multiple of windowMs (${truth.windowMs})`);
  }
  const wanted = Object.entries(filter.dims ?? {}).map(([d, v]) => [d, typeof v === 'string' ? [v] : v] as const);
  const groups = new Map<string, TruthGroup>();
  for (const w of truth.windows) {
    if (filter.fromMs !== undefined && w.windowStartMs < filter.fromMs) continue;
    if (filter.toMs !== undefined && w.windowStartMs >= filter.toMs) continue;
    if (!wanted.every(([d, vs]) => vs !== undefined && isDimension(d) && vs.includes(w.dims[d]))) continue;
    const bucketStartMs = step === undefined ? null : Math.floor(w.windowStartMs / step) * step;
    const group: Partial<Record<Dimension, string>> = {};
    for (const d of dimsBy) group[d] = w.dims[d];
    const key = JSON.stringify([bucketStartMs, dimsBy.map((d) => w.dims[d])]);
    const prev = groups.get(key) ?? { group, bucketStartMs, ...emptyMetrics() };
    groups.set(key, { ...mergeMetrics(prev, w), group, bucketStartMs });
  }
  return [...groups.values()].sort(
    (a, b) => (a.bucketStartMs ?? 0) - (b.bucketStartMs ?? 0) || JSON.stringify(a.group).localeCompare(JSON.stringify(b.group)),
  );
}

export interface DerivedMetrics {
  /** vsf / attempts */
  vsfRate: number | null;
  /** ebvs / attempts */
  ebvsRate: number | null;
  /** vpf / plays */
  vpfRate: number | null;
  /** Conviva: rebufferMs / (playingMs + rebufferMs); connection-induced stalls only. */
  rebufferRatio: number | null;
  /** Time-weighted: bitsPlayed / playingMs. */
  avgBitrateKbps: number | null;
  /** Connection-induced stalls per minute of playing time. */
  rebuffersPerPlayingMin: number | null;
  vstMeanMs: number | null;
}

function ratio(num: number, den: number): number | null {
  return den === 0 ? null : num / den;
}

export function deriveMetrics(m: TruthMetrics): DerivedMetrics {
  return {
    vsfRate: ratio(m.vsf, m.attempts),
    ebvsRate: ratio(m.ebvs, m.attempts),
    vpfRate: ratio(m.vpf, m.plays),
    rebufferRatio: ratio(m.rebufferMs, m.playingMs + m.rebufferMs),
    avgBitrateKbps: ratio(m.bitsPlayed, m.playingMs),
    rebuffersPerPlayingMin: ratio(m.rebufferCount, m.playingMs / 60_000),
    vstMeanMs: ratio(
      m.vstMs.reduce((a, b) => a + b, 0),
      m.vstMs.length,
    ),
  };
}
