import { StackingMode } from '@grafana/grafana-foundation-sdk/common';
import { DashboardBuilder, DashboardCursorSync, type Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { table, timeseries, withPanelIds } from './panels.js';
import { query, seriesQuery, type DashboardQuery } from './query.js';
import { BITRATE_LABELS_SQL, BUCKET_SECONDS, BUCKET_TIME, metricsWhere } from './sql.js';
import { dimensionVariables, windowVariable } from './variables.js';

/**
 * Bitrate distribution: playing time per bitrate bucket (processors/accumulator.ts
 * BITRATE_BUCKETS_KBPS), over time and for the range. Time-weighted by construction: the stored
 * values are playing milliseconds spent in each bucket.
 */

export const BITRATE_DISTRIBUTION_UID = 'qoe-bitrate-distribution';

const overTime = query(
  `SELECT
  time,
  ${BITRATE_LABELS_SQL}[k + 1] AS bitrate,
  playing_s
FROM
(
  WITH ${BUCKET_SECONDS} AS bucket_s
  SELECT
    ${BUCKET_TIME} AS time,
    k,
    sum(ms) / 1000 AS playing_s
  FROM qoe_metrics
  ARRAY JOIN bitrate_keys AS k, bitrate_playing_ms AS ms
  WHERE ${metricsWhere().replace(/\n/g, '\n  ')}
  GROUP BY time, k
)
ORDER BY time, k`,
  'timeseries',
  ['time', 'bitrate', 'playing_s'],
);

const range = query(
  `SELECT
  ${BITRATE_LABELS_SQL}[k + 1] AS bitrate,
  ms / 3600000 AS playing_h,
  ms / nullIf(total_ms, 0) AS share
FROM
(
  SELECT
    sumMap(bitrate_keys, bitrate_playing_ms) AS per_bucket,
    arraySum(tupleElement(per_bucket, 2)) AS total_ms
  FROM qoe_metrics
  WHERE ${metricsWhere().replace(/\n/g, '\n  ')}
)
ARRAY JOIN tupleElement(per_bucket, 1) AS k, tupleElement(per_bucket, 2) AS ms
ORDER BY k`,
  'table',
  ['bitrate', 'playing_h', 'share'],
);

export const bitrateQueries = {
  overTime,
  range,
  average: seriesQuery(['avg_bitrate_kbps']),
} satisfies Record<string, DashboardQuery>;

export function bitrateDistribution(): Dashboard {
  const q = bitrateQueries;
  const dashboard = new DashboardBuilder('QoE bitrate distribution')
    .uid(BITRATE_DISTRIBUTION_UID)
    .description('Playing time per bitrate bucket (time-weighted), its share, and the average bitrate.')
    .tags(['qoe-stream', 'qoe', 'bitrate'])
    .time({ from: 'now-3h', to: 'now' })
    .refresh('30s')
    .timezone('utc')
    .tooltip(DashboardCursorSync.Crosshair)
    .readonly()
    .variables([...dimensionVariables(), windowVariable()])
    .withPanel(timeseries('Share of playing time by bitrate (kbps)', q.overTime, 's', { stack: StackingMode.Percent }))
    .withPanel(timeseries('Playing time by bitrate (kbps)', q.overTime, 's', {
      stack: StackingMode.Normal,
      description: 'Seconds played in each bitrate bucket per graph point.',
    }))
    .withPanel(table('Playing time per bitrate bucket (selected range)', q.range, { span: 12 }))
    .withPanel(timeseries('Average bitrate (time-weighted)', q.average, 'Kbits'))
    .build();
  return withPanelIds(dashboard);
}
