import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { isQoeError } from '../lib/errors.js';
import { createChdbStore } from '../lib/store/chdb.js';
import { createClickHouseStore } from '../lib/store/clickhouse.js';
import { createStore } from '../lib/store/index.js';
import { silentLogger } from '../lib/logger.js';
import type { Row, Store } from '../lib/store/types.js';
import { loadMigrations, migrate, type Migration } from '../sql/migrate.js';
import { rolledUpOffsets } from '../sql/rollups.js';
import { HOSTILE_STRINGS } from './helpers/clickhouse-fixtures.js';
import { addVst, emptyAcc } from '../processors/accumulator.js';
import { metricsJsonRows } from '../processors/metrics-json.js';
import { createMetricsRecordWriter } from '../processors/metrics-record.js';
import { bucketKey } from '../lib/histogram.js';
import { emptyDims } from '../schemas/events.js';

const writeMetricsRecord = createMetricsRecordWriter();
import { clickhouseServerSkipReason, randomDatabaseName, useClickHouseServer } from './helpers/clickhouse-server.js';

/**
 * One contract, two engines: chDB (26.x, embedded) and Debian's clickhouse-server 18.16.
 * Each test gets its own database (server) or its own data directory (chDB).
 */

interface Opened {
  store: Store;
  database: string;
}

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function metricsRow(over: Row): Row {
  return {
    window_start: new Date(Date.UTC(2024, 2, 1, 12, 0, 0)),
    window_ms: 10_000,
    cdn: 'cdn-a',
    country: 'DE',
    attempts: 0,
    plays: 0,
    vst_count: 0,
    vst_sum_ms: 0,
    vst_hist_keys: [],
    vst_hist_counts: [],
    rebuffer_ms: 0,
    src_partition: 0,
    src_offset: 0,
    ...over,
  };
}

