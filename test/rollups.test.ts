import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createChdbStore } from '../lib/store/chdb.js';
import { createClickHouseStore } from '../lib/store/clickhouse.js';
import type { Row, Store } from '../lib/store/types.js';
import { MAX_KEY } from '../lib/histogram.js';
import { loadMigrations, migrate } from '../sql/migrate.js';
import { rolledUpOffsets, rollupInsertSql, ROLLUPS, type Rollup } from '../sql/rollups.js';
import { createRng, chance, intBetween, pick, type Rng } from '../sim/prng.js';
import type { Dimension } from '../schemas/events.js';
import {
  buildMetricsSql, finalizeRow, METRICS_SOURCES, parseMetricsQuery, pickMetricsSource, type MetricsQuery, type MetricsSource,
} from '../query/metrics.js';
import { clickhouseServerSkipReason, randomDatabaseName, startClickHouseServer, type ClickHouseServer } from './helpers/clickhouse-server.js';

/**
 * The roll-ups (sql/003_rollups.sql) against the raw table, on both engines: random seeded rows
 * (corrections with negative values, sparse histograms, windows crossing midnight, some rows
 * inserted before the roll-ups existed, i.e. backfilled), then random queries the API would send to
 * a roll-up, run once on the roll-up and once pinned to the raw table. The summed rows and the
 * finalised points (ratios, percentiles from merged histograms) must be identical.
 */

const WINDOW_MS = 10_000;
// 22:00 UTC: three hours of data cross midnight (two day partitions, two sink insert batches).
const START_MS = Date.UTC(2026, 0, 31, 22, 0, 0);
const HOURS = 3;
const RAW = METRICS_SOURCES.find((s) => s.table === 'qoe_metrics') as MetricsSource;

const DIM_VALUES: Record<string, readonly string[]> = {
  cdn: ['cdn-a', 'cdn-b', 'cdn-c'],
  country: ['US', 'GB', 'DE', 'BR'],
  device_type: ['desktop', 'mobile', 'tv'],
  stream_type: ['vod', 'live'],
  player_name: ['hls.js', 'dash.js'],
};

const SUM_COLUMNS = [
  'attempts', 'plays', 'vsf', 'ebvs', 'vpf', 'ended', 'vst_count', 'vst_sum_ms', 'starting_ms', 'playing_ms', 'paused_ms',
  'rebuffer_ms', 'rebuffer_count', 'seek_ms', 'seek_count', 'active_ms', 'bits_played', 'dropped_frames', 'requests',
  'request_errors', 'ttlb_sum_ms',
] as const;

function histogram(rng: Rng, maxKey: number, correction: boolean): { keys: number[]; counts: number[] } {
  const keys = [...new Set(Array.from({ length: intBetween(rng, 0, 5) }, () => intBetween(rng, 0, maxKey)))].sort((a, b) => a - b);
  return { keys, counts: keys.map(() => (correction ? -1 : 1) * intBetween(rng, 1, 50)) };
}

function randomRow(rng: Rng, offset: number): Row {
  const window = intBetween(rng, 0, (HOURS * 3_600_000) / WINDOW_MS - 1);
  const correction = chance(rng, 0.1);
  const sign = correction ? -1 : 1;
  const row: Row = { window_start: new Date(START_MS + window * WINDOW_MS), window_ms: WINDOW_MS, src_partition: offset % 4, src_offset: offset };
  for (const [col, values] of Object.entries(DIM_VALUES)) row[col] = pick(rng, values);
  for (const c of SUM_COLUMNS) row[c] = sign * intBetween(rng, 0, 20_000);
  const vst = histogram(rng, MAX_KEY, correction);
  const ttfb = histogram(rng, MAX_KEY, correction);
  const bitrate = histogram(rng, 14, correction);
  Object.assign(row, {
    vst_hist_keys: vst.keys, vst_hist_counts: vst.counts,
    ttfb_hist_keys: ttfb.keys, ttfb_hist_counts: ttfb.counts,
    bitrate_keys: bitrate.keys, bitrate_playing_ms: bitrate.counts.map((c) => c * 1000),
  });
  return row;
}

