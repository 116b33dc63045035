import type { Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { BITRATE_DISTRIBUTION_UID, bitrateDistribution, bitrateQueries } from './bitrate-distribution.js';
import { CDN_COMPARISON_UID, cdnComparison, cdnQueries } from './cdn-comparison.js';
import { PIPELINE_HEALTH_UID, pipelineHealth, pipelineQueries } from './pipeline-health.js';
import type { DashboardQuery } from './query.js';
import { QOE_OVERVIEW_UID, overviewQueries, qoeOverview } from './qoe-overview.js';
import { FILTER_DIMENSIONS } from './sql.js';
import { dimensionVariableSql } from './variables.js';

/** Every dashboard: its stable uid, output file name, builder and named ClickHouse queries. */
export interface DashboardSpec {
  uid: string;
  file: string;
  build(): Dashboard;
  /** Every ClickHouse statement the dashboard runs: panels, annotations and variables. */
  queries: Record<string, DashboardQuery>;
}

const variableQueries: Record<string, DashboardQuery> = Object.fromEntries(
  FILTER_DIMENSIONS.map((d) => [`var_${d}`, { sql: dimensionVariableSql(d), result: 'table', columns: [d] } satisfies DashboardQuery]),
);

export const DASHBOARDS: readonly DashboardSpec[] = [
  { uid: QOE_OVERVIEW_UID, file: 'qoe-overview.json', build: qoeOverview, queries: { ...overviewQueries, ...variableQueries } },
  { uid: BITRATE_DISTRIBUTION_UID, file: 'qoe-bitrate-distribution.json', build: bitrateDistribution, queries: { ...bitrateQueries, ...variableQueries } },
  { uid: CDN_COMPARISON_UID, file: 'qoe-cdn-comparison.json', build: cdnComparison, queries: { ...cdnQueries, ...variableQueries } },
  { uid: PIPELINE_HEALTH_UID, file: 'qoe-pipeline-health.json', build: pipelineHealth, queries: pipelineQueries },
];