function contract(name: string, open: () => Promise<Opened>, expectedVersion: RegExp): void {
  describe(`store contract: ${name}`, () => {
    it(`reports its version (${expectedVersion.source})`, async () => {
      const { store } = await open();
      expect(await store.version()).toMatch(expectedVersion);
    });

    it('applies migrations once, in order, and skips them the second time', async () => {
      const { store, database } = await open();
      const first = await migrate(store, { database });
      const all = (await loadMigrations()).map((m) => m.version);
      expect(first).toEqual({ applied: all, skipped: [] });
      expect(await migrate(store, { database })).toEqual({ applied: [], skipped: all });

      // A later migration appears: only it runs; the applied ones are skipped.
      const dir = await tempDir('qoe-migrations-');
      for (const m of await loadMigrations()) await writeFile(join(dir, `${String(m.version).padStart(3, '0')}_${m.name}.sql`), m.statements.join(";\n") + ";\n");
      await writeFile(join(dir, '902_extra.sql'), '-- a comment; not a statement end\nCREATE TABLE IF NOT EXISTS extra_a (x UInt8)\nENGINE = Memory;\nCREATE TABLE IF NOT EXISTS extra_b (x UInt8) ENGINE = Memory;\n');
      expect(await migrate(store, { database, dir })).toEqual({ applied: [902], skipped: all });
      const rows = await store.query<{ version: number; name: string }>('SELECT version, name FROM schema_migrations ORDER BY version');
      expect(rows.at(-1)).toEqual({ version: 902, name: 'extra' });
      expect(rows.map((r) => r.version)).toEqual([...all, 902]);
      const tables = await store.query<{ name: string }>(
        "SELECT name FROM system.tables WHERE database = {db:String} AND name LIKE 'extra%' ORDER BY name",
        { db: database },
      );
      expect(tables.map((t) => t.name)).toEqual(['extra_a', 'extra_b']);
    });

    it('upgrades a database with data through 004, and every migration can run again from its first statement', async () => {
      const { store, database } = await open();
      // A half-applied migration is re-run from its first statement: each runs a second time here.
      const applyTwice = async (ms: Migration[]): Promise<void> => {
        for (const m of ms) {
          expect((await migrate(store, { database, migrations: [m] })).applied).toEqual([m.version]);
          expect((await migrate(store, { database, migrations: [{ ...m, version: 900 + m.version }] })).applied).toEqual([900 + m.version]);
        }
      };
      const all = await loadMigrations();
      await applyTwice(all.filter((m) => m.version <= 3));
      // Rows stored before 004: the roll-ups hold them (003's views), without source offsets yet.
      const rows = [0, 1, 2, 3, 4, 5].map((i) => metricsRow({ window_start: new Date(Date.UTC(2024, 2, 1, 12, i * 20, 0)), attempts: i + 1, src_partition: i % 3, src_offset: 10 + i }));
      await store.insert('qoe_metrics', rows);
      await applyTwice(all.filter((m) => m.version > 3));
      await store.insert('qoe_metrics', [metricsRow({ attempts: 100, src_partition: 1, src_offset: 20 })]);

      // Per partition, the highest offset each roll-up holds is the raw table's (the sink sees no gap),
      // and the sums are the raw sums, once.
      const raw = await store.query<{ p: number; m: number }>('SELECT src_partition AS p, max(src_offset) AS m FROM qoe_metrics GROUP BY p ORDER BY p');
      expect(raw.map((r) => Number(r.m))).toEqual([13, 20, 15]);
      for (const table of ['qoe_metrics_1m', 'qoe_metrics_1h']) {
        const [r] = await store.query<{ m: unknown; a: number }>(`SELECT maxForEachMerge(src_offsets) AS m, sumMerge(attempts) AS a FROM ${table}`);
        expect({ table, offsets: rolledUpOffsets(r?.m), attempts: Number(r?.a) }).toEqual({ table, offsets: [13, 20, 15], attempts: 121 });
      }
    });

    it('sums metrics and merges histograms, returning numbers', async () => {
      const { store, database } = await open();
      await migrate(store, { database });
      await store.insert('qoe_metrics', [
        metricsRow({ attempts: 3, plays: 2, vst_count: 2, vst_sum_ms: 2500, vst_hist_keys: [10, 12], vst_hist_counts: [1, 1], rebuffer_ms: -40 }),
        metricsRow({ attempts: 5, plays: 5, vst_count: 5, vst_sum_ms: 4_000_000_000_000, vst_hist_keys: [12, 15], vst_hist_counts: [3, 2], src_offset: 1 }),
        metricsRow({ cdn: 'cdn-b', attempts: 1, vst_hist_keys: [1], vst_hist_counts: [7], src_offset: 2 }),
      ]);
      const rows = await store.query(
        `SELECT cdn, sum(attempts) AS attempts, sum(plays) AS plays, sum(vst_sum_ms) AS vst_sum_ms, sum(rebuffer_ms) AS rebuffer_ms,
                sumMap(vst_hist_keys, vst_hist_counts) AS hist
         FROM qoe_metrics WHERE window_start >= {from:DateTime} GROUP BY cdn ORDER BY cdn`,
        { from: Date.UTC(2024, 2, 1) },
      );
      expect(rows).toEqual([
        { cdn: 'cdn-a', attempts: 8, plays: 7, vst_sum_ms: 4_000_000_002_500, rebuffer_ms: -40, hist: [[10, 12, 15], [1, 4, 2]] },
        { cdn: 'cdn-b', attempts: 1, plays: 0, vst_sum_ms: 0, rebuffer_ms: 0, hist: [[1], [7]] },
      ]);
    });

    it('round-trips DateTime in UTC', async () => {
      const { store, database } = await open();
      await migrate(store, { database });
      const t = Date.UTC(2024, 0, 31, 23, 59, 50);
      await store.insert('qoe_metrics', [
        metricsRow({ window_start: new Date(t), src_offset: 1 }),
        metricsRow({ window_start: t / 1000 + 10, src_offset: 2 }),
        metricsRow({ window_start: '2024-02-01 00:00:10', src_offset: 3 }),
      ]);
      const rows = await store.query(
        `SELECT src_offset, toUnixTimestamp(window_start) AS s, toString(window_start) AS text, toYYYYMMDD(window_start) AS day
         FROM qoe_metrics WHERE window_start >= {t:DateTime} ORDER BY src_offset`,
        { t },
      );
      expect(rows).toEqual([
        { src_offset: 1, s: t / 1000, text: '2024-01-31 23:59:50', day: 20240131 },
        { src_offset: 2, s: t / 1000 + 10, text: '2024-02-01 00:00:00', day: 20240201 },
        { src_offset: 3, s: t / 1000 + 20, text: '2024-02-01 00:00:10', day: 20240201 },
      ]);
      const [plain] = await store.query('SELECT window_start FROM qoe_metrics WHERE src_offset = 1');
      expect(plain).toEqual({ window_start: '2024-01-31 23:59:50' });
    });

    it('binds hostile strings as data, never as SQL', async () => {
      const { store, database } = await open();
      await migrate(store, { database });
      await store.insert('qoe_metrics', HOSTILE_STRINGS.map((s, i) => metricsRow({ cdn: s, attempts: i + 1, src_offset: i })));
      for (const [i, s] of HOSTILE_STRINGS.entries()) {
        const echoed = await store.query<{ s: string }>('SELECT {s:String} AS s', { s });
        expect(echoed).toEqual([{ s }]);
        const rows = await store.query('SELECT count() AS n, sum(attempts) AS a FROM qoe_metrics WHERE cdn = {cdn:String}', { cdn: s });
        expect(rows, JSON.stringify(s)).toEqual([{ n: 1, a: i + 1 }]);
      }
      const [all] = await store.query('SELECT count() AS n FROM qoe_metrics WHERE has({cdns:Array(String)}, cdn)', { cdns: [...HOSTILE_STRINGS] });
      expect(all).toEqual({ n: HOSTILE_STRINGS.length });
    });

    it('inserts rows given as their JSONEachRow lines (the sink\'s, from the records\' bytes) beside plain rows', async () => {
      const { store, database } = await open();
      await migrate(store, { database });
      const acc = emptyAcc();
      Object.assign(acc, { attempts: 5, plays: -2, bitsPlayed: 2 ** 51 + 1, errors: new Map([['1:E"1\\', 3], ['0:E2', 4]]) });
      addVst(acc, 1200);
      const records = HOSTILE_STRINGS.map((cdn, i) => {
        const dims = { ...emptyDims(), cdn, country: 'DE', custom3: cdn };
        return metricsJsonRows(writeMetricsRecord({ windowStartMs: Date.UTC(2024, 2, 1, 12, 0, 0), dims, acc }, 10_000, 0), 2, 10 + i);
      });
      await store.insert('qoe_metrics', [...records.map((r) => r!.metrics), metricsRow({ cdn: 'plain', attempts: 1, src_offset: 1 })]);
      await store.insert('qoe_errors', records.flatMap((r) => r!.errors));
      const rows = await store.query<Row>(
        'SELECT cdn, custom3, attempts, plays, toString(bits_played) AS bits, vst_hist_keys AS k, vst_hist_counts AS c, src_partition AS p, src_offset AS o, toUnixTimestamp(window_start) AS t FROM qoe_metrics ORDER BY o');
      expect(rows).toEqual([
        { cdn: 'plain', custom3: '', attempts: 1, plays: 0, bits: '0', k: [], c: [], p: 0, o: 1, t: Date.UTC(2024, 2, 1, 12, 0, 0) / 1000 },
        ...HOSTILE_STRINGS.map((cdn, i) => ({ cdn, custom3: cdn, attempts: 5, plays: -2, bits: String(2 ** 51 + 1), k: [bucketKey(1200)], c: [1], p: 2, o: 10 + i, t: Date.UTC(2024, 2, 1, 12, 0, 0) / 1000 })),
      ]);
      const errors = await store.query<Row>('SELECT cdn, error_code AS e, fatal, count AS n, src_offset AS o FROM qoe_errors ORDER BY o, e');
      expect(errors).toEqual(HOSTILE_STRINGS.flatMap((cdn, i) => [{ cdn, e: 'E"1\\', fatal: 1, n: 3, o: 10 + i }, { cdn, e: 'E2', fatal: 0, n: 4, o: 10 + i }]));
    });

    it('serves concurrent inserts and queries', async () => {
      const { store, database } = await open();
      await migrate(store, { database });
      const n = 20;
      await Promise.all(
        Array.from({ length: n }, async (_, i) => {
          await store.insert('qoe_metrics', [metricsRow({ attempts: i, src_offset: i })]);
          await store.query('SELECT count() AS n FROM qoe_metrics WHERE src_offset <= {i:UInt64}', { i });
        }),
      );
      expect(await store.query('SELECT count() AS n, sum(attempts) AS a FROM qoe_metrics')).toEqual([{ n, a: (n * (n - 1)) / 2 }]);
    });

    it('reports SQL errors as QOE_ERR_STORE_QUERY, not retriable', async () => {
      const { store } = await open();
      const calls = [
        () => store.query('SELEC 1'),
        () => store.query('SELECT * FROM no_such_table'),
        () => store.exec('CREATE TABLE broken (x NoSuchType) ENGINE = Memory'),
        () => store.insert('no_such_table', [{ x: 1 }]),
      ];
      for (const call of calls) {
        const err: unknown = await call().then(() => undefined, (e: unknown) => e);
        expect(isQoeError(err, 'QOE_ERR_STORE_QUERY'), String(err)).toBe(true);
        expect(isQoeError(err) && err.retriable).toBe(false);
        expect(err instanceof Error && err.cause).toBeTruthy();
      }
    });

    it('refuses calls after close with QOE_ERR_STORE_UNAVAILABLE', async () => {
      const { store } = await open();
      await store.close();
      const err: unknown = await store.query('SELECT 1').catch((e: unknown) => e);
      expect(isQoeError(err, 'QOE_ERR_STORE_UNAVAILABLE')).toBe(true);
    });
  });
}

