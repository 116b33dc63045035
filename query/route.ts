import type { FastifyPluginAsync } from 'fastify';
import { QoeError, isQoeError } from '../lib/errors.js';
import type { Store } from '../lib/store/types.js';
import type { Dimension } from '../schemas/events.js';
import { buildMetricsSql, finalizeRow, MAX_POINTS, METRIC_NAMES, parseMetricsQuery, type RawQuery } from './metrics.js';

export interface MetricsRouteDeps {
  store: Store;
  windowMs: number;
  /** QOE_WINDOW_DIMENSIONS: the dimensions a query may group or filter by (default: all). */
  windowDims?: readonly Dimension[];
  now: () => number;
}

/** GET /v1/metrics (docs/api.md). */
export function metricsRoute(deps: MetricsRouteDeps): FastifyPluginAsync {
  return async function metricsPlugin(app) {
    app.get<{ Querystring: RawQuery }>('/v1/metrics', {
      schema: {
        summary: 'Windowed QoE metrics, re-aggregated over time buckets and dimensions',
        querystring: {
          type: 'object',
          properties: {
            from: { type: 'string', description: 'epoch ms or ISO 8601 (default: to − 1 h)' },
            to: { type: 'string', description: 'epoch ms or ISO 8601, exclusive (default: now)' },
            step: { type: 'string', description: 'bucket size, a multiple of the window: 10s, 1m, 1h … (default: the whole range)' },
            group_by: { type: 'string', description: 'comma list of dimensions' },
            filter: { type: 'string', description: 'dimension:value[|value…], comma separated; repeat for AND' },
            metrics: { type: 'string', description: `comma list of: ${METRIC_NAMES.join(', ')}` },
          },
        },
      },
    }, async (req) => {
      const q = parseMetricsQuery(req.query, deps.now(), deps.windowMs, deps.windowDims);
      const { sql, params } = buildMetricsSql(q);
      let rows: Array<Record<string, unknown>>;
      try {
        rows = await deps.store.query(sql, params);
      } catch (err) {
        if (isQoeError(err) && err.code === 'QOE_ERR_QUERY_BAD_PARAMETER') throw err;
        throw new QoeError('QOE_ERR_QUERY_FAILED', undefined, { cause: err });
      }
      if (rows.length > MAX_POINTS) throw new QoeError('QOE_ERR_QUERY_BAD_PARAMETER', `more than ${MAX_POINTS} points: use a larger step or fewer group_by dimensions`, { details: { field: 'step' } });
      return {
        from: new Date(q.fromMs).toISOString(),
        to: new Date(q.toMs).toISOString(),
        stepMs: q.stepMs,
        groupBy: q.groupBy,
        points: rows.map((r) => finalizeRow(r, q)),
      };
    });
  };
}
