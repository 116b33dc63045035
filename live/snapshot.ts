/**
 * The live page's snapshot: what GET /v1/live/stream pushes every tick. Pure functions only: the
 * queries are MetricsQuery values from query/metrics.ts (the same parsing, SQL and finalisation as
 * GET /v1/metrics), and the snapshot is assembled from their finalised points.
 */
import { parseMetricsQuery, type MetricName, type MetricsPoint, type MetricsQuery } from '../query/metrics.js';

export const HEADLINE_METRICS = [
  'attempts', 'plays', 'vstP50Ms', 'vstP95Ms', 'rebufferRatio', 'connectionRebufferRatio', 'avgBitrateKbps',
  'vsfRate', 'ebvsRate', 'vpfRate', 'concurrentSessions',
] as const satisfies readonly MetricName[];
export type HeadlineMetric = (typeof HEADLINE_METRICS)[number];

export const TABLE_METRICS = ['attempts', 'rebufferRatio', 'vsfRate', 'vstP95Ms'] as const satisfies readonly MetricName[];
export type TableMetric = (typeof TABLE_METRICS)[number];

/** When a CDN × country cell is highlighted (docs/live.md). */
export interface BadCellThresholds {
  /** Absolute limits: above one of them the cell is bad. */
  rebufferRatio: number;
  vsfRate: number;
  vstP95Ms: number;
  /** Also bad when worse than this multiple of the all-traffic value of the same range. */
  relativeFactor: number;
  /** Rows with fewer attempts are never highlighted (too few views to mean anything). */
  minAttempts: number;
}

export interface LiveSettings {
  windowMs: number;
  /** Range of the sparklines. Default 15 min. */
  rangeMs: number;
  /** Sparkline bucket, a multiple of the window. Default 30 s (rounded up to a multiple of the window). */
  stepMs: number;
  /** Range of the headline numbers and of the CDN × country table. Default 5 min. */
  headlineMs: number;
  /** Most CDN × country rows shown (by attempts). Default 50. */
  maxTableRows: number;
  /** Data older than this is flagged stale on the page. Default 2 min. */
  staleAfterMs: number;
  thresholds: BadCellThresholds;
}

export const DEFAULT_THRESHOLDS: BadCellThresholds = { rebufferRatio: 0.02, vsfRate: 0.05, vstP95Ms: 5000, relativeFactor: 2, minAttempts: 10 };

export type LiveOptions = Partial<Omit<LiveSettings, 'windowMs' | 'thresholds'>> & { thresholds?: Partial<BadCellThresholds> };

export function resolveLiveSettings(windowMs: number, opts: LiveOptions = {}): LiveSettings {
  const roundUp = (ms: number): number => Math.max(windowMs, Math.ceil(ms / windowMs) * windowMs);
  const stepMs = roundUp(opts.stepMs ?? 30_000);
  return {
    windowMs,
    stepMs,
    rangeMs: Math.max(stepMs, Math.ceil((opts.rangeMs ?? 15 * 60_000) / stepMs) * stepMs),
    headlineMs: roundUp(opts.headlineMs ?? 5 * 60_000),
    maxTableRows: opts.maxTableRows ?? 50,
    staleAfterMs: opts.staleAfterMs ?? 120_000,
    thresholds: { ...DEFAULT_THRESHOLDS, ...opts.thresholds },
  };
}

export interface LiveQueries {
  series: MetricsQuery;
  headline: MetricsQuery;
  table: MetricsQuery;
}

/**
 * The three queries of one tick. Ranges end at the start of the current step (sparklines) or window
 * (headline, table) so that they move in whole buckets and the points stay put from tick to tick.
 */
export function liveQueries(nowMs: number, s: LiveSettings): LiveQueries {
  const q = (fromMs: number, toMs: number, step: number, metrics: readonly MetricName[], groupBy?: string): MetricsQuery =>
    parseMetricsQuery({ from: String(fromMs), to: String(toMs), step: `${step}ms`, metrics: metrics.join(','), ...(groupBy && { group_by: groupBy }) }, nowMs, s.windowMs);
  const seriesTo = Math.floor(nowMs / s.stepMs) * s.stepMs;
  const headTo = Math.floor(nowMs / s.windowMs) * s.windowMs;
  return {
    series: q(seriesTo - s.rangeMs, seriesTo, s.stepMs, HEADLINE_METRICS),
    headline: q(headTo - s.headlineMs, headTo, s.headlineMs, HEADLINE_METRICS),
    table: q(headTo - s.headlineMs, headTo, s.headlineMs, TABLE_METRICS, 'cdn,country'),
  };
}