// chDB: one data directory per process; each test opens and closes its own.
contract(
  'chDB',
  async () => {
    const dataDir = await tempDir('qoe-chdb-');
    const database = randomDatabaseName();
    const store = await createChdbStore({ dataDir, database });
    onTestFinished(() => store.close());
    return { store, database };
  },
  /^26\.\d+/,
);

describe('chDB store persistence', () => {
  it('keeps data across close and reopen', async () => {
    const dataDir = await tempDir('qoe-chdb-');
    const database = randomDatabaseName();
    const first = await createChdbStore({ dataDir, database });
    await migrate(first, { database });
    await first.insert('qoe_metrics', [metricsRow({ attempts: 42 })]);
    await first.close();
    const second = await createChdbStore({ dataDir, database });
    onTestFinished(() => second.close());
    expect(await migrate(second, { database })).toEqual({ applied: [], skipped: (await loadMigrations()).map((m) => m.version) });
    expect(await second.query('SELECT sum(attempts) AS a FROM qoe_metrics')).toEqual([{ a: 42 }]);
  });
});

describe('createStore', () => {
  it('opens chDB when no URL is configured and applies the migrations', async () => {
    const dataDir = await tempDir('qoe-chdb-');
    const database = randomDatabaseName();
    const store = await createStore({ kind: 'chdb', url: '', database, dataDir }, silentLogger());
    onTestFinished(() => store.close());
    expect(store.kind).toBe('chdb');
    expect(await store.query('SELECT count() AS n FROM qoe_metrics')).toEqual([{ n: 0 }]);
  });
});

