import { QoeError } from '../lib/errors.js';
import { histogramFromArrays, histogramQuantile, type Histogram } from '../lib/histogram.js';
import { BITRATE_BUCKETS_KBPS, bitrateBucketLabel } from '../processors/accumulator.js';
import { DIMENSIONS, dimensionNamed, snakeCase, type Dimension } from '../schemas/events.js';
import { HISTOGRAMS, ROLLUPS } from '../sql/rollups.js';

/**
 * GET /v1/metrics: parameter parsing, the SQL (parameterised; identifiers only from the DIMENSIONS
 * whitelist) and the finalisation of ratios and percentiles from summed columns and merged
 * histograms — never an average of ratios or of percentiles (docs/metrics.md).
 */

export const METRIC_NAMES = [
  'attempts', 'plays', 'vsf', 'ebvs', 'vpf', 'ended', 'vsfRate', 'ebvsRate', 'vpfRate',
  'vstP50Ms', 'vstP90Ms', 'vstP95Ms', 'vstP99Ms', 'vstMeanMs',
  'playingMs', 'pausedMs', 'startingMs', 'rebufferMs', 'rebufferCount', 'seekMs', 'seekCount',
  'rebufferRatio', 'connectionRebufferRatio', 'rebufferPctOfWatchTime', 'rebufferFrequencyPerMin',
  'avgBitrateKbps', 'bitrateDistribution', 'concurrentSessions', 'droppedFrames',
  'requests', 'requestErrorRate', 'ttfbP50Ms', 'ttfbP95Ms',
] as const;
export type MetricName = (typeof METRIC_NAMES)[number];

export const MAX_POINTS = 10_000;

export interface MetricsQuery {
  fromMs: number;
  toMs: number;
  stepMs: number;
  groupBy: Dimension[];
  filters: Array<{ dim: Dimension; values: string[] }>;
  metrics: MetricName[];
}

function bad(field: string, message: string): QoeError {
  return new QoeError('QOE_ERR_QUERY_BAD_PARAMETER', `${field}: ${message}`, { details: { field } });
}

function parseTime(field: string, v: string, nowMs: number): number {
  const rel = /^now(?:-(\d+(?:ms|s|m|h|d)?))?$/.exec(v);
  if (rel) return nowMs - (rel[1] === undefined ? 0 : parseDuration(field, rel[1]));
  const n = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(n) || n < 0) throw bad(field, `expected epoch milliseconds, an ISO 8601 time or now[-duration], got '${v}'`);
  return n;
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseDuration(field: string, v: string): number {
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(v);
  if (!m) throw bad(field, `expected a duration like 10s, 5m, 1h or milliseconds, got '${v}'`);
  return Number(m[1]) * (UNIT_MS[m[2] ?? 'ms'] ?? 1);
}

function parseDim(field: string, v: string, kept: readonly Dimension[]): Dimension {
  const d = dimensionNamed(v);
  if (!d) throw bad(field, `unknown dimension '${v}' (one of ${DIMENSIONS.join(', ')})`);
  // Stored as '' when not kept: grouping would show one empty group, filtering would match nothing.
  if (!kept.includes(d)) throw bad(field, `dimension '${v}' is not kept in the window tables (QOE_WINDOW_DIMENSIONS: ${kept.join(', ')})`);
  return d;
}

function asList(v: string | string[] | undefined): string[] {
  const all = v === undefined ? [] : Array.isArray(v) ? v : [v];
  return all.flatMap((x) => x.split(',')).map((x) => x.trim()).filter((x) => x !== '');
}

export interface RawQuery {
  from?: string; to?: string; step?: string; group_by?: string | string[]; filter?: string | string[]; metrics?: string | string[];
}

