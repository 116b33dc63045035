import { DashboardBuilder, DashboardCursorSync, RowBuilder, type Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { promTarget, promTimeseries, stat, table, timeseries, withPanelIds } from './panels.js';
import { query, type DashboardQuery } from './query.js';
import { prometheusVariable } from './variables.js';

/**
 * Pipeline health: late and dead-lettered events (qoe_dead_letters, by reason) from ClickHouse, and
 * the services' own metrics from Prometheus (lib/telemetry.ts: ingest rate, consumer lag, insert
 * latency, watermark delay, steering subscribers).
 */

export const PIPELINE_HEALTH_UID = 'qoe-pipeline-health';

const DEAD_BUCKET = 'toUInt32(greatest(1, $__interval_s))';

export const pipelineQueries = {
  deadByReason: query(
    `SELECT
  time,
  reason,
  events
FROM
(
  WITH ${DEAD_BUCKET} AS bucket_s
  SELECT
    toDateTime(intDiv(toUInt32(dead_at), bucket_s) * bucket_s) AS time,
    reason,
    count() AS events
  FROM qoe_dead_letters
  WHERE $__timeFilter(dead_at)
  GROUP BY time, reason
)
ORDER BY time, reason`,
    'timeseries',
    ['time', 'reason', 'events'],
  ),
  reasons: query(
    `SELECT
  reason,
  count() AS events,
  uniqExact(session_id) AS sessions,
  max(dead_at) AS last_at
FROM qoe_dead_letters
WHERE $__timeFilter(dead_at)
GROUP BY reason
ORDER BY events DESC, reason`,
    'table',
    ['reason', 'events', 'sessions', 'last_at'],
  ),
  totals: query(
    `SELECT
  countIf(reason = 'late') AS late_events,
  countIf(reason != 'late') AS dead_lettered
FROM qoe_dead_letters
WHERE $__timeFilter(dead_at)`,
    'table',
    ['late_events', 'dead_lettered'],
  ),
} satisfies Record<string, DashboardQuery>;

/** PromQL of the Prometheus panels; metric names are those lib/telemetry.ts registers. */
export const PROMETHEUS_EXPRS = {
  ingestRate: 'sum by (outcome) (rate(qoe_ingest_events_total[$__rate_interval]))',
  busLag: 'sum by (group) (qoe_bus_lag_records)',
  insertP50: 'histogram_quantile(0.5, sum by (le) (rate(qoe_sink_insert_seconds_bucket[$__rate_interval])))',
  insertP99: 'histogram_quantile(0.99, sum by (le) (rate(qoe_sink_insert_seconds_bucket[$__rate_interval])))',
  watermarkDelay: 'max(qoe_processor_watermark_delay_seconds)',
  commitP50: 'histogram_quantile(0.5, sum by (le) (rate(qoe_processor_commit_seconds_bucket[$__rate_interval])))',
  commitP99: 'histogram_quantile(0.99, sum by (le) (rate(qoe_processor_commit_seconds_bucket[$__rate_interval])))',
  windowRows: 'sum(rate(qoe_processor_window_rows_total[$__rate_interval]))',
  changelogRecords: 'sum(rate(qoe_processor_changelog_records_total[$__rate_interval]))',
  subscribers: 'sum(qoe_steering_subscribers)',
} as const;

export function pipelineHealth(): Dashboard {
  const q = pipelineQueries;
  const p = PROMETHEUS_EXPRS;
  const dashboard = new DashboardBuilder('QoE pipeline health')
    .uid(PIPELINE_HEALTH_UID)
    .description('Late and dead-lettered events; ingest rate, consumer lag, insert latency, watermark delay, processor commits and output, steering subscribers.')
    .tags(['qoe-stream', 'pipeline'])
    .time({ from: 'now-1h', to: 'now' })
    .refresh('30s')
    .timezone('utc')
    .tooltip(DashboardCursorSync.Crosshair)
    .readonly()
    .variables([prometheusVariable()])
    .withRow(new RowBuilder('Dead letters (ClickHouse)'))
    .withPanel(stat('Late events', q.totals, 'late_events', 'short', 6))
    .withPanel(stat('Dead-lettered (other reasons)', q.totals, 'dead_lettered', 'short', 6))
    .withPanel(table('Dead letters by reason', q.reasons, { span: 12, height: 4 }))
    .withPanel(timeseries('Dead letters by reason', q.deadByReason, 'short', {
      description: 'late: applied to the first open window and copied here for audit; other reasons were not counted.',
    }).span(24))
    .withRow(new RowBuilder('Services (Prometheus)'))
    .withPanel(promTimeseries('Ingest rate by outcome (events/s)', 'short', [promTarget(p.ingestRate, '{{outcome}}')]))
    .withPanel(promTimeseries('Consumer lag', 'short', [promTarget(p.busLag, '{{group}}')], 'Records appended but not yet committed.'))
    .withPanel(promTimeseries('ClickHouse insert latency', 's', [promTarget(p.insertP50, 'p50', 'A'), promTarget(p.insertP99, 'p99', 'B')]))
    .withPanel(promTimeseries('Watermark delay', 's', [promTarget(p.watermarkDelay, 'delay')], 'Wall clock minus the event-time watermark.'))
    .withPanel(promTimeseries('Processor commit latency', 's', [promTarget(p.commitP50, 'p50', 'A'), promTarget(p.commitP99, 'p99', 'B')],
      'One partition\'s transaction on Kafka (outputs, changelog, input offset), or the memory bus send.'))
    .withPanel(promTimeseries('Processor output (records/s)', 'short', [promTarget(p.windowRows, 'window rows', 'A'), promTarget(p.changelogRecords, 'changelog records', 'B')],
      'Window rows sent to qoe.metrics.v1, and state changelog records written (Kafka).'))
    .withPanel(promTimeseries('Steering WebSocket subscribers', 'short', [promTarget(p.subscribers, 'subscribers')]))
    .build();
  return withPanelIds(dashboard);
}
