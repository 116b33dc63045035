import { DashboardBuilder, DashboardCursorSync, RowBuilder, type Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { table, timeseries, withPanelIds } from './panels.js';
import { seriesQuery, totalsQuery, type DashboardQuery } from './query.js';
import { steeringAnnotation, steeringAnnotationQuery, steeringTableQuery } from './steering.js';
import { dimensionVariables, splitVariable, windowVariable } from './variables.js';

/**
 * CDN comparison: each CDN's QoE, split by country or ASN (`split` variable), the per-CDN series
 * and the steering decisions taken on them.
 */

export const CDN_COMPARISON_UID = 'qoe-cdn-comparison';

export const cdnQueries = {
  bySegment: totalsQuery(
    ['attempts', 'plays', 'vst_p95_ms', 'rebuffer_ratio', 'connection_rebuffer_ratio', 'avg_bitrate_kbps', 'vsf_rate', 'vpf_rate'],
    ['cdn', '${split} AS segment'],
    'cdn, attempts DESC, segment',
  ),
  rebuffer: seriesQuery(['rebuffer_ratio'], ['cdn']),
  vst: seriesQuery(['vst_p95_ms'], ['cdn']),
  bitrate: seriesQuery(['avg_bitrate_kbps'], ['cdn']),
  failures: seriesQuery(['vsf_rate'], ['cdn']),
  steering: steeringAnnotationQuery,
  decisions: steeringTableQuery,
} satisfies Record<string, DashboardQuery>;

export function cdnComparison(): Dashboard {
  const q = cdnQueries;
  const dashboard = new DashboardBuilder('QoE CDN comparison')
    .uid(CDN_COMPARISON_UID)
    .description('QoE per CDN by country or ASN, with the steering decisions as annotations.')
    .tags(['qoe-stream', 'qoe', 'cdn', 'steering'])
    .time({ from: 'now-3h', to: 'now' })
    .refresh('30s')
    .timezone('utc')
    .tooltip(DashboardCursorSync.Crosshair)
    .readonly()
    .variables([...dimensionVariables(), splitVariable(), windowVariable()])
    .annotation(steeringAnnotation())
    .withPanel(table('CDNs by ${split} (selected range)', q.bySegment, { height: 10 }))
    .withRow(new RowBuilder('Per CDN over time'))
    .withPanel(timeseries('Rebuffer ratio by CDN', q.rebuffer, 'percentunit'))
    .withPanel(timeseries('Video start time p95 by CDN', q.vst, 'ms'))
    .withPanel(timeseries('Average bitrate by CDN', q.bitrate, 'Kbits'))
    .withPanel(timeseries('VSF rate by CDN', q.failures, 'percentunit'))
    .withRow(new RowBuilder('Steering'))
    .withPanel(table('Steering decisions', q.decisions, { height: 10 }))
    .build();
  return withPanelIds(dashboard);
}