export function parseMetricsQuery(q: RawQuery, nowMs: number, windowMs: number, kept: readonly Dimension[] = DIMENSIONS): MetricsQuery {
  const toMs = q.to === undefined ? nowMs : parseTime('to', q.to, nowMs);
  const fromMs = q.from === undefined ? toMs - 3_600_000 : parseTime('from', q.from, nowMs);
  if (!(fromMs < toMs)) throw bad('from', 'must be before to');
  const stepMs = q.step === undefined ? Math.max(windowMs, Math.ceil((toMs - fromMs) / windowMs) * windowMs) : parseDuration('step', q.step);
  if (stepMs < windowMs || stepMs % windowMs !== 0) throw bad('step', `must be a positive multiple of the window (${windowMs} ms)`);
  if ((toMs - fromMs) / stepMs > MAX_POINTS) throw bad('step', `too small for the range: more than ${MAX_POINTS} points`);
  const groupBy = [...new Set(asList(q.group_by).map((g) => parseDim('group_by', g, kept)))];
  const byDim = new Map<Dimension, string[]>();
  for (const f of asList(q.filter)) {
    const sep = f.indexOf(':');
    if (sep <= 0) throw bad('filter', `expected dimension:value[|value…], got '${f}'`);
    const dim = parseDim('filter', f.slice(0, sep), kept);
    const values = f.slice(sep + 1).split('|');
    if (values.some((x) => x.length > 128)) throw bad('filter', 'value longer than 128 characters');
    byDim.set(dim, [...(byDim.get(dim) ?? []), ...values]);
  }
  const names = asList(q.metrics);
  for (const n of names) if (!(METRIC_NAMES as readonly string[]).includes(n)) throw bad('metrics', `unknown metric '${n}'`);
  return {
    fromMs, toMs, stepMs, groupBy,
    filters: [...byDim].map(([dim, values]) => ({ dim, values })),
    metrics: names.length === 0 ? [...METRIC_NAMES] : (names as MetricName[]),
  };
}

const SUMS = [
  'attempts', 'plays', 'vsf', 'ebvs', 'vpf', 'ended', 'vst_count', 'vst_sum_ms', 'starting_ms', 'playing_ms', 'paused_ms',
  'rebuffer_ms', 'rebuffer_count', 'seek_ms', 'seek_count', 'active_ms', 'bits_played', 'dropped_frames', 'requests', 'request_errors',
] as const;

/**
 * Where a query reads from: the raw windows or a roll-up (sql/003_rollups.sql). A roll-up row holds
 * the merged states of the raw rows whose window_start falls in its minute (hour).
 */
export interface MetricsSource {
  table: 'qoe_metrics' | 'qoe_metrics_1m' | 'qoe_metrics_1h';
  /** Granularity of window_start in the table; 0 for the raw table (the window). */
  granularityMs: number;
  /** Raw columns are summed with sum/sumMap, roll-up states merged with sumMerge/sumMapMerge. */
  aggregated: boolean;
}

const RAW_SOURCE: MetricsSource = { table: 'qoe_metrics', granularityMs: 0, aggregated: false };

/** Coarsest first: the roll-ups (sql/rollups.ts), then the raw table. */
export const METRICS_SOURCES: readonly MetricsSource[] = [
  ...[...ROLLUPS].sort((a, b) => b.bucketSeconds - a.bucketSeconds).map((r) => ({ table: r.table, granularityMs: r.bucketSeconds * 1000, aggregated: true })),
  RAW_SOURCE,
];

/**
 * The coarsest table that answers the query exactly: its granularity G must divide `step`, `from`
 * and `to` (epoch ms). Then every roll-up row lies wholly inside [from, to) or wholly outside, and
 * wholly inside one bucket [from + k·step, from + (k+1)·step), so merging roll-up rows gives the
 * same sums and the same merged histograms as summing the raw rows. Otherwise: the raw table.
 */
export function pickMetricsSource(q: Pick<MetricsQuery, 'fromMs' | 'toMs' | 'stepMs'>): MetricsSource {
  for (const s of METRICS_SOURCES) {
    if (s.granularityMs === 0) return s;
    const g = s.granularityMs;
    if (q.stepMs % g === 0 && q.fromMs % g === 0 && q.toMs % g === 0) return s;
  }
  return RAW_SOURCE;
}

/**
 * The SQL for a query; runs on ClickHouse 18.16 and current versions. `source` defaults to
 * pickMetricsSource(q); pass one to pin the table (tests compare the tables this way).
 */
export function buildMetricsSql(q: MetricsQuery, source: MetricsSource = pickMetricsSource(q)): { sql: string; params: Record<string, unknown>; source: MetricsSource } {
  const params: Record<string, unknown> = { from: q.fromMs, to: q.toMs, step: Math.floor(q.stepMs / 1000), origin: Math.floor(q.fromMs / 1000) };
  const dims = q.groupBy.map(snakeCase);
  const where = ['window_start >= {from:DateTime}', 'window_start < {to:DateTime}'];
  q.filters.forEach((f, i) => {
    where.push(`has({f${i}:Array(String)}, ${snakeCase(f.dim)})`);
    params[`f${i}`] = f.values;
  });
  const select = [
    // Buckets start at `from`: [from, from + step), [from + step, …).
    '{origin:UInt32} + intDiv(toUInt32(window_start) - {origin:UInt32}, {step:UInt32}) * {step:UInt32} AS bucket',
    ...dims,
    ...SUMS.map((c) => (source.aggregated ? `sumMerge(${c}) AS ${c}` : `sum(${c}) AS ${c}`)),
    ...HISTOGRAMS.map((h) => (source.aggregated ? `sumMapMerge(${h.as}) AS ${h.as}` : `sumMap(${h.keys}, ${h.values}) AS ${h.as}`)),
  ];
  const groupBy = ['bucket', ...dims].join(', ');
  // A group whose rows cancel out (time extrapolated past a session's last event, then retracted by a
  // delta row) has nothing to report: no point, as if no row had been stored.
  const nonEmpty = SUMS.map((c) => `${c} != 0`).join(' OR ');
  const sql = `SELECT ${select.join(', ')} FROM ${source.table} WHERE ${where.join(' AND ')} GROUP BY ${groupBy} HAVING ${nonEmpty} ORDER BY ${groupBy} LIMIT ${MAX_POINTS + 1}`;
  return { sql, params, source };
}

