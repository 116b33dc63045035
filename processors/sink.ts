import type { Logger } from '../lib/logger.js';
import type { Bus, BusRecord, ConsumerBatch, OffsetCommit, TopicPartition } from '../lib/bus/types.js';
import { CONSUMER_GROUPS, TOPICS } from '../lib/bus/topics.js';
import type { Row, Store } from '../lib/store/types.js';
import { decodeMetricsRecord, type MetricsRecord } from './metrics-record.js';
import { DIMENSIONS, snakeCase } from '../schemas/events.js';

/**
 * The ClickHouse sink: qoe.metrics.v1 → qoe_metrics + qoe_errors, qoe.beacons.v1.dlq → qoe_dead_letters.
 * Rows are batched (sink.batchRows, or sink.flushMs at the latest) and offsets committed only after
 * the insert. Every row carries its source partition/offset; on assignment the sink reads, per table,
 * the highest offset already stored for each partition and skips records at or below it, so a crash
 * between insert and commit never doubles a row (works on any ClickHouse version); before every
 * insert it asks again (notYetStored), for rows a previous owner stored after the handover.
 */
export interface SinkDeps {
  bus: Bus;
  store: Store;
  log: Logger;
  batchRows: number;
  flushMs: number;
  onInsert?: (table: string, rows: number, ms: number) => void;
}

export interface Sink {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Resolves once every buffered row is in the store. */
  flush(): Promise<void>;
  /** Records on its input topics not yet committed. */
  lag(): Promise<number>;
}

const TABLE_OF: Record<string, string[]> = {
  [TOPICS.metrics]: ['qoe_metrics', 'qoe_errors'],
  [TOPICS.beaconsDlq]: ['qoe_dead_letters'],
};

const DIM_COLUMNS = DIMENSIONS.map(snakeCase);

export function metricsRows(rec: MetricsRecord, partition: number, offset: number): { metrics: Row; errors: Row[] } {
  const { window_start_ms: startMs, source_partition: _sp, errors, ...rest } = rec;
  const windowStart = Math.floor(startMs / 1000);
  const metrics: Row = { ...rest, window_start: windowStart, src_partition: partition, src_offset: offset };
  const errorRows = errors.map((e) => {
    const row: Row = { window_start: windowStart, window_ms: rec.window_ms, error_code: e.error_code, fatal: e.fatal ? 1 : 0, count: e.count, src_partition: partition, src_offset: offset };
    for (const d of DIM_COLUMNS) row[d] = rec[d];
    return row;
  });
  return { metrics, errors: errorRows };
}

export function deadLetterRow(r: BusRecord): Row {
  const j = JSON.parse(r.value.toString('utf8')) as { reason: string; deadAtMs: number; event: unknown };
  const ev = (typeof j.event === 'object' && j.event !== null ? j.event : {}) as { sessionId?: string; tsMs?: number };
  return {
    dead_at: Math.floor(j.deadAtMs / 1000),
    reason: j.reason,
    session_id: ev.sessionId ?? '',
    event_ts: Math.floor((ev.tsMs ?? 0) / 1000),
    payload: JSON.stringify(j.event),
    src_partition: r.partition,
    src_offset: r.offset,
  };
}

/**
 * The rows cut into inserts of one day each (tables are partitioned by day, and an insert is atomic
 * only within a part), as runs in buffer order: the buffer holds each source partition's rows in
 * offset order, so every run is a contiguous stretch of offsets and, inserted one after another, what
 * is stored of a partition is always all of its offsets up to the highest stored. The restart and
 * retry rules (skip src_offset ≤ the highest stored) rely on that. Grouping by day instead would
 * insert a late delta row of yesterday (high offset) before today's rows (lower offsets) and, if the
 * second insert failed, skip them. Around midnight this makes a few more, smaller inserts.
 */
export function dayRuns(rows: Row[]): Row[][] {
  const runs: Row[][] = [];
  let run: Row[] = [];
  let runDay = NaN;
  for (const r of rows) {
    const day = Math.floor(Number(r.window_start ?? r.dead_at ?? 0) / 86_400);
    if (day !== runDay && run.length > 0) {
      runs.push(run);
      run = [];
    }
    runDay = day;
    run.push(r);
  }
  if (run.length > 0) runs.push(run);
  return runs;
}

