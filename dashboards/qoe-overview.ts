import { DashboardBuilder, DashboardCursorSync, RowBuilder, type Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { PanelBuilder as TableBuilder } from '@grafana/grafana-foundation-sdk/table';
import { query, seriesQuery, target, totalsQuery, type DashboardQuery } from './query.js';
import { stat, timeseries, withPanelIds } from './panels.js';
import { metricsWhere } from './sql.js';
import { steeringAnnotation, steeringAnnotationQuery } from './steering.js';
import { dimensionVariables, windowVariable } from './variables.js';

/** QoE overview: volume, start-up, failures and playback quality for the selected dimensions. */

export const QOE_OVERVIEW_UID = 'qoe-overview';

export const overviewQueries = {
  totals: totalsQuery([
    'attempts', 'plays', 'vst_p50_ms', 'vst_p95_ms', 'rebuffer_ratio', 'connection_rebuffer_ratio',
    'avg_bitrate_kbps', 'vsf_rate', 'ebvs_rate', 'vpf_rate', 'concurrent_sessions',
  ]),
  volume: seriesQuery(['attempts', 'plays']),
  concurrent: seriesQuery(['concurrent_sessions']),
  vst: seriesQuery(['vst_p50_ms', 'vst_p95_ms']),
  failures: seriesQuery(['vsf_rate', 'ebvs_rate', 'vpf_rate']),
  rebuffer: seriesQuery(['rebuffer_ratio', 'connection_rebuffer_ratio']),
  bitrate: seriesQuery(['avg_bitrate_kbps']),
  errors: query(
    `SELECT
  error_code,
  sum(count) AS errors,
  sumIf(count, fatal = 1) AS fatal_errors
FROM qoe_errors
WHERE ${metricsWhere()}
GROUP BY error_code
ORDER BY errors DESC, error_code
LIMIT 20`,
    'table',
    ['error_code', 'errors', 'fatal_errors'],
  ),
  steering: steeringAnnotationQuery,
} satisfies Record<string, DashboardQuery>;

export function qoeOverview(): Dashboard {
  const q = overviewQueries;
  const dashboard = new DashboardBuilder('QoE overview')
    .uid(QOE_OVERVIEW_UID)
    .description('Attempts, plays, video start time, failures, rebuffering, bitrate and concurrency (docs/metrics.md).')
    .tags(['qoe-stream', 'qoe'])
    .time({ from: 'now-3h', to: 'now' })
    .refresh('30s')
    .timezone('utc')
    .tooltip(DashboardCursorSync.Crosshair)
    .readonly()
    .variables([...dimensionVariables(), windowVariable()])
    .annotation(steeringAnnotation())
    .withRow(new RowBuilder('Selected range'))
    .withPanel(stat('Attempts', q.totals, 'attempts', 'short'))
    .withPanel(stat('Plays', q.totals, 'plays', 'short'))
    .withPanel(stat('VST p95', q.totals, 'vst_p95_ms', 'ms'))
    .withPanel(stat('Rebuffer ratio', q.totals, 'rebuffer_ratio', 'percentunit'))
    .withPanel(stat('Avg bitrate', q.totals, 'avg_bitrate_kbps', 'Kbits'))
    .withPanel(stat('Concurrent sessions (avg)', q.totals, 'concurrent_sessions', 'short'))
    .withRow(new RowBuilder('Over time'))
    .withPanel(timeseries('Attempts and plays', q.volume, 'short'))
    .withPanel(timeseries('Concurrent sessions', q.concurrent, 'short', {
      description: 'Time-averaged live sessions: active ms / point ms.',
    }))
    .withPanel(timeseries('Video start time p50 / p95', q.vst, 'ms', {
      description: 'Percentiles of the merged VST histograms (±2%), never averaged.',
    }))
    .withPanel(timeseries('VSF, EBVS and VPF rates', q.failures, 'percentunit', {
      description: 'VSF and EBVS per attempt, VPF per play.',
    }))
    .withPanel(timeseries('Rebuffer ratio', q.rebuffer, 'percentunit', {
      description: 'rebuffer_ratio: (rebuffer + seek-induced) / (playing + both); connection_rebuffer_ratio: rebuffer only.',
    }))
    .withPanel(timeseries('Average bitrate (time-weighted)', q.bitrate, 'Kbits'))
    .withRow(new RowBuilder('Errors'))
    .withPanel(new TableBuilder().title('Top error codes').withTarget(target(q.errors)).span(24).height(8))
    .build();
  return withPanelIds(dashboard);
}