function randomRows(seed: number, n: number, firstOffset: number): Row[] {
  const rng = createRng(seed, 'rows', firstOffset);
  return Array.from({ length: n }, (_, i) => randomRow(rng, firstOffset + i));
}

const GROUPABLE: readonly Dimension[] = ['cdn', 'country', 'deviceType', 'streamType', 'playerName'];

/** A query aligned to `granularityMs`, as the API would parse it. */
function randomQuery(rng: Rng, granularityMs: number): MetricsQuery {
  const spans = HOURS * 3_600_000 / granularityMs;
  const fromK = intBetween(rng, 0, spans - 1);
  const toK = intBetween(rng, fromK + 1, spans + 1);
  const fromMs = START_MS + fromK * granularityMs;
  const toMs = START_MS + toK * granularityMs;
  const steps = [granularityMs, 2 * granularityMs, 5 * granularityMs, toMs - fromMs];
  const groupBy = GROUPABLE.filter(() => chance(rng, 0.35));
  const raw: Record<string, string> = { from: String(fromMs), to: String(toMs), step: `${pick(rng, steps)}ms` };
  if (groupBy.length > 0) raw.group_by = groupBy.join(',');
  if (chance(rng, 0.4)) raw.filter = `country:${pick(rng, DIM_VALUES.country ?? [])}|${pick(rng, DIM_VALUES.country ?? [])}`;
  return parseMetricsQuery(raw, START_MS + 86_400_000, WINDOW_MS);
}

async function run(store: Store, q: MetricsQuery, source: MetricsSource): Promise<Array<Record<string, unknown>>> {
  const { sql, params } = buildMetricsSql(q, source);
  return store.query(sql, params);
}

interface Engine {
  store: Store;
  database: string;
  cleanup: () => Promise<void>;
}

