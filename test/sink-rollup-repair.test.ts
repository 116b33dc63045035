import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createMemoryBus } from '../lib/bus/memory.js';
import { TOPICS } from '../lib/bus/topics.js';
import { silentLogger } from '../lib/logger.js';
import { createStore } from '../lib/store/index.js';
import type { Row, Store } from '../lib/store/types.js';
import { emptyAcc } from '../processors/accumulator.js';
import { decodeMetricsRecord, encodeMetricsRecord, toMetricsRecord } from '../processors/metrics-record.js';
import { createSink, metricsRows } from '../processors/sink.js';
import { emptyDims } from '../schemas/events.js';
import { bindParams } from '../sql/bind.js';
import { rollupInsertSql, ROLLUPS } from '../sql/rollups.js';
import { clickhouseServerSkipReason, randomDatabaseName, useClickHouseServer } from './helpers/clickhouse-server.js';
import { runSinkUntilDrained } from './helpers/sink.js';

/**
 * A roll-up that missed rows the raw table holds. ClickHouse writes an insert into qoe_metrics as the
 * raw part, then one part per materialized view; a server stopping in between leaves the raw rows
 * without their roll-up states (seen in test/clickhouse-outage.test.ts). The tear is made here
 * exactly: the insert runs with a view detached. The sink must notice (by the src_offsets the
 * roll-ups keep, sql/004_rollup_offsets.sql) and add the missing states from the raw rows, and must
 * not add them when the view's part was only late. Checked on chDB and on clickhouse-server 18.16,
 * against totals computed here from the records.
 */

const PARTITIONS = [0, 1];
const PER_PARTITION = 40;
// 12:58:00 UTC, one window every 10 s: the records span two hours and seven minutes.
const BASE_MS = Date.UTC(2026, 10, 29, 12, 58, 0);

interface Totals {
  attempts: number;
  playingMs: number;
  vst: Record<string, number>;
}

function recordAt(partition: number, i: number): { acc: ReturnType<typeof emptyAcc>; windowStartMs: number } {
  const acc = { ...emptyAcc(), attempts: 1 + partition, playingMs: 1000 * (partition + 1) + i, vstCount: 1, vstHist: new Map([[i % 5, 1]]) };
  return { acc, windowStartMs: BASE_MS + i * 10_000 };
}

function truth(): Totals {
  const t: Totals = { attempts: 0, playingMs: 0, vst: {} };
  for (const p of PARTITIONS) {
    for (let i = 0; i < PER_PARTITION; i++) {
      const { acc } = recordAt(p, i);
      t.attempts += acc.attempts;
      t.playingMs += acc.playingMs;
      for (const [k, n] of acc.vstHist) t.vst[k] = (t.vst[k] ?? 0) + n;
    }
  }
  return t;
}

async function totals(store: Store, table: string): Promise<Totals> {
  const raw = table === 'qoe_metrics';
  const [row] = await store.query<{ a: number; p: number; k: number[]; n: number[] }>(raw
    ? 'SELECT sum(attempts) AS a, sum(playing_ms) AS p, (sumMap(vst_hist_keys, vst_hist_counts) AS h).1 AS k, h.2 AS n FROM qoe_metrics'
    : `SELECT sumMerge(attempts) AS a, sumMerge(playing_ms) AS p, (sumMapMerge(vst_hist) AS h).1 AS k, h.2 AS n FROM ${table}`);
  const vst: Record<string, number> = {};
  (row?.k ?? []).forEach((k, i) => (vst[k] = Number(row?.n[i])));
  return { attempts: Number(row?.a), playingMs: Number(row?.p), vst };
}

async function setUp(): Promise<ReturnType<typeof createMemoryBus>> {
  const bus = createMemoryBus({ maxBacklog: 10_000 });
  onTestFinished(() => bus.close());
  await bus.createTopics([{ topic: TOPICS.metrics, partitions: 2 }, { topic: TOPICS.beaconsDlq, partitions: 2 }]);
  const producer = bus.producer();
  for (const partition of PARTITIONS) {
    const messages = Array.from({ length: PER_PARTITION }, (_, i) => {
      const { acc, windowStartMs } = recordAt(partition, i);
      const dims = { ...emptyDims(), cdn: `cdn-${i % 3}`, country: 'US' };
      return { key: `k${i}`, partition, value: encodeMetricsRecord(toMetricsRecord({ windowStartMs, dims, acc }, 10_000, partition)) };
    });
    await producer.send(TOPICS.metrics, messages);
  }
  return bus;
}

/** Inserts into qoe_metrics with the given views detached: the raw part is written, their parts are not. */
async function tornInsert(store: Store, rows: Row[], views: string[]): Promise<void> {
  for (const v of views) await store.exec(`DETACH TABLE ${v}`);
  try {
    await store.insert('qoe_metrics', rows);
  } finally {
    for (const v of views) await store.exec(`ATTACH TABLE ${v}`);
  }
}

async function drain(store: Store, bus: ReturnType<typeof createMemoryBus>, settleMs: number, repairs: string[]): Promise<void> {
  await runSinkUntilDrained(createSink({ bus, store, log: silentLogger(), batchRows: 1000, flushMs: 60_000, rollupSettleMs: settleMs, onRollupRepair: (table) => repairs.push(table) }));
}