type Values<K extends string> = Record<K, number | null>;

export interface TableRow extends Values<TableMetric> {
  cdn: string;
  country: string;
  /** Metrics of this row to highlight. */
  bad: TableMetric[];
}

export interface LiveSnapshot {
  v: 1;
  generatedAtMs: number;
  windowMs: number;
  staleAfterMs: number;
  /** End of the newest stored window (null: none in the lookback) and its age at generatedAtMs. */
  freshness: { lastWindowEndMs: number | null; ageMs: number | null };
  headline: { fromMs: number; toMs: number; metrics: Values<HeadlineMetric> };
  /** Parallel arrays: one value per bucket starting at startMs[i]; null where no window was stored. */
  series: { fromMs: number; toMs: number; stepMs: number; startMs: number[]; values: Record<HeadlineMetric, Array<number | null>> };
  table: { fromMs: number; toMs: number; rows: TableRow[]; truncated: number; thresholds: BadCellThresholds };
}

export interface SnapshotInput {
  nowMs: number;
  settings: LiveSettings;
  queries: LiveQueries;
  series: MetricsPoint[];
  headline: MetricsPoint[];
  table: MetricsPoint[];
  /** Start (ms) of the newest stored window, null when none. */
  lastWindowStartMs: number | null;
}

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function pick<K extends string>(point: MetricsPoint | undefined, names: readonly K[], empty: number | null): Values<K> {
  const out = {} as Values<K>;
  for (const n of names) out[n] = point ? num((point.metrics as Record<string, unknown>)[n]) : empty;
  return out;
}

/** Which of a row's metrics to highlight: over an absolute threshold, or much worse than all traffic. */
export function badMetrics(row: Values<TableMetric>, overall: Values<HeadlineMetric>, t: BadCellThresholds): TableMetric[] {
  if ((row.attempts ?? 0) < t.minAttempts) return [];
  const out: TableMetric[] = [];
  for (const m of ['rebufferRatio', 'vsfRate', 'vstP95Ms'] as const) {
    const v = row[m];
    if (v === null) continue;
    const ref = overall[m];
    if (v > t[m] || (ref !== null && ref > 0 && v > t.relativeFactor * ref)) out.push(m);
  }
  return out;
}

export function buildSnapshot(input: SnapshotInput): LiveSnapshot {
  const { settings: s, queries: q, nowMs } = input;
  // Counts are 0 over a range with no stored window (nothing happened), ratios null (undefined).
  const headline = pick(input.headline[0], HEADLINE_METRICS, null);
  if (!input.headline[0]) for (const m of ['attempts', 'plays', 'concurrentSessions'] as const) headline[m] = 0;
  const byTime = new Map(input.series.map((p) => [p.timeMs, p]));
  const startMs: number[] = [];
  for (let t = q.series.fromMs; t < q.series.toMs; t += q.series.stepMs) startMs.push(t);
  const values = {} as Record<HeadlineMetric, Array<number | null>>;
  for (const m of HEADLINE_METRICS) values[m] = startMs.map((t) => pick(byTime.get(t), [m], null)[m]);
  const rows = input.table
    .map((p): TableRow => {
      const v = pick(p, TABLE_METRICS, null);
      return { cdn: p.group.cdn ?? '', country: p.group.country ?? '', ...v, bad: badMetrics(v, headline, s.thresholds) };
    })
    .sort((a, b) => (b.attempts ?? 0) - (a.attempts ?? 0) || a.cdn.localeCompare(b.cdn) || a.country.localeCompare(b.country));
  const lastWindowEndMs = input.lastWindowStartMs === null ? null : input.lastWindowStartMs + s.windowMs;
  return {
    v: 1,
    generatedAtMs: nowMs,
    windowMs: s.windowMs,
    staleAfterMs: s.staleAfterMs,
    freshness: { lastWindowEndMs, ageMs: lastWindowEndMs === null ? null : nowMs - lastWindowEndMs },
    headline: { fromMs: q.headline.fromMs, toMs: q.headline.toMs, metrics: headline },
    series: { fromMs: q.series.fromMs, toMs: q.series.toMs, stepMs: q.series.stepMs, startMs, values },
    table: { fromMs: q.table.fromMs, toMs: q.table.toMs, rows: rows.slice(0, s.maxTableRows), truncated: Math.max(0, rows.length - s.maxTableRows), thresholds: s.thresholds },
  };
}
