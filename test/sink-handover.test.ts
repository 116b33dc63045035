import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createMemoryBus } from '../lib/bus/memory.js';
import { TOPICS } from '../lib/bus/topics.js';
import { silentLogger } from '../lib/logger.js';
import { createStore } from '../lib/store/index.js';
import type { Store } from '../lib/store/types.js';
import { emptyAcc } from '../processors/accumulator.js';
import { decodeMetricsRecord, encodeMetricsRecord, toMetricsRecord } from '../processors/metrics-record.js';
import { createSink, metricsRows } from '../processors/sink.js';
import { emptyDims } from '../schemas/events.js';
import { randomDatabaseName } from './helpers/clickhouse-server.js';
import { runSinkUntilDrained } from './helpers/sink.js';

/**
 * A partition handed over while its previous owner is still finishing a flush: kafkajs hands the
 * partitions out before the old member's onRevoke has run (lib/bus/kafka-consumer.ts), so the old
 * owner's insert can land after the new owner read the stored offsets in onAssign. Real chDB, real
 * sink; the old owner's late insert is injected at the one moment that matters, between the new
 * owner's assignment and its insert, by a store that runs it before the sink's next qoe_metrics call.
 */
describe('sink: rows a previous owner stored after the handover are not inserted again', () => {
  it('every record is stored exactly once', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'qoe-sink-handover-'));
    const real = await createStore({ kind: 'chdb', url: '', database: randomDatabaseName('qoe_handover'), dataDir }, silentLogger());
    onTestFinished(() => real.close());
    const bus = createMemoryBus({ maxBacklog: 10_000 });
    onTestFinished(() => bus.close());
    await bus.createTopics([{ topic: TOPICS.metrics, partitions: 2 }, { topic: TOPICS.beaconsDlq, partitions: 2 }]);

    // 40 window records on partition 0 and 40 on partition 1, one attempt each, over 4 windows.
    const base = Date.UTC(2026, 10, 29, 12, 0, 0);
    const producer = bus.producer();
    for (const partition of [0, 1]) {
      const messages = Array.from({ length: 40 }, (_, i) => {
        const acc = { ...emptyAcc(), attempts: 1, playingMs: 1000 + i };
        const dims = { ...emptyDims(), cdn: `cdn-${i % 3}`, country: 'US' };
        return { key: `k${i}`, partition, value: encodeMetricsRecord(toMetricsRecord({ windowStartMs: base + Math.floor(i / 10) * 10_000, dims, acc }, 10_000, partition)) };
      });
      await producer.send(TOPICS.metrics, messages);
    }

    // The previous owner's late flush: offsets 0..24 of partition 0, as its own sink would have built them.
    const lateRows = (await bus.readPartition(TOPICS.metrics, 0, 0)).slice(0, 25).map((r) => metricsRows(decodeMetricsRecord(r.value), r.partition, r.offset).metrics);
    // It lands right before the new owner's first store call for qoe_metrics after onAssign's lookup.
    let injected = false;
    const lateFlush = async (): Promise<void> => {
      if (injected) return;
      injected = true;
      await real.insert('qoe_metrics', lateRows);
    };
    const store: Store = {
      ...real,
      async query(sql, params) {
        // Not onAssign's lookup (no time range): the lookups after it, right before an insert.
        if (sql.includes('FROM qoe_metrics WHERE window_start')) await lateFlush();
        return real.query(sql, params);
      },
      async insert(table, rows) {
        if (table === 'qoe_metrics') await lateFlush();
        return real.insert(table, rows);
      },
    };

    await runSinkUntilDrained(createSink({ bus, store, log: silentLogger(), batchRows: 1000, flushMs: 60_000 }));

    expect(injected).toBe(true);
    const rows = await real.query<{ p: number; o: number; n: number }>(
      'SELECT src_partition AS p, src_offset AS o, count() AS n FROM qoe_metrics GROUP BY p, o ORDER BY p, o');
    expect(rows.map((r) => [Number(r.p), Number(r.o), Number(r.n)])).toEqual(
      [0, 1].flatMap((p) => Array.from({ length: 40 }, (_, o) => [p, o, 1])));
    const [sum] = await real.query<{ a: string }>('SELECT toString(sum(attempts)) AS a FROM qoe_metrics');
    expect(Number(sum?.a)).toBe(80);
  });
});