type SumRow = Record<(typeof SUMS)[number], number>;

function tupleHist(v: unknown): Histogram {
  const pair = (typeof v === 'string' ? JSON.parse(v) : v) as [Array<number | string>, Array<number | string>] | undefined;
  if (!pair) return new Map();
  return histogramFromArrays(pair[0].map(Number), pair[1].map(Number));
}

const ratio = (n: number, d: number): number | null => (d > 0 ? n / d : null);

export interface MetricsPoint {
  time: string;
  timeMs: number;
  group: Partial<Record<Dimension, string>>;
  metrics: Partial<Record<MetricName, unknown>>;
}

/** Ratios and percentiles from the summed row of one bucket × group. */
export function finalizeRow(row: Record<string, unknown>, q: MetricsQuery): MetricsPoint {
  const s = Object.fromEntries(SUMS.map((c) => [c, Number(row[c] ?? 0)])) as SumRow;
  const vst = tupleHist(row.vst_hist);
  const ttfb = tupleHist(row.ttfb_hist);
  const bitrate = tupleHist(row.bitrate_ms);
  const allRebuffer = s.rebuffer_ms + s.seek_ms;
  const watch = s.starting_ms + s.playing_ms + s.paused_ms + allRebuffer;
  let knownBitrateMs = 0;
  for (const ms of bitrate.values()) knownBitrateMs += ms;
  const all: Record<MetricName, unknown> = {
    attempts: s.attempts, plays: s.plays, vsf: s.vsf, ebvs: s.ebvs, vpf: s.vpf, ended: s.ended,
    vsfRate: ratio(s.vsf, s.attempts), ebvsRate: ratio(s.ebvs, s.attempts), vpfRate: ratio(s.vpf, s.plays),
    vstP50Ms: histogramQuantile(vst, 0.5), vstP90Ms: histogramQuantile(vst, 0.9), vstP95Ms: histogramQuantile(vst, 0.95),
    vstP99Ms: histogramQuantile(vst, 0.99), vstMeanMs: ratio(s.vst_sum_ms, s.vst_count),
    playingMs: s.playing_ms, pausedMs: s.paused_ms, startingMs: s.starting_ms, rebufferMs: s.rebuffer_ms,
    rebufferCount: s.rebuffer_count, seekMs: s.seek_ms, seekCount: s.seek_count,
    rebufferRatio: ratio(allRebuffer, s.playing_ms + allRebuffer),
    connectionRebufferRatio: ratio(s.rebuffer_ms, s.playing_ms + allRebuffer),
    rebufferPctOfWatchTime: ratio(100 * allRebuffer, watch),
    rebufferFrequencyPerMin: ratio(s.rebuffer_count * 60_000, s.playing_ms),
    avgBitrateKbps: ratio(s.bits_played, knownBitrateMs),
    bitrateDistribution: [...bitrate].filter(([, ms]) => ms !== 0).sort(([a], [b]) => a - b).map(([k, ms]) => ({
      bucket: bitrateBucketLabel(k), minKbps: BITRATE_BUCKETS_KBPS[k], playingMs: ms, share: ratio(ms, knownBitrateMs),
    })),
    concurrentSessions: s.active_ms / q.stepMs,
    droppedFrames: s.dropped_frames,
    requests: s.requests, requestErrorRate: ratio(s.request_errors, s.requests),
    ttfbP50Ms: histogramQuantile(ttfb, 0.5), ttfbP95Ms: histogramQuantile(ttfb, 0.95),
  };
  const timeMs = Number(row.bucket) * 1000;
  const group: Partial<Record<Dimension, string>> = {};
  for (const d of q.groupBy) group[d] = String(row[snakeCase(d)] ?? '');
  return { time: new Date(timeMs).toISOString(), timeMs, group, metrics: Object.fromEntries(q.metrics.map((m) => [m, all[m]])) };
}
