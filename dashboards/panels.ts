import type { Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import {
  BigValueGraphMode,
  LegendDisplayMode,
  LegendPlacement,
  ReduceDataOptionsBuilder,
  StackingConfigBuilder,
  StackingMode,
  VizLegendOptionsBuilder,
} from '@grafana/grafana-foundation-sdk/common';
import { PanelBuilder as StatBuilder } from '@grafana/grafana-foundation-sdk/stat';
import { PanelBuilder as TableBuilder } from '@grafana/grafana-foundation-sdk/table';
import { PanelBuilder as TimeseriesBuilder } from '@grafana/grafana-foundation-sdk/timeseries';
import { DataqueryBuilder as PromQueryBuilder } from '@grafana/grafana-foundation-sdk/prometheus';
import { PROMETHEUS } from './datasources.js';
import { target, type DashboardQuery } from './query.js';

/** Small panel factories so the dashboard files read as layouts. */

function legend(): VizLegendOptionsBuilder {
  return new VizLegendOptionsBuilder().showLegend(true).displayMode(LegendDisplayMode.List).placement(LegendPlacement.Bottom).calcs([]);
}

export function timeseries(title: string, q: DashboardQuery, unit: string, opts: { stack?: StackingMode; description?: string } = {}): TimeseriesBuilder {
  const b = new TimeseriesBuilder()
    .title(title)
    .withTarget(target(q))
    .unit(unit)
    .legend(legend())
    .span(12)
    .height(8);
  if (opts.description !== undefined) b.description(opts.description);
  if (opts.stack !== undefined && opts.stack !== StackingMode.None) {
    b.stacking(new StackingConfigBuilder().mode(opts.stack).group('A')).fillOpacity(70).lineWidth(0);
  }
  return b;
}

export function table(title: string, q: DashboardQuery, opts: { span?: number; height?: number; description?: string } = {}): TableBuilder {
  const b = new TableBuilder().title(title).withTarget(target(q)).span(opts.span ?? 24).height(opts.height ?? 8);
  if (opts.description !== undefined) b.description(opts.description);
  return b;
}

/** A stat over a one-row table query; `field` selects the column shown. */
export function stat(title: string, q: DashboardQuery, field: string, unit: string, span = 4): StatBuilder {
  const reduce = new ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false).fields(`/^${field}$/`);
  return new StatBuilder()
    .title(title)
    .withTarget(target(q))
    .unit(unit)
    .reduceOptions(reduce)
    .graphMode(BigValueGraphMode.None)
    .span(span)
    .height(4);
}

export function promTarget(expr: string, legend: string, refId = 'A'): PromQueryBuilder {
  return new PromQueryBuilder().datasource(PROMETHEUS).expr(expr).legendFormat(legend).range().refId(refId);
}

export function promTimeseries(title: string, unit: string, targets: PromQueryBuilder[], description?: string): TimeseriesBuilder {
  const b = new TimeseriesBuilder().title(title).datasource(PROMETHEUS).unit(unit).legend(legend()).span(12).height(8);
  for (const t of targets) b.withTarget(t);
  if (description !== undefined) b.description(description);
  return b;
}

/**
 * Numbers every panel (rows and the panels inside collapsed rows included) 1, 2, … in layout order:
 * stable ids for links and provisioning diffs, which the SDK leaves unset.
 */
export function withPanelIds(d: Dashboard): Dashboard {
  let next = 1;
  for (const p of d.panels ?? []) {
    p.id = next++;
    if (p.type === 'row' && 'panels' in p) for (const inner of p.panels) inner.id = next++;
  }
  return d;
}
