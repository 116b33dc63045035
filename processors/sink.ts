import type { Logger } from '../lib/logger.js';
import type { Bus, BusRecord, ConsumerBatch, OffsetCommit, TopicPartition } from '../lib/bus/types.js';
import { CONSUMER_GROUPS, TOPICS } from '../lib/bus/topics.js';
import type { Row, Store } from '../lib/store/types.js';
import { METRICS_FIELDS, compileRecordBuilder, decodeMetricsRecord, type MetricsRecord } from './metrics-record.js';
import { metricsJsonRows } from './metrics-json.js';
import { DIMENSIONS, snakeCase } from '../schemas/events.js';
import { bindParams } from '../sql/bind.js';
import { rolledUpOffsets, rollupInsertSql, ROLLUPS, type Rollup } from '../sql/rollups.js';

/**
 * The ClickHouse sink: qoe.metrics.v1 → qoe_metrics + qoe_errors, qoe.beacons.v1.dlq → qoe_dead_letters.
 * Rows are batched (sink.batchRows, a lull in arrivals, or sink.flushMs at the latest: nextFlushAt)
 * and offsets committed only after
 * the insert. Every row carries its source partition/offset; on assignment the sink reads, per table,
 * the highest offset already stored for each partition and skips records at or below it, so a crash
 * between insert and commit never doubles a row (works on any ClickHouse version); before every
 * insert it asks again (notYetStored), for rows a previous owner stored after the handover.
 *
 * The roll-ups are written by materialized views, as separate parts after the raw one: a server that
 * stops in between keeps raw rows the roll-ups lack, and the skip above would make that permanent.
 * After a failed insert, and before the first insert of a partition it took over, the sink compares
 * the offsets each roll-up holds with qoe_metrics and adds what is missing (repairRollups).
 */
export interface SinkDeps {
  bus: Bus;
  store: Store;
  log: Logger;
  batchRows: number;
  flushMs: number;
  onInsert?: (table: string, rows: number, ms: number) => void;
  /**
   * How long a roll-up gap must stay before it is repaired (default 2000 ms): an insert in flight
   * (a broken connection's, or a previous owner's) may be between its raw part and its view parts.
   */
  rollupSettleMs?: number;
  /** A roll-up gap repaired: the table, the source partition, the offsets it spanned. */
  onRollupRepair?: (table: string, partition: number, offsets: number) => void;
}

