import { RELATIVE_ACCURACY } from '../lib/histogram.js';
import { BITRATE_BUCKETS_KBPS, bitrateBucketLabel } from '../processors/accumulator.js';

/**
 * SQL fragments shared by the dashboards' ClickHouse panels (grafana-clickhouse-datasource).
 *
 * Every statement must run on ClickHouse 18.16 (Debian's server) and current versions (chDB):
 * no window functions, no Map, no DateTime64, no `arrayFold`. Ratios are ratios of sums and
 * percentiles are read from histograms merged with sumMap, exactly as the API does
 * (query/metrics.ts, docs/metrics.md) — never averages of ratios or of percentiles.
 */

/** The dimension template variables (qoe_metrics columns), in display order. */
export const FILTER_DIMENSIONS = ['cdn', 'country', 'device_type', 'stream_type'] as const;
export type FilterDimension = (typeof FILTER_DIMENSIONS)[number];

/**
 * `col IN (…selected…)`, or `1=1` when the variable is All: the datasource's documented
 * `$__conditionalAll(condition, $var)` macro, so All never expands to a long IN list.
 */
export function dimensionFilter(dim: FilterDimension): string {
  return `$__conditionalAll(${dim} IN (\${${dim}:singlequote}), $${dim})`;
}

/** The dashboard time range and every dimension variable, for queries on qoe_metrics/qoe_errors. */
export function metricsWhere(dims: readonly FilterDimension[] = FILTER_DIMENSIONS): string {
  return ['$__timeFilter(window_start)', ...dims.map(dimensionFilter)].join('\n  AND ');
}

/**
 * Seconds per graph point: Grafana's interval rounded up to a whole number of processor windows
 * (`$window_s`, a constant variable = QOE_WINDOW_MS / 1000), so every window lands in exactly one
 * point and per-point sums (e.g. active ms → concurrent sessions) are not aliased.
 */
export const BUCKET_SECONDS = 'greatest(toUInt32($window_s), intDiv(toUInt32($__interval_s) + toUInt32($window_s) - 1, toUInt32($window_s)) * toUInt32($window_s))';

/** The point a window belongs to; use with `WITH ${BUCKET_SECONDS} AS bucket_s`. */
export const BUCKET_TIME = 'toDateTime(intDiv(toUInt32(window_start), bucket_s) * bucket_s)';

/** γ of lib/histogram.ts, written as the same expression so SQL and TypeScript agree. */
const GAMMA_SQL = `((1 + ${RELATIVE_ACCURACY}) / (1 - ${RELATIVE_ACCURACY}))`;

/**
 * The q-quantile of a merged histogram `hist` (the tuple (keys, counts) returned by sumMap), by
 * the nearest-rank rule of lib/histogram.ts histogramQuantile: the representative value
 * 2γ^k/(γ+1) of the first bucket k whose cumulative count reaches ceil(q·n); 0 for bucket 0;
 * NULL when the histogram is empty. Uses arrayCumSum/arrayFirstIndex (present in 18.16).
 */
export function histogramQuantileSql(hist: string, q: number): string {
  if (!(q > 0 && q <= 1)) throw new RangeError(`quantile must be in (0, 1], got ${q}`);
  const counts = `tupleElement(${hist}, 2)`;
  const n = `arraySum(${counts})`;
  const rank = `greatest(1, ceil(${q} * ${n}))`;
  const key = `tupleElement(${hist}, 1)[arrayFirstIndex(c -> c >= ${rank}, arrayCumSum(${counts}))]`;
  return `if(${n} > 0, if(${key} = 0, 0, 2 * pow(${GAMMA_SQL}, ${key}) / (${GAMMA_SQL} + 1)), NULL)`;
}

/** A SQL array literal of the bitrate bucket labels: index k + 1 holds the label of key k. */
export const BITRATE_LABELS_SQL = `[${BITRATE_BUCKETS_KBPS.map((_, i) => `'${bitrateBucketLabel(i)}'`).join(', ')}]`;

/** `a / b`, NULL when b is 0 (a ratio of sums is undefined without a denominator). */
export function ratioSql(numerator: string, denominator: string): string {
  return `(${numerator}) / nullIf(${denominator}, 0)`;
}
