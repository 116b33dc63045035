import { AnnotationQueryBuilder } from '@grafana/grafana-foundation-sdk/dashboard';
import { CLICKHOUSE } from './datasources.js';
import { query, target, type DashboardQuery } from './query.js';
import { dimensionFilter } from './sql.js';

/**
 * Steering decisions (written by steering/ to qoe_steering_decisions) as dashboard annotations and
 * as a table. The table and column names are in one place: adjust STEERING_COLUMNS if the schema
 * changes, and the annotation, the table panel and their tests follow.
 */
export const STEERING_COLUMNS = {
  table: 'qoe_steering_decisions',
  issuedAt: 'issued_at',
  country: 'country',
  asn: 'asn',
  action: 'action',
  priority: 'priority',
  reasonMetric: 'reason_metric',
  reasonCdn: 'reason_cdn',
} as const;

const c = STEERING_COLUMNS;
const scope = `if(${c.asn} = '', ${c.country}, concat(${c.country}, ' AS', ${c.asn}))`;
const where = `$__timeFilter(${c.issuedAt})\n  AND ${dimensionFilter('country')}`;

/** Annotation frame: `time`, `text`, `tags` (comma-separated: action, reason metric, reason CDN). */
export const steeringAnnotationQuery: DashboardQuery = query(
  `SELECT
  ${c.issuedAt} AS time,
  concat(${c.action}, ' ', ${scope}, ': ', arrayStringConcat(${c.priority}, ' > '),
    ' (', ${c.reasonMetric}, ' on ', ${c.reasonCdn}, ')') AS text,
  concat(${c.action}, ',', ${c.reasonMetric}, ',', ${c.reasonCdn}) AS tags
FROM ${c.table}
WHERE ${where}
ORDER BY ${c.issuedAt}
LIMIT 500`,
  'table',
  ['time', 'text', 'tags'],
);

export const steeringTableQuery: DashboardQuery = query(
  `SELECT
  ${c.issuedAt} AS time,
  ${c.country} AS country,
  ${c.asn} AS asn,
  ${c.action} AS action,
  arrayStringConcat(${c.priority}, ' > ') AS priority,
  ${c.reasonMetric} AS reason_metric,
  ${c.reasonCdn} AS reason_cdn
FROM ${c.table}
WHERE ${where}
ORDER BY ${c.issuedAt} DESC
LIMIT 200`,
  'table',
  ['time', 'country', 'asn', 'action', 'priority', 'reason_metric', 'reason_cdn'],
);

export function steeringAnnotation(): AnnotationQueryBuilder {
  return new AnnotationQueryBuilder()
    .name('Steering decisions')
    .datasource(CLICKHOUSE)
    .enable(true)
    .iconColor('purple')
    .target(target(steeringAnnotationQuery, 'Anno'));
}
