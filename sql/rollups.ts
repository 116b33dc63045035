import { DIMENSIONS, snakeCase } from '../schemas/events.js';

/**
 * The roll-ups of qoe_metrics (sql/003_rollups.sql, sql/004_rollup_offsets.sql) as the code knows
 * them: what the query API reads, and what the sink needs to repair a roll-up that missed rows
 * (processors/sink.ts). The statements here build the same rows as the materialized views.
 */

export interface Rollup {
  table: 'qoe_metrics_1m' | 'qoe_metrics_1h';
  /** Width of a roll-up row's window_start bucket. */
  bucketSeconds: number;
  /** ClickHouse function that maps a raw window_start to its bucket. */
  bucketFn: 'toStartOfMinute' | 'toStartOfHour';
}

export const ROLLUPS: readonly Rollup[] = [
  { table: 'qoe_metrics_1m', bucketSeconds: 60, bucketFn: 'toStartOfMinute' },
  { table: 'qoe_metrics_1h', bucketSeconds: 3600, bucketFn: 'toStartOfHour' },
];

/** Every summed column of qoe_metrics, kept as sumState in the roll-ups. */
export const ROLLUP_SUMS = [
  'attempts', 'plays', 'vsf', 'ebvs', 'vpf', 'ended', 'vst_count', 'vst_sum_ms', 'starting_ms', 'playing_ms', 'paused_ms',
  'rebuffer_ms', 'rebuffer_count', 'seek_ms', 'seek_count', 'active_ms', 'bits_played', 'dropped_frames', 'requests',
  'request_errors', 'ttlb_sum_ms',
] as const;

/** The sparse histograms: raw key/value arrays, kept as sumMapState under `as`. */
export const HISTOGRAMS = [
  { as: 'vst_hist', keys: 'vst_hist_keys', values: 'vst_hist_counts' },
  { as: 'bitrate_ms', keys: 'bitrate_keys', values: 'bitrate_playing_ms' },
  { as: 'ttfb_hist', keys: 'ttfb_hist_keys', values: 'ttfb_hist_counts' },
] as const;

/**
 * Element p of a roll-up row's src_offsets is the highest src_offset + 1 of its raw rows from source
 * partition p (0: none). Built without a lambda: 18.16 rejects one that uses two columns.
 */
const OFFSETS_STATE = 'maxForEachState(arrayPushBack(arrayResize(emptyArrayUInt64(), src_partition), src_offset + 1))';

/**
 * ClickHouse 18.16 sometimes stores corrupt states from an `INSERT … SELECT …State(…) GROUP BY` that
 * aggregates on several threads: one column of one row off (0, another row's value, or garbage such
 * as 30064771073), about 1 insert in 60 of test/rollups.test.ts's rows on two cores; none in 400 with
 * one thread. Views are not affected (they aggregate each inserted block on the inserting thread).
 * Statements that write roll-up states from a SELECT therefore aggregate on one thread; they read a
 * bounded range (a repair) or run once (a migration's backfill).
 */
export const STATE_INSERT_SETTINGS = 'SETTINGS max_threads = 1';

/**
 * `INSERT INTO <roll-up> SELECT …` of the qoe_metrics rows matching `where` (SQL over raw columns,
 * may hold {name:Type} placeholders): the states the view would have written for them.
 */
export function rollupInsertSql(rollup: Rollup, where: string): string {
  const dims = DIMENSIONS.map(snakeCase);
  const select = [
    `${rollup.bucketFn}(window_start) AS bucket`,
    ...dims,
    ...ROLLUP_SUMS.map((c) => `sumState(${c})`),
    ...HISTOGRAMS.map((h) => `sumMapState(${h.keys}, ${h.values})`),
    OFFSETS_STATE,
  ];
  const columns = ['window_start', ...dims, ...ROLLUP_SUMS, ...HISTOGRAMS.map((h) => h.as), 'src_offsets'];
  return `INSERT INTO ${rollup.table} (${columns.join(', ')}) SELECT ${select.join(', ')} FROM qoe_metrics WHERE ${where} GROUP BY bucket, ${dims.join(', ')} ${STATE_INSERT_SETTINGS}`;
}

/** Per source partition, the highest src_offset a roll-up holds (-1: none), from maxForEachMerge. */
export function rolledUpOffsets(merged: unknown): number[] {
  const arr = (typeof merged === 'string' ? JSON.parse(merged) : merged) as Array<number | string> | null | undefined;
  return (arr ?? []).map((v) => Number(v) - 1);
}