const skipReason = clickhouseServerSkipReason();
if (skipReason !== undefined) console.warn(`skipping clickhouse-server store tests: ${skipReason}`);

describe.skipIf(skipReason !== undefined)('clickhouse-server 18.16', () => {
  const server = useClickHouseServer();

  async function openServerStore(): Promise<Opened> {
    const database = randomDatabaseName();
    const store = await createClickHouseStore({ url: server().url, database });
    onTestFinished(async () => {
      const admin = await createClickHouseStore({ url: server().url, database: 'default' });
      await admin.exec(`DROP DATABASE IF EXISTS ${database}`);
      await admin.close();
      await store.close();
    });
    return { store, database };
  }

  contract('clickhouse-server', openServerStore, /^18\.16\./);

  it('createStore opens the server when a URL is configured and applies the migrations', async () => {
    const database = randomDatabaseName();
    const store = await createStore({ kind: 'clickhouse', url: server().url, database, dataDir: '' }, silentLogger());
    onTestFinished(async () => {
      await store.exec(`DROP DATABASE IF EXISTS ${database}`);
      await store.close();
    });
    expect(store.kind).toBe('clickhouse');
    expect(await store.query('SELECT version FROM schema_migrations ORDER BY version')).toEqual((await loadMigrations()).map((m) => ({ version: m.version })));
  });

  it('processes starting together migrate one at a time: each version once, the views as the last migration left them', async () => {
    const database = randomDatabaseName();
    // Six at once: the waiters read the lock table while its holder writes and drops it (a race seen in CI).
    const stores = await Promise.all([0, 1, 2, 3, 4, 5].map(() => createClickHouseStore({ url: server().url, database })));
    onTestFinished(async () => {
      await stores[0]?.exec(`DROP DATABASE IF EXISTS ${database}`);
      for (const s of stores) await s.close();
    });
    const all = (await loadMigrations()).map((m) => m.version);
    const results = await Promise.all(stores.map((store) => migrate(store, { database })));
    expect(results.flatMap((r) => r.applied).sort()).toEqual(all);
    const store = stores[0] as Store;
    const versions = await store.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
    expect(versions.map((v) => Number(v.version))).toEqual(all);
    expect(await store.query("SELECT name FROM system.tables WHERE database = currentDatabase() AND name = 'schema_migrations_lock'")).toEqual([]);
    // The views are 004's: a row reaches both roll-ups with its source offset.
    await store.insert('qoe_metrics', [metricsRow({ attempts: 7, src_partition: 2, src_offset: 41 })]);
    for (const table of ['qoe_metrics_1m', 'qoe_metrics_1h']) {
      const [r] = await store.query<{ m: unknown; a: number }>(`SELECT maxForEachMerge(src_offsets) AS m, sumMerge(attempts) AS a FROM ${table}`);
      expect({ table, offsets: rolledUpOffsets(r?.m), attempts: Number(r?.a) }).toEqual({ table, offsets: [-1, -1, 41], attempts: 7 });
    }
  });

  it('takes over a migration lock left by a process that died', async () => {
    const database = randomDatabaseName();
    const store = await createClickHouseStore({ url: server().url, database });
    onTestFinished(async () => {
      await store.exec(`DROP DATABASE IF EXISTS ${database}`);
      await store.close();
    });
    await store.exec(`CREATE DATABASE IF NOT EXISTS ${database}`);
    await store.exec('CREATE TABLE schema_migrations_lock (owner String, locked_at DateTime) ENGINE = Log');
    await store.insert('schema_migrations_lock', [{ owner: 'a process that died', locked_at: new Date(Date.now() - 3_600_000) }]);
    const result = await migrate(store, { database, lockStaleMs: 60_000 });
    expect(result.applied).toEqual((await loadMigrations()).map((m) => m.version));
    // A live holder is waited for, up to lockWaitMs.
    await store.exec('CREATE TABLE schema_migrations_lock (owner String, locked_at DateTime) ENGINE = Log');
    await store.insert('schema_migrations_lock', [{ owner: 'a live process', locked_at: new Date() }]);
    const err: unknown = await migrate(store, { database, migrations: [{ version: 950, name: 'later', statements: ['SELECT 1'] }], lockWaitMs: 500 }).catch((e: unknown) => e);
    expect(isQoeError(err, 'QOE_ERR_STORE_UNAVAILABLE')).toBe(true);
    expect(String((err as Error).message)).toContain('a live process');
  });

  it('a holder whose migration outlasts lockStaleMs keeps the lock (it writes heartbeats)', { timeout: 30_000 }, async () => {
    const database = randomDatabaseName();
    const [a, b] = await Promise.all([0, 1].map(() => createClickHouseStore({ url: server().url, database })));
    onTestFinished(async () => {
      await a?.exec(`DROP DATABASE IF EXISTS ${database}`);
      await a?.close();
      await b?.close();
    });
    // 9 s of work against a 3 s stale time (heartbeats every 0.75 s): margin for a loaded machine.
    const slow = [{ version: 960, name: 'slow', statements: ['SELECT sleep(3)', 'SELECT sleep(3)', 'SELECT sleep(3)'] }];
    const first = migrate(a as Store, { database, migrations: slow, lockStaleMs: 3000 });
    await new Promise((r) => setTimeout(r, 300));
    const second = await migrate(b as Store, { database, migrations: slow, lockStaleMs: 3000 });
    expect((await first).applied).toEqual([960]);
    expect(second.applied).toEqual([]);
    const rows = await (a as Store).query<{ n: number }>('SELECT count() AS n FROM schema_migrations WHERE version = 960');
    expect(Number(rows[0]?.n)).toBe(1);
  });

  it('reports an unreachable server as QOE_ERR_STORE_UNAVAILABLE (retriable) after bounded retries', async () => {
    const err: unknown = await createClickHouseStore({ url: 'http://127.0.0.1:1', database: 'x', attempts: 3, retryBaseMs: 1 }).catch(
      (e: unknown) => e,
    );
    expect(isQoeError(err, 'QOE_ERR_STORE_UNAVAILABLE')).toBe(true);
    expect(isQoeError(err) && err.retriable).toBe(true);
  });
});
