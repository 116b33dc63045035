import type { FastifyPluginAsync } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The pipeline's own metrics (GET /metrics, Prometheus text format). One registry per runtime so
 * several runtimes in one process (tests) do not collide. Names are documented in docs/operations.md
 * and used by the pipeline-health dashboard.
 */
export interface Telemetry {
  registry: Registry;
  ingestEvents: Counter<'outcome'>;
  processorEvents: Counter<'outcome'>;
  busLag: Gauge<'group'>;
  watermarkDelay: Gauge;
  openSessions: Gauge;
  processorCommitSeconds: Histogram;
  processorWindowRows: Counter;
  processorChangelogRecords: Counter;
  processorChangelogBytes: Counter;
  processorRestoreSeconds: Histogram;
  sinkRows: Counter<'table'>;
  sinkInsertSeconds: Histogram<'table'>;
  sinkRollupRepairs: Counter<'table'>;
  steeringDecisions: Counter<'action'>;
  steeringSubscribers: Gauge;
}

export function createTelemetry(opts: { defaultMetrics?: boolean } = {}): Telemetry {
  const registry = new Registry();
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'qoe_process_' });
  const registers = [registry];
  return {
    registry,
    ingestEvents: new Counter({ name: 'qoe_ingest_events_total', help: 'Beacon events by outcome: accepted, rejected (invalid), refused (overload)', labelNames: ['outcome'], registers }),
    processorEvents: new Counter({ name: 'qoe_processor_events_total', help: 'Events applied by the processor, by outcome: ok, late, after_end, duplicate, undecodable', labelNames: ['outcome'], registers }),
    busLag: new Gauge({ name: 'qoe_bus_lag_records', help: 'Records appended but not yet committed, by consumer group', labelNames: ['group'], registers }),
    watermarkDelay: new Gauge({ name: 'qoe_processor_watermark_delay_seconds', help: 'Wall clock minus the event-time watermark', registers }),
    openSessions: new Gauge({ name: 'qoe_processor_open_sessions', help: 'Sessions held in processor state', registers }),
    processorCommitSeconds: new Histogram({ name: 'qoe_processor_commit_seconds', help: 'One send of processor outputs: a partition\'s Kafka transaction (outputs, changelog, input offset) or the memory bus send', buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers }),
    processorWindowRows: new Counter({ name: 'qoe_processor_window_rows_total', help: 'Window rows (first and delta) the processor sent to qoe.metrics.v1', registers }),
    processorChangelogRecords: new Counter({ name: 'qoe_processor_changelog_records_total', help: 'State changelog records written (sessions, accumulators, tombstones, meta)', registers }),
    processorChangelogBytes: new Counter({ name: 'qoe_processor_changelog_bytes_total', help: 'Value bytes of the state changelog records written, before compression', registers }),
    processorRestoreSeconds: new Histogram({ name: 'qoe_processor_restore_seconds', help: 'Restoring one partition\'s state from its changelog on assignment', buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120], registers }),
    sinkRows: new Counter({ name: 'qoe_sink_rows_total', help: 'Rows inserted into ClickHouse, by table', labelNames: ['table'], registers }),
    sinkInsertSeconds: new Histogram({ name: 'qoe_sink_insert_seconds', help: 'ClickHouse insert latency', labelNames: ['table'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers }),
    sinkRollupRepairs: new Counter({ name: 'qoe_sink_rollup_repairs_total', help: 'Roll-up gaps (rows qoe_metrics holds and a roll-up lacked) repaired by the sink, by roll-up table', labelNames: ['table'], registers }),
    steeringDecisions: new Counter({ name: 'qoe_steering_decisions_total', help: 'Steering decisions issued, by action', labelNames: ['action'], registers }),
    steeringSubscribers: new Gauge({ name: 'qoe_steering_subscribers', help: 'Connected WebSocket steering subscribers', registers }),
  };
}

export function telemetryRoute(t: Telemetry, beforeScrape?: () => Promise<void>): FastifyPluginAsync {
  return async function telemetryPlugin(app) {
    app.get('/metrics', { schema: { summary: 'Prometheus metrics of this process', hide: false } }, async (_req, reply) => {
      await beforeScrape?.();
      return reply.header('Content-Type', t.registry.contentType).send(await t.registry.metrics());
    });
  };
}