function rollupSuite(name: string, open: () => Promise<Engine>): void {
  describe(`roll-ups equal the raw table: ${name}`, () => {
    let engine: Engine | undefined;
    const seed = 20_260_131;
    const rowsBefore = randomRows(seed, 1500, 0);
    const rowsAfter = [randomRows(seed, 2000, 1500), randomRows(seed, 2500, 3500)];

    beforeAll(async () => {
      engine = await open();
      const { store, database } = engine;
      const all = await loadMigrations();
      // Rows stored before migration 003 reach the roll-ups through its backfill, later ones through the views.
      await migrate(store, { database, migrations: all.filter((m) => m.version < 3) });
      await store.insert('qoe_metrics', rowsBefore);
      expect((await migrate(store, { database, migrations: all.filter((m) => m.version <= 3) })).applied).toEqual([3]);
      await store.insert('qoe_metrics', rowsAfter[0] ?? []);
      // Re-running the roll-up statements (a migration re-run after a failure) adds nothing.
      for (const stmt of all.find((m) => m.version === 3)?.statements ?? []) await store.exec(stmt);
      // 004 gives the roll-ups source offsets (backfilled for the rows above); later rows come through its views.
      expect((await migrate(store, { database, migrations: all })).applied).toContain(4);
      await store.insert('qoe_metrics', rowsAfter[1] ?? []);
    });
    afterAll(async () => {
      await engine?.cleanup();
    });

    it('holds every raw row once: totals over all columns', async () => {
      const store = engine?.store as Store;
      const total = (t: string, merge: boolean): Promise<Row[]> =>
        store.query(`SELECT ${SUM_COLUMNS.map((c) => (merge ? `sumMerge(${c}) AS ${c}` : `sum(${c}) AS ${c}`)).join(', ')} FROM ${t}`);
      const raw = await total('qoe_metrics', false);
      expect(Number(raw[0]?.attempts)).not.toBe(0);
      expect(await total('qoe_metrics_1m', true)).toEqual(raw);
      expect(await total('qoe_metrics_1h', true)).toEqual(raw);
      const [n] = await store.query<{ n: number }>('SELECT count() AS n FROM qoe_metrics');
      expect(Number(n?.n)).toBe(rowsBefore.length + rowsAfter.reduce((k, r) => k + r.length, 0));
    });

    it.each(ROLLUPS.map((r) => [r.table, r] as const))('%s holds, per source partition, the highest offset of its raw rows', async (_t, rollup) => {
      const store = engine?.store as Store;
      const raw = await store.query<{ p: number; m: number }>('SELECT src_partition AS p, max(src_offset) AS m FROM qoe_metrics GROUP BY p ORDER BY p');
      const [r] = await store.query<{ m: unknown }>(`SELECT maxForEachMerge(src_offsets) AS m FROM ${rollup.table}`);
      expect(rolledUpOffsets(r?.m)).toEqual(raw.map((x) => Number(x.m)));
    });

    it.each(ROLLUPS.map((r) => [r.table, r] as const))('the sink\'s repair statement builds the rows the view of %s built', async (table, rollup) => {
      const store = engine?.store as Store;
      const copy = `${table}_copy`;
      await store.exec(`CREATE TABLE ${copy} AS ${table}`);
      await store.exec(rollupInsertSql({ ...rollup, table: copy as Rollup['table'] }, '1'));
      const dims = 'window_start, cdn, country, asn, content_id, stream_type, player_name, player_version, device_type, os, browser, custom1, custom2, custom3';
      const read = (t: string): Promise<Row[]> => store.query(
        `SELECT ${dims}, ${SUM_COLUMNS.map((c) => `sumMerge(${c}) AS ${c}`).join(', ')}, sumMapMerge(vst_hist) AS vst, sumMapMerge(bitrate_ms) AS br, ` +
          `sumMapMerge(ttfb_hist) AS ttfb, maxForEachMerge(src_offsets) AS offsets FROM ${t} GROUP BY ${dims} ORDER BY ${dims}`);
      const [built, viewed] = [await read(copy), await read(table)];
      expect(built.length).toBeGreaterThan(100);
      expect(built).toEqual(viewed);
    });

    it.each([
      ['qoe_metrics_1h', 3_600_000],
      ['qoe_metrics_1m', 60_000],
    ] as const)('random aligned queries on %s: same rows, same points (percentiles included)', async (table, granularityMs) => {
      const store = engine?.store as Store;
      const rng = createRng(seed, 'queries', table);
      let nonEmpty = 0;
      for (let i = 0; i < 25; i++) {
        const q = randomQuery(rng, granularityMs);
        const picked = pickMetricsSource(q);
        if (q.stepMs % 3_600_000 === 0 && q.fromMs % 3_600_000 === 0 && q.toMs % 3_600_000 === 0) expect(picked.table).toBe('qoe_metrics_1h');
        else expect(picked.table).toBe(table);
        const [fromRollup, fromRaw] = [await run(store, q, picked), await run(store, q, RAW)];
        expect(fromRollup, JSON.stringify(q)).toEqual(fromRaw);
        expect(fromRollup.map((r) => finalizeRow(r, q))).toEqual(fromRaw.map((r) => finalizeRow(r, q)));
        if (fromRaw.length > 0) nonEmpty += 1;
      }
      expect(nonEmpty).toBeGreaterThan(15);
    });

    it('a query not aligned to a minute reads the raw table', () => {
      const q = parseMetricsQuery({ from: String(START_MS + WINDOW_MS), to: String(START_MS + 3_600_000), step: '1m' }, START_MS + 86_400_000, WINDOW_MS);
      expect(pickMetricsSource(q).table).toBe('qoe_metrics');
    });
  });
}

rollupSuite('chDB', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'qoe-rollups-'));
  const store = await createChdbStore({ dataDir: dir, database: 'rollups' });
  return {
    store,
    database: 'rollups',
    async cleanup() {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

const skip = clickhouseServerSkipReason();
if (skip !== undefined) {
  describe.skip(`roll-ups equal the raw table: clickhouse-server 18.16 (${skip})`, () => undefined);
} else {
  rollupSuite('clickhouse-server 18.16', async () => {
    const server: ClickHouseServer = await startClickHouseServer();
    const database = randomDatabaseName('rollups');
    const store = await createClickHouseStore({ url: server.url, database });
    return {
      store,
      database,
      async cleanup() {
        await store.close();
        await server.stop();
      },
    };
  });
}
