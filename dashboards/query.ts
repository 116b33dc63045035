import { ClickHouseQueryBuilder, type ClickHouseResult } from './datasources.js';
import { BUCKET_SECONDS, BUCKET_TIME, histogramQuantileSql, metricsWhere, ratioSql } from './sql.js';

/**
 * Named ClickHouse queries of the dashboards: the SQL, how the plugin shapes it, and the columns
 * it returns (checked by test/dashboards.test.ts on chDB and on ClickHouse 18.16).
 */
export interface DashboardQuery {
  sql: string;
  result: ClickHouseResult;
  columns: readonly string[];
}

export function query(sql: string, result: ClickHouseResult, columns: readonly string[]): DashboardQuery {
  return { sql, result, columns };
}

export function target(q: DashboardQuery, refId = 'A'): ClickHouseQueryBuilder {
  return new ClickHouseQueryBuilder(q.sql, q.result).refId(refId);
}

/** Sums and merged histograms read from qoe_metrics by the inner query. */
const INNER = {
  attempts: 'sum(attempts)',
  plays: 'sum(plays)',
  vsf: 'sum(vsf)',
  ebvs: 'sum(ebvs)',
  vpf: 'sum(vpf)',
  playing_ms: 'sum(playing_ms)',
  rebuffer_ms: 'sum(rebuffer_ms)',
  seek_ms: 'sum(seek_ms)',
  active_ms: 'sum(active_ms)',
  bits_played: 'sum(bits_played)',
  known_bitrate_ms: 'sum(arraySum(bitrate_playing_ms))',
  vst_hist: 'sumMap(vst_hist_keys, vst_hist_counts)',
} as const;
type Inner = keyof typeof INNER;

interface MetricDef {
  needs: readonly Inner[];
  sql: string;
}

const STALLED = 'rebuffer_ms + seek_ms';
const VIEWED = 'playing_ms + rebuffer_ms + seek_ms';

/** Reported metrics (docs/metrics.md), finalised from the sums of one point or group. */
export const METRICS = {
  attempts: { needs: ['attempts'], sql: 'attempts' },
  plays: { needs: ['plays'], sql: 'plays' },
  vst_p50_ms: { needs: ['vst_hist'], sql: histogramQuantileSql('vst_hist', 0.5) },
  vst_p95_ms: { needs: ['vst_hist'], sql: histogramQuantileSql('vst_hist', 0.95) },
  rebuffer_ratio: { needs: ['playing_ms', 'rebuffer_ms', 'seek_ms'], sql: ratioSql(STALLED, VIEWED) },
  connection_rebuffer_ratio: { needs: ['playing_ms', 'rebuffer_ms', 'seek_ms'], sql: ratioSql('rebuffer_ms', VIEWED) },
  avg_bitrate_kbps: { needs: ['bits_played', 'known_bitrate_ms'], sql: ratioSql('bits_played', 'known_bitrate_ms') },
  vsf_rate: { needs: ['vsf', 'attempts'], sql: ratioSql('vsf', 'attempts') },
  ebvs_rate: { needs: ['ebvs', 'attempts'], sql: ratioSql('ebvs', 'attempts') },
  vpf_rate: { needs: ['vpf', 'plays'], sql: ratioSql('vpf', 'plays') },
  // Time-averaged live sessions: active ms over the period's ms.
  concurrent_sessions: { needs: ['active_ms'], sql: 'active_ms / period_ms' },
} as const satisfies Record<string, MetricDef>;
export type Metric = keyof typeof METRICS;

function innerSelect(metrics: readonly Metric[]): string[] {
  const needed = new Set<Inner>(metrics.flatMap((m) => METRICS[m].needs));
  return [...needed].map((c) => `${INNER[c]} AS ${c}`);
}

const indent = (lines: readonly string[], by: string): string => lines.join(`,\n${by}`);

/** A group-by entry is a column or `expression AS alias`; the outer query and GROUP BY use the name. */
function nameOf(entry: string): string {
  return /\sAS\s+(\w+)$/i.exec(entry)?.[1] ?? entry;
}

/**
 * One row per graph point (and per `groupBy` value: a multi-line series, label columns after
 * `time`), each metric finalised from that point's sums.
 */
export function seriesQuery(metrics: readonly Metric[], groupBy: readonly string[] = []): DashboardQuery {
  const keys = ['time', ...groupBy.map(nameOf)];
  const sql = `SELECT
  ${indent([...keys, ...metrics.map((m) => `${METRICS[m].sql} AS ${m}`)], '  ')}
FROM
(
  WITH ${BUCKET_SECONDS} AS bucket_s
  SELECT
    ${indent([`${BUCKET_TIME} AS time`, ...groupBy, 'bucket_s * 1000 AS period_ms', ...innerSelect(metrics)], '    ')}
  FROM qoe_metrics
  WHERE ${metricsWhere().replace(/\n/g, '\n  ')}
  GROUP BY ${keys.join(', ')}
)
ORDER BY ${keys.join(', ')}`;
  return query(sql, 'timeseries', [...keys, ...metrics]);
}

/** One row for the whole time range (or one per `groupBy` value), as a table. */
export function totalsQuery(metrics: readonly Metric[], groupBy: readonly string[] = [], orderBy?: string): DashboardQuery {
  const names = groupBy.map(nameOf);
  const sql = `SELECT
  ${indent([...names, ...metrics.map((m) => `${METRICS[m].sql} AS ${m}`)], '  ')}
FROM
(
  SELECT
    ${indent([...groupBy, '(toUInt32($__toTime) - toUInt32($__fromTime)) * 1000 AS period_ms', ...innerSelect(metrics)], '    ')}
  FROM qoe_metrics
  WHERE ${metricsWhere().replace(/\n/g, '\n  ')}${names.length > 0 ? `\n  GROUP BY ${names.join(', ')}` : ''}
)${orderBy !== undefined ? `\nORDER BY ${orderBy}` : names.length > 0 ? `\nORDER BY ${names.join(', ')}` : ''}`;
  return query(sql, 'table', [...names, ...metrics]);
}
