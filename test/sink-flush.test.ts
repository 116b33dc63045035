import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createMemoryBus } from '../lib/bus/memory.js';
import { TOPICS } from '../lib/bus/topics.js';
import { silentLogger } from '../lib/logger.js';
import { createStore } from '../lib/store/index.js';
import type { Store } from '../lib/store/types.js';
import { emptyAcc } from '../processors/accumulator.js';
import { encodeMetricsRecord, toMetricsRecord } from '../processors/metrics-record.js';
import { createSink } from '../processors/sink.js';
import { emptyDims } from '../schemas/events.js';
import { randomDatabaseName } from './helpers/clickhouse-server.js';

/**
 * When the sink inserts (freshness): after a quiet interval, rows go in once arrivals pause
 * (processors/sink.ts nextFlushAt, whose bounds processors/sink.test.ts checks), not after flushMs.
 * A flush interval of a minute makes the difference far larger than any scheduling noise.
 */
describe('sink flush timing: rows after a quiet interval do not wait for flushMs', () => {
  it('inserts the first row long before the flush interval, and every later one', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'qoe-sink-flush-'));
    const store: Store = await createStore({ kind: 'chdb', url: '', database: randomDatabaseName('qoe_flush'), dataDir }, silentLogger());
    onTestFinished(async () => {
      await store.close();
      await rm(dataDir, { recursive: true, force: true });
    });
    const bus = createMemoryBus({ maxBacklog: 1000 });
    onTestFinished(() => bus.close());
    await bus.createTopics([{ topic: TOPICS.metrics, partitions: 1 }, { topic: TOPICS.beaconsDlq, partitions: 1 }]);
    const producer = bus.producer();
    const send = (attempts: number): Promise<unknown> => {
      const acc = { ...emptyAcc(), attempts };
      const rec = toMetricsRecord({ windowStartMs: Date.UTC(2026, 10, 29, 12, 0, 0), dims: { ...emptyDims(), cdn: 'cdn-a', country: 'US' }, acc }, 10_000, 0);
      return producer.send(TOPICS.metrics, [{ key: 'k', partition: 0, value: encodeMetricsRecord(rec) }]);
    };
    const stored = async (): Promise<number[]> =>
      (await store.query<{ a: number }>('SELECT attempts AS a FROM qoe_metrics ORDER BY src_offset')).map((r) => Number(r.a));

    const flushMs = 60_000;
    const sink = createSink({ bus, store, log: silentLogger(), batchRows: 1000, flushMs });
    await sink.start();
    const startedAt = Date.now();
    await send(1);
    while ((await stored()).length === 0 && Date.now() - startedAt < 20_000) await new Promise((r) => setTimeout(r, 50));
    expect(await stored()).toEqual([1]);

    // More rows, each right after the previous flush: all are stored, and stop() leaves nothing behind.
    for (let i = 2; i <= 5; i++) await send(i);
    await sink.stop();
    expect(await stored()).toEqual([1, 2, 3, 4, 5]);
    expect(Date.now() - startedAt).toBeLessThan(flushMs);
  });
});