/** Source offsets qoe_metrics holds of a partition and a roll-up does not: (after, upTo]. */
interface RollupGap {
  rollup: Rollup;
  partition: number;
  after: number;
  upTo: number;
  /** Raw window_start range (epoch s) the gap was measured over; none: all time. */
  range?: { lo: number; hi: number };
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

/** A qoe_metrics row from a record: its fields but the window start in ms, the source partition and the errors. */
const buildMetricsRow = compileRecordBuilder<(rec: MetricsRecord, windowStart: number, partition: number, offset: number) => Row>(
  ['rec', 'windowStart', 'partition', 'offset'],
  [
    ...METRICS_FIELDS.filter((f) => f !== 'window_start_ms' && f !== 'source_partition' && f !== 'errors').map((f) => [f, `rec.${f}`] as const),
    ['window_start', 'windowStart'], ['src_partition', 'partition'], ['src_offset', 'offset'],
  ],
);

export function metricsRows(rec: MetricsRecord, partition: number, offset: number): { metrics: Row; errors: Row[] } {
  const windowStart = Math.floor(rec.window_start_ms / 1000);
  const metrics = buildMetricsRow(rec, windowStart, partition, offset);
  const errorRows = rec.errors.map((e) => {
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

/** How long the sink waits for more after the last arrival (a window's rows come as a burst, one batch per partition). */
export const SINK_LINGER_MS = 100;
/** Shortest time between two flushes' starts: at most 4 inserts per second per table. */
export const SINK_MIN_GAP_MS = 250;

/**
 * When to flush what waits: once arrivals pause for SINK_LINGER_MS (the burst a window's firing
 * sends is then in), and at the latest flushMs after the oldest waiting arrived (steady traffic), but
 * never sooner than SINK_MIN_GAP_MS after the last flush started (both capped by flushMs). A fixed
 * flushMs timer made every row wait flushMs / 2 on average; flushing the first arrival at once made
 * the rest of its burst wait a whole interval.
 */
export function nextFlushAt(s: { lastFlushAt: number; firstWaitingAt: number; lastArrivalAt: number; flushMs: number }): number {
  const linger = Math.min(SINK_LINGER_MS, s.flushMs);
  const minGap = Math.min(SINK_MIN_GAP_MS, s.flushMs);
  return Math.max(s.lastFlushAt + minGap, Math.min(s.lastArrivalAt + linger, s.firstWaitingAt + s.flushMs));
}

/** The smallest and largest value of a time column (epoch s) over `rows`. */
function timeRange(rows: Row[], column: string): { lo: number; hi: number } {
  let lo = Infinity;
  let hi = -Infinity;
  for (const r of rows) {
    const t = Number(r[column]);
    if (t < lo) lo = t;
    if (t > hi) hi = t;
  }
  return { lo, hi };
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
  /** When the last flush with something to do started (Date.now()). */
  let lastFlushAt = -Infinity;
  /** A scheduled flush is waiting behind the running one. */
  let flushQueued = false;
  /** When the oldest and the newest of what waits now arrived (Date.now()). */
  let firstWaitingAt: number | undefined;
  let lastArrivalAt = -Infinity;
  let timerAt = NaN;
  /** After a failed flush, the next waits flushMs (the inserts themselves retry with backoff). */
  let notBefore = -Infinity;
  let closing = false;
  let stopped = false;
  /** Metrics partitions taken over whose roll-ups are not yet checked against qoe_metrics. */
  const rollupCheck = new Set<number>();

  /** Per table of `topic`, the highest offset stored for each of `partitions`: one scan per table, not per partition. */
  async function loadStored(topic: string, partitions: number[]): Promise<void> {
    if (partitions.length === 0) return;
    for (const table of TABLE_OF[topic] ?? []) {
      const rows = await store.query<{ p: number; m: number | string }>(
        `SELECT src_partition AS p, max(src_offset) AS m FROM ${table} WHERE has({ps:Array(String)}, toString(src_partition)) GROUP BY src_partition`,
        { ps: partitions.map(String) });
      const max = new Map(rows.map((r) => [Number(r.p), Number(r.m)]));
      const byPart = stored.get(table) ?? new Map<number, number>();
      for (const p of partitions) byPart.set(p, max.get(p) ?? -1);
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
    const { lo, hi } = timeRange(rows, timeColumn);
    const res = await store.query<{ p: number; m: number }>(
      `SELECT src_partition AS p, max(src_offset) AS m FROM ${table} WHERE ${timeColumn} >= {lo:DateTime} AND ${timeColumn} <= {hi:DateTime} ` +
        'AND has({ps:Array(String)}, toString(src_partition)) GROUP BY src_partition',
      { ps: parts, lo: lo * 1000, hi: hi * 1000 },
    );
    const max = new Map(res.map((r) => [Number(r.p), Number(r.m)]));
    return rows.filter((r) => Number(r.src_offset) > (max.get(Number(r.src_partition)) ?? -1));
  }

  /**
   * Per roll-up and partition, the offsets qoe_metrics holds and the roll-up lacks: over `range`
   * (raw window_start, epoch s) widened to whole roll-up buckets, or over all time. Both tables hold
   * every offset of a partition up to their highest (dayRuns), so a lower maximum in the roll-up
   * means exactly the rows above it are missing there.
   */
  async function rollupGaps(parts: number[], range?: { lo: number; hi: number }): Promise<RollupGap[]> {
    const gaps: RollupGap[] = [];
    const ps = parts.map(String);
    for (const rollup of ROLLUPS) {
      const b = rollup.bucketSeconds;
      const span = range && { lo: Math.floor(range.lo / b) * b, hi: Math.floor(range.hi / b) * b + b - 1 };
      const time = span ? 'window_start >= {lo:DateTime} AND window_start <= {hi:DateTime}' : '1';
      const timeParams = span ? { lo: span.lo * 1000, hi: span.hi * 1000 } : {};
      // Over all time, what qoe_metrics holds is known since onAssign (loadStored): no second scan.
      const raw = span
        ? await store.query<{ p: number; m: number }>(
          `SELECT src_partition AS p, max(src_offset) AS m FROM qoe_metrics WHERE ${time} AND has({ps:Array(String)}, toString(src_partition)) GROUP BY src_partition`,
          { ...timeParams, ps })
        : parts.map((p) => ({ p, m: stored.get('qoe_metrics')?.get(p) ?? -1 })).filter((r) => r.m >= 0);
      if (raw.length === 0) continue;
      const [merged] = await store.query<{ m: unknown }>(`SELECT maxForEachMerge(src_offsets) AS m FROM ${rollup.table} WHERE ${time}`, timeParams);
      const rolled = rolledUpOffsets(merged?.m);
      for (const r of raw) {
        const partition = Number(r.p);
        const after = rolled[partition] ?? -1;
        if (Number(r.m) > after) gaps.push({ rollup, partition, after, upTo: Number(r.m), range: span });
      }
    }
    return gaps;
  }

  /**
   * Adds to the roll-ups, from qoe_metrics, the rows of `parts` they lack. A gap is repaired only if
   * it is still the same after rollupSettleMs: an insert in flight may be between its raw part and its
   * view parts. Returns false when a gap changed meanwhile (check again later).
   */
  async function repairRollups(parts: number[], range?: { lo: number; hi: number }): Promise<boolean> {
    const first = await rollupGaps(parts, range);
    if (first.length === 0) return true;
    await new Promise((r) => setTimeout(r, deps.rollupSettleMs ?? 2000));
    let settled = true;
    for (const g of await rollupGaps(parts, range)) {
      if (!first.some((f) => f.rollup === g.rollup && f.partition === g.partition && f.after === g.after && f.upTo === g.upTo)) {
        settled = false;
        continue;
      }
      log.warn({ table: g.rollup.table, partition: g.partition, afterOffset: g.after, upToOffset: g.upTo, range: g.range },
        'roll-up lacks rows qoe_metrics holds (an insert stopped between the table and its views): adding them from qoe_metrics');
      const where = ['src_partition = {p:UInt32}', 'src_offset >= {from:UInt64}', 'src_offset <= {to:UInt64}'];
      const params: Record<string, unknown> = { p: g.partition, from: g.after + 1, to: g.upTo };
      if (g.range) {
        where.push('window_start >= {lo:DateTime}', 'window_start <= {hi:DateTime}');
        Object.assign(params, { lo: g.range.lo * 1000, hi: g.range.hi * 1000 });
      }
      await store.exec(bindParams(rollupInsertSql(g.rollup, where.join(' AND ')), params));
      deps.onRollupRepair?.(g.rollup.table, g.partition, g.upTo - g.after);
    }
    return settled;
  }

  /** Roll-up checks due before inserting `rows` into qoe_metrics (attempt > 0: a previous try failed). */
  async function checkRollups(rows: Row[], attempt: number): Promise<void> {
    const parts = [...new Set(rows.map((r) => Number(r.src_partition)))];
    if (attempt > 0 && !(await repairRollups(parts, timeRange(rows, 'window_start')))) for (const p of parts) rollupCheck.add(p);
    const due = parts.filter((p) => rollupCheck.has(p));
    if (due.length > 0 && (await repairRollups(due))) for (const p of due) rollupCheck.delete(p);
  }

  async function insertWithRetry(table: string, rows: Row[]): Promise<void> {
    let todo = rows;
    for (let attempt = 0; ; attempt++) {
      const t0 = Date.now();
      try {
        if (table === 'qoe_metrics') await checkRollups(todo, attempt);
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
    flushQueued = false;
    if (buffered === 0 && pending.size === 0) return;
    lastFlushAt = Date.now();
    const waitingSince = firstWaitingAt;
    firstWaitingAt = undefined;
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
      firstWaitingAt = Math.min(firstWaitingAt ?? Infinity, waitingSince ?? lastFlushAt);
      notBefore = Date.now() + deps.flushMs;
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
    // A failed flush must not stop the later ones: each starts after the previous one settles. What
    // arrived during it (or what it put back after a failure) is scheduled when it settles.
    flushing = flushing.catch(() => undefined).then(doFlush).finally(schedule);
    return flushing;
  }

  /** Arms the timer for nextFlushAt; at most one flush waits behind a running one (an outage does not pile them up). */
  function schedule(): void {
    if (closing || flushQueued || (buffered === 0 && pending.size === 0)) return;
    const at = Math.max(notBefore, nextFlushAt({ lastFlushAt, firstWaitingAt: firstWaitingAt ?? Date.now(), lastArrivalAt, flushMs: deps.flushMs }));
    if (timer !== undefined && at === timerAt) return;
    if (timer !== undefined) clearTimeout(timer);
    timerAt = at;
    timer = setTimeout(() => {
      timer = undefined;
      flushQueued = true;
      flush().catch((err: unknown) => log.error({ err }, 'sink flush failed'));
    }, Math.max(0, at - Date.now()));
    timer.unref();
  }

  async function onBatch(batch: ConsumerBatch): Promise<void> {
    for (const r of batch.records) {
      if (batch.topic === TOPICS.metrics) {
        const keepMetrics = keep('qoe_metrics', r.partition, r.offset);
        const keepErrors = keep('qoe_errors', r.partition, r.offset);
        // A record both tables already hold (read again after a restart) is not read at all.
        if (!keepMetrics && !keepErrors) continue;
        // Straight from the record's bytes to the rows' lines; a record of another schema version is decoded.
        const { metrics, errors } = metricsJsonRows(r.value, r.partition, r.offset) ?? metricsRows(decodeMetricsRecord(r.value), r.partition, r.offset);
        if (keepMetrics) push('qoe_metrics', metrics);
        if (keepErrors) for (const e of errors) push('qoe_errors', e);
      } else if (keep('qoe_dead_letters', r.partition, r.offset)) {
        push('qoe_dead_letters', deadLetterRow(r));
      }
    }
    const last = batch.records[batch.records.length - 1];
    if (last) {
      lastArrivalAt = Date.now();
      firstWaitingAt ??= lastArrivalAt;
    }
    if (last) pending.set(`${batch.topic}:${batch.partition}`, { topic: batch.topic, partition: batch.partition, offset: batch.nextOffset ?? last.offset + 1 });
    if (buffered >= deps.batchRows) await flush();
    else schedule();
  }

  async function onAssign(partitions: TopicPartition[]): Promise<void> {
    for (const topic of Object.keys(TABLE_OF)) await loadStored(topic, partitions.filter((p) => p.topic === topic).map((p) => p.partition));
    for (const p of partitions) if (p.topic === TOPICS.metrics) rollupCheck.add(p.partition);
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
    },
    async stop() {
      closing = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      await flush();
      stopped = true;
      await consumer.close();
    },
    flush,
  };
}