async function expectExact(store: Store): Promise<void> {
  const expected = truth();
  const rows = await store.query<{ p: number; o: number; n: number }>(
    'SELECT src_partition AS p, src_offset AS o, count() AS n FROM qoe_metrics GROUP BY p, o ORDER BY p, o');
  expect(rows.map((r) => [Number(r.p), Number(r.o), Number(r.n)])).toEqual(
    PARTITIONS.flatMap((p) => Array.from({ length: PER_PARTITION }, (_, o) => [p, o, 1])));
  expect(await totals(store, 'qoe_metrics')).toEqual(expected);
  for (const r of ROLLUPS) expect({ table: r.table, ...(await totals(store, r.table)) }).toEqual({ table: r.table, ...expected });
}

function scenarios(open: () => Promise<Store>): void {
  it('an insert torn after the raw part and then failed: the retry adds what the roll-up lacks', async () => {
    const real = await open();
    const bus = await setUp();
    let tornPartitions: number[] = [];
    const store: Store = {
      ...real,
      async insert(table, rows) {
        if (table !== 'qoe_metrics' || tornPartitions.length > 0) return real.insert(table, rows);
        tornPartitions = [...new Set(rows.map((r) => Number(r.src_partition)))];
        await tornInsert(real, rows, ['qoe_metrics_1m_mv']);
        throw Object.assign(new Error('connection reset after the server wrote the raw part'), { retriable: true });
      },
    };
    const repairs: string[] = [];
    await drain(store, bus, 100, repairs);
    // One repair per partition the torn insert held, of the roll-up whose view was not written.
    expect(tornPartitions.length).toBeGreaterThan(0);
    expect(repairs).toEqual(tornPartitions.map(() => 'qoe_metrics_1m'));
    await expectExact(real);
  });

  it('a torn insert whose sink died: the next owner repairs the roll-ups before its first insert', async () => {
    const real = await open();
    const bus = await setUp();
    // The previous owner stored offsets 0..24 of partition 0 without either roll-up, then died
    // before committing: the next owner skips those records as stored.
    const previous = (await bus.readPartition(TOPICS.metrics, 0, 0)).slice(0, 25).map((r) => metricsRows(decodeMetricsRecord(r.value), r.partition, r.offset).metrics);
    await tornInsert(real, previous, ['qoe_metrics_1m_mv', 'qoe_metrics_1h_mv']);
    const repairs: string[] = [];
    await drain(real, bus, 100, repairs);
    expect(repairs.sort()).toEqual(['qoe_metrics_1h', 'qoe_metrics_1m']);
    await expectExact(real);
  });

  it('a view part that is only late is not added a second time', async () => {
    const real = await open();
    const bus = await setUp();
    let tornRows: Row[] = [];
    let late: 'pending' | 'written' | 'none' = 'none';
    const store: Store = {
      ...real,
      async insert(table, rows) {
        if (table !== 'qoe_metrics' || tornRows.length > 0) return real.insert(table, rows);
        tornRows = rows;
        late = 'pending';
        await tornInsert(real, rows, ['qoe_metrics_1m_mv']);
        throw Object.assign(new Error('connection reset while the server was still writing the views'), { retriable: true });
      },
      async query(sql, params) {
        const result = await real.query(sql, params);
        // The sink has seen the gap; now the view's part lands, as it would for an insert in flight.
        if (late === 'pending' && sql.includes('FROM qoe_metrics_1m ')) {
          late = 'written';
          const offsets = tornRows.map((r) => Number(r.src_offset));
          const where = 'src_partition IN (0, 1) AND src_offset >= {lo:UInt64} AND src_offset <= {hi:UInt64}';
          await real.exec(bindParams(rollupInsertSql(ROLLUPS[0]!, where), { lo: Math.min(...offsets), hi: Math.max(...offsets) }));
        }
        return result as never;
      },
    };
    const repairs: string[] = [];
    await drain(store, bus, 300, repairs);
    expect(late).toBe('written');
    expect(repairs).toEqual([]);
    await expectExact(real);
  });
}

describe('sink: roll-up rows lost between the raw part and the view parts are repaired, once (chDB)', () => {
  scenarios(async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'qoe-rollup-repair-'));
    const store = await createStore({ kind: 'chdb', url: '', database: randomDatabaseName('qoe_repair'), dataDir }, silentLogger());
    onTestFinished(async () => {
      await store.close();
      await rm(dataDir, { recursive: true, force: true });
    });
    return store;
  });
});

const skipReason = clickhouseServerSkipReason();
if (skipReason !== undefined) console.warn(`skipping clickhouse-server roll-up repair tests: ${skipReason}`);

describe.skipIf(skipReason !== undefined)('sink: roll-up repair on clickhouse-server 18.16', () => {
  const server = useClickHouseServer();
  scenarios(async () => {
    const database = randomDatabaseName('qoe_repair');
    const store = await createStore({ kind: 'clickhouse', url: server().url, database, dataDir: '' }, silentLogger());
    onTestFinished(async () => {
      await store.exec(`DROP DATABASE IF EXISTS ${database}`);
      await store.close();
    });
    return store;
  });
});
