import type { Builder, Dataquery } from '@grafana/grafana-foundation-sdk/cog';
import type { DataSourceRef } from '@grafana/grafana-foundation-sdk/common';

/**
 * Data sources of the qoe-stream dashboards. ClickHouse is provisioned with a fixed uid
 * (dashboards/out/provisioning/datasources/clickhouse.yaml); Prometheus is chosen with the
 * `prometheus` data source variable, defaulting to the provisioned one.
 *
 * The foundation SDK has no builder for the ClickHouse plugin, so ClickHouseQueryBuilder below
 * implements the SDK's custom query type pattern (a Dataquery variant with a builder).
 */

export const CLICKHOUSE_PLUGIN_ID = 'grafana-clickhouse-datasource';
export const CLICKHOUSE_UID = 'qoe-clickhouse';
export const PROMETHEUS_UID = 'qoe-prometheus';
export const PROMETHEUS_VARIABLE = 'prometheus';

export const CLICKHOUSE: DataSourceRef = { type: CLICKHOUSE_PLUGIN_ID, uid: CLICKHOUSE_UID };
export const PROMETHEUS: DataSourceRef = { type: 'prometheus', uid: `\${${PROMETHEUS_VARIABLE}}` };

/** How the plugin shapes the result: a time series (first column `time`) or a table. */
export type ClickHouseResult = 'timeseries' | 'table';

/** The plugin's `format` numbers (src/types: TIME_SERIES = 0, TABLE = 1). */
const FORMAT: Record<ClickHouseResult, number> = { timeseries: 0, table: 1 };

/** A grafana-clickhouse-datasource SQL query as stored in dashboard JSON (plugin v4). */
export interface ClickHouseQuery {
  refId?: string;
  hide?: boolean;
  datasource?: DataSourceRef;
  editorType: 'sql';
  queryType: ClickHouseResult;
  format: number;
  rawSql: string;
  _implementsDataqueryVariant(): void;
}

export class ClickHouseQueryBuilder implements Builder<Dataquery> {
  private readonly internal: ClickHouseQuery;

  constructor(rawSql: string, result: ClickHouseResult = 'timeseries') {
    this.internal = {
      datasource: CLICKHOUSE,
      editorType: 'sql',
      queryType: result,
      format: FORMAT[result],
      rawSql,
      _implementsDataqueryVariant() {},
    };
  }

  build(): ClickHouseQuery {
    return this.internal;
  }

  refId(refId: string): this {
    this.internal.refId = refId;
    return this;
  }

  hide(hide: boolean): this {
    this.internal.hide = hide;
    return this;
  }
}

/** Type guard for reading built dashboards (tests, build checks). */
export function isClickHouseQuery(q: unknown): q is ClickHouseQuery {
  return typeof q === 'object' && q !== null && 'rawSql' in q && 'datasource' in q
    && (q as { datasource?: DataSourceRef }).datasource?.type === CLICKHOUSE_PLUGIN_ID;
}