export function createSink(deps: SinkDeps): Sink {
  const { bus, store, log } = deps;
  const consumer = bus.consumer({ groupId: CONSUMER_GROUPS.sink, topics: [TOPICS.metrics, TOPICS.beaconsDlq], autoCommit: false, maxBatchSize: deps.batchRows });
  const buffers = new Map<string, Row[]>([['qoe_metrics', []], ['qoe_errors', []], ['qoe_dead_letters', []]]);
  /** table → partition → highest src_offset already stored. */
  const stored = new Map<string, Map<number, number>>();
  const pending = new Map<string, OffsetCommit>();
  let buffered = 0;
  let timer: NodeJS.Timeout | undefined;
  let flushing: Promise<void> = Promise.resolve();
  let stopped = false;

  async function loadStored(topic: string, partition: number): Promise<void> {
    for (const table of TABLE_OF[topic] ?? []) {
      const rows = await store.query<{ m: number | string | null; n: number | string }>(
        `SELECT max(src_offset) AS m, count() AS n FROM ${table} WHERE src_partition = {p:UInt32}`, { p: partition });
      const n = Number(rows[0]?.n ?? 0);
      const byPart = stored.get(table) ?? new Map<number, number>();
      byPart.set(partition, n > 0 ? Number(rows[0]?.m) : -1);
      stored.set(table, byPart);
    }
  }

  function keep(table: string, partition: number, offset: number): boolean {
    return offset > (stored.get(table)?.get(partition) ?? -1);
  }

  function push(table: string, row: Row): void {
    buffers.get(table)?.push(row);
    buffered += 1;
  }

  /**
   * Rows not yet in `table`, asked of the store right before each insert. After a failed insert the
   * server may still have written the batch (the connection broke after the write). And after a
   * rebalance the previous owner of a partition may still be finishing its last flush (kafkajs does
   * not wait for onRevoke before handing partitions out: lib/bus/kafka-consumer.ts) after this sink
   * read the stored offsets in onAssign. Stored rows of a record have the record's time, so the
   * lookup is limited to the rows' time range (the tables' primary key starts with it); within it the
   * highest stored offset per partition says which rows are in (offsets are stored contiguously, see
   * dayRuns). What is left is the instant between this query and the insert.
   */
  async function notYetStored(table: string, rows: Row[]): Promise<Row[]> {
    if (rows.length === 0) return rows;
    const parts = [...new Set(rows.map((r) => String(r.src_partition)))];
    const timeColumn = table === 'qoe_dead_letters' ? 'dead_at' : 'window_start';
    let lo = Infinity;
    let hi = -Infinity;
    for (const r of rows) {
      const t = Number(r[timeColumn]);
      if (t < lo) lo = t;
      if (t > hi) hi = t;
    }
    const res = await store.query<{ p: number; m: number }>(
      `SELECT src_partition AS p, max(src_offset) AS m FROM ${table} WHERE ${timeColumn} >= {lo:DateTime} AND ${timeColumn} <= {hi:DateTime} ` +
        'AND has({ps:Array(String)}, toString(src_partition)) GROUP BY src_partition',
      { ps: parts, lo: lo * 1000, hi: hi * 1000 },
    );
    const max = new Map(res.map((r) => [Number(r.p), Number(r.m)]));
    return rows.filter((r) => Number(r.src_offset) > (max.get(Number(r.src_partition)) ?? -1));
  }

  async function insertWithRetry(table: string, rows: Row[]): Promise<void> {
    let todo = rows;
    for (let attempt = 0; ; attempt++) {
      const t0 = Date.now();
      try {
        todo = await notYetStored(table, todo);
        if (todo.length > 0) await store.insert(table, todo);
        deps.onInsert?.(table, todo.length, Date.now() - t0);
        return;
      } catch (err) {
        const retriable = (err as { retriable?: boolean }).retriable === true;
        if (!retriable || stopped) throw err;
        const waitMs = Math.min(5000, 100 * 2 ** Math.min(attempt, 6));
        log.warn({ err, table, attempt, waitMs }, 'insert failed, retrying');
        await new Promise((r) => setTimeout(r, waitMs));
      }
    }
  }

  async function doFlush(): Promise<void> {
    if (buffered === 0 && pending.size === 0) return;
    // Take what is buffered now; rows and offsets arriving during the insert wait for the next flush.
    const batches = [...buffers].filter(([, rows]) => rows.length > 0);
    const commits = [...pending.values()];
    for (const table of buffers.keys()) buffers.set(table, []);
    pending.clear();
    buffered = 0;
    const done = new Set<string>();
    try {
      await insertBatches(batches, done);
    } catch (err) {
      // Never drop what was taken: put the tables not yet inserted back in front of anything newer,
      // with the offsets, so the next flush retries them and no later commit can skip past them.
      for (const [table, rows] of batches) {
        if (done.has(table)) continue;
        buffers.set(table, [...rows, ...(buffers.get(table) ?? [])]);
      }
      for (const c of commits) {
        const k = `${c.topic}:${c.partition}`;
        if (!pending.has(k)) pending.set(k, c);
      }
      buffered += batches.reduce((n, [table, rows]) => n + (done.has(table) ? 0 : rows.length), 0);
      throw err;
    }
    if (commits.length > 0) await consumer.commit(commits);
  }

  async function insertBatches(batches: Array<[string, Row[]]>, done: Set<string>): Promise<void> {
    for (const [table, rows] of batches) {
      // Each run asks what is stored first: after a failure put back, part of it may be in already.
      for (const dayRows of dayRuns(rows)) await insertWithRetry(table, dayRows);
      // A batch handed over again without a reassignment must not be inserted twice either.
      const byPart = stored.get(table) ?? new Map<number, number>();
      for (const r of rows) {
        const p = Number(r.src_partition);
        const o = Number(r.src_offset);
        if (o > (byPart.get(p) ?? -1)) byPart.set(p, o);
      }
      stored.set(table, byPart);
      done.add(table);
    }
  }

  function flush(): Promise<void> {
    // A failed flush must not stop the later ones: each starts after the previous one settles.
    flushing = flushing.catch(() => undefined).then(doFlush);
    return flushing;
  }

  async function onBatch(batch: ConsumerBatch): Promise<void> {
    for (const r of batch.records) {
      if (batch.topic === TOPICS.metrics) {
        const { metrics, errors } = metricsRows(decodeMetricsRecord(r.value), r.partition, r.offset);
        if (keep('qoe_metrics', r.partition, r.offset)) push('qoe_metrics', metrics);
        if (keep('qoe_errors', r.partition, r.offset)) for (const e of errors) push('qoe_errors', e);
      } else if (keep('qoe_dead_letters', r.partition, r.offset)) {
        push('qoe_dead_letters', deadLetterRow(r));
      }
    }
    const last = batch.records[batch.records.length - 1];
    if (last) pending.set(`${batch.topic}:${batch.partition}`, { topic: batch.topic, partition: batch.partition, offset: batch.nextOffset ?? last.offset + 1 });
    if (buffered >= deps.batchRows) await flush();
  }

  async function onAssign(partitions: TopicPartition[]): Promise<void> {
    for (const p of partitions) await loadStored(p.topic, p.partition);
  }

  async function onRevoke(_partitions: TopicPartition[]): Promise<void> {
    await flush();
  }

  async function lag(): Promise<number> {
    return (await consumer.lag()).reduce((n, p) => n + p.lag, 0);
  }

  return {
    lag,
    async start() {
      await consumer.run({ eachBatch: onBatch, onAssign, onRevoke });
      timer = setInterval(() => void flush().catch((err: unknown) => log.error({ err }, 'sink flush failed')), deps.flushMs);
      timer.unref();
    },
    async stop() {
      if (timer) clearInterval(timer);
      await flush();
      stopped = true;
      await consumer.close();
    },
    flush,
  };
}
