import {
  ConstantVariableBuilder,
  CustomVariableBuilder,
  DatasourceVariableBuilder,
  QueryVariableBuilder,
  VariableHide,
  VariableRefresh,
  VariableSort,
} from '@grafana/grafana-foundation-sdk/dashboard';
import { CLICKHOUSE, PROMETHEUS_UID, PROMETHEUS_VARIABLE } from './datasources.js';
import { FILTER_DIMENSIONS, type FilterDimension } from './sql.js';

/** Template variables shared by the dashboards. */

const LABELS: Record<FilterDimension, string> = {
  cdn: 'CDN',
  country: 'Country',
  device_type: 'Device type',
  stream_type: 'Stream type',
};

/** The values a dimension takes in the selected time range (multi-select, with All). */
export function dimensionVariableSql(dim: FilterDimension): string {
  return `SELECT DISTINCT ${dim} FROM qoe_metrics WHERE $__timeFilter(window_start) ORDER BY ${dim} LIMIT 1000`;
}

export function dimensionVariable(dim: FilterDimension): QueryVariableBuilder {
  const sql = dimensionVariableSql(dim);
  return new QueryVariableBuilder(dim)
    .label(LABELS[dim])
    .datasource(CLICKHOUSE)
    .query(sql)
    .definition(sql)
    .multi(true)
    .includeAll(true)
    .current({ text: 'All', value: '$__all', selected: true })
    .refresh(VariableRefresh.OnTimeRangeChanged)
    .sort(VariableSort.AlphabeticalAsc);
}

export function dimensionVariables(): QueryVariableBuilder[] {
  return FILTER_DIMENSIONS.map(dimensionVariable);
}

/**
 * The processor window in seconds (QOE_WINDOW_MS / 1000, default 10 s): graph points are whole
 * numbers of windows (see BUCKET_SECONDS in sql.ts). A hidden constant; change it here and rebuild
 * if the window is changed.
 */
export const DEFAULT_WINDOW_SECONDS = 10;

export function windowVariable(): ConstantVariableBuilder {
  return new ConstantVariableBuilder('window_s')
    .label('Window (s)')
    .description('The processor window, QOE_WINDOW_MS / 1000')
    .value(String(DEFAULT_WINDOW_SECONDS));
}

/** The Prometheus data source scraping the services' /metrics (defaults to the provisioned one). */
export function prometheusVariable(): DatasourceVariableBuilder {
  return new DatasourceVariableBuilder(PROMETHEUS_VARIABLE)
    .label('Prometheus')
    .type('prometheus')
    .current({ text: 'Prometheus', value: PROMETHEUS_UID, selected: true })
    .hide(VariableHide.DontHide);
}

/** Which dimension the CDN comparison splits each CDN by. */
export const SPLIT_DIMENSIONS = ['country', 'asn'] as const;

export function splitVariable(): CustomVariableBuilder {
  return new CustomVariableBuilder('split')
    .label('Compare CDNs by')
    .values(SPLIT_DIMENSIONS.join(','))
    .current({ text: 'country', value: 'country', selected: true })
    .options(SPLIT_DIMENSIONS.map((d, i) => ({ text: d, value: d, selected: i === 0 })));
}
