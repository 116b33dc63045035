import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Dashboard, Panel, RowPanel, VariableModel } from '@grafana/grafana-foundation-sdk/dashboard';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addToHistogram, emptyHistogram, histogramQuantile, histogramToArrays, mergeHistograms, type Histogram } from '../lib/histogram.js';
import { createChdbStore } from '../lib/store/chdb.js';
import { createClickHouseStore } from '../lib/store/clickhouse.js';
import type { Row, Store } from '../lib/store/types.js';
import { migrate } from '../sql/migrate.js';
import { renderOutputs } from '../dashboards/build.js';
import { CLICKHOUSE_PLUGIN_ID, CLICKHOUSE_UID, isClickHouseQuery, PROMETHEUS_VARIABLE } from '../dashboards/datasources.js';
import { expandGrafanaSql, type ExpandContext } from '../dashboards/grafana-macros.js';
import { DASHBOARDS } from '../dashboards/index.js';
import { overviewQueries } from '../dashboards/qoe-overview.js';
import { bitrateQueries } from '../dashboards/bitrate-distribution.js';
import { BITRATE_BUCKETS_KBPS, bitrateBucketLabel } from '../processors/accumulator.js';
import { clickhouseServerSkipReason, randomDatabaseName, useClickHouseServer } from './helpers/clickhouse-server.js';

/**
 * The Grafana dashboards (dashboards/*.ts): they build with stable uids, their JSON is structurally
 * valid, and every ClickHouse statement they hold — panels, annotations, variables — runs, with
 * Grafana's macros expanded, on chDB and on ClickHouse 18.16 against seeded rows, returning the
 * declared columns and, for the overview, the numbers computed here from the same rows.
 */

// ---------- structure ----------

type AnyPanel = Panel | RowPanel;

function allPanels(d: Dashboard): AnyPanel[] {
  return (d.panels ?? []).flatMap((p) => (p.type === 'row' && 'panels' in p ? [p, ...p.panels] : [p]));
}

function targetsOf(p: AnyPanel): unknown[] {
  return 'targets' in p && p.targets !== undefined ? p.targets : [];
}

/** Every ClickHouse SQL a dashboard runs: panel targets, annotation targets, query variables. */
function clickhouseSql(d: Dashboard): string[] {
  const fromPanels = allPanels(d).flatMap(targetsOf).filter(isClickHouseQuery).map((t) => t.rawSql);
  const fromAnnotations = (d.annotations.list ?? []).map((a) => a.target).filter(isClickHouseQuery).map((t) => t.rawSql);
  const fromVariables = (d.templating.list ?? [])
    .filter((v) => v.type === 'query' && v.datasource?.type === CLICKHOUSE_PLUGIN_ID)
    .map((v) => String(v.query));
  return [...fromPanels, ...fromAnnotations, ...fromVariables];
}

const GRAFANA_GLOBALS = new Set(['__all', '__interval', '__interval_ms', '__rate_interval', '__range']);

function referencedVariables(text: string): string[] {
  return [...text.matchAll(/\$\{(\w+)(?::\w+)?\}|\$(\w+)/g)]
    .map((m) => m[1] ?? m[2] ?? '')
    .filter((n) => !n.startsWith('__') || GRAFANA_GLOBALS.has(n))
    .filter((n) => !GRAFANA_GLOBALS.has(n));
}

describe('dashboards: structure', () => {
  it('builds every dashboard with its stable uid, deterministically', () => {
    expect(DASHBOARDS.map((d) => d.uid)).toEqual(['qoe-overview', 'qoe-bitrate-distribution', 'qoe-cdn-comparison', 'qoe-pipeline-health']);
    for (const spec of DASHBOARDS) {
      const d = spec.build();
      expect(d.uid).toBe(spec.uid);
      expect(JSON.stringify(spec.build())).toBe(JSON.stringify(d));
    }
    expect(renderOutputs().map((f) => f.path)).toEqual([
      'qoe-overview.json', 'qoe-bitrate-distribution.json', 'qoe-cdn-comparison.json', 'qoe-pipeline-health.json',
      join('provisioning', 'dashboards', 'qoe.yaml'), join('provisioning', 'datasources', 'clickhouse.yaml'),
      join('provisioning', 'datasources', 'prometheus.yaml'),
    ]);
  });

  for (const spec of DASHBOARDS) {
    describe(spec.uid, () => {
      const d = JSON.parse(JSON.stringify(spec.build())) as Dashboard;

      it('has the fields Grafana requires, unique panel ids and a valid grid', () => {
        expect(typeof d.title).toBe('string');
        expect(d.schemaVersion).toBeGreaterThanOrEqual(39);
        expect(Array.isArray(d.templating.list)).toBe(true);
        expect(typeof d.annotations).toBe('object');
        expect(d.annotations.list === undefined || Array.isArray(d.annotations.list)).toBe(true);
        const panels = allPanels(d);
        expect(panels.length).toBeGreaterThan(0);
        const ids = panels.map((p) => p.id);
        expect(ids.every((id) => typeof id === 'number' && id > 0)).toBe(true);
        expect(new Set(ids).size).toBe(ids.length);
        for (const p of panels) {
          expect(typeof p.type).toBe('string');
          const g = p.gridPos;
          expect(g).toBeDefined();
          if (g === undefined) continue;
          expect(g.w).toBeGreaterThan(0);
          expect(g.h).toBeGreaterThan(0);
          expect(g.x + g.w).toBeLessThanOrEqual(24);
        }
      });

      it('gives every query a data source and a refId unique in its panel', () => {
        for (const p of allPanels(d)) {
          const targets = targetsOf(p) as Array<{ refId?: string; datasource?: { type?: string; uid?: string }; expr?: string }>;
          if (p.type !== 'row') expect(targets.length).toBeGreaterThan(0);
          const refIds = targets.map((t) => t.refId);
          expect(new Set(refIds).size).toBe(refIds.length);
          for (const t of targets) {
            expect(typeof t.refId).toBe('string');
            if (t.datasource?.type === 'prometheus') {
              expect(t.datasource.uid).toBe(`\${${PROMETHEUS_VARIABLE}}`);
              expect(t.expr).toMatch(/qoe_/);
            } else {
              expect(t.datasource).toEqual({ type: CLICKHOUSE_PLUGIN_ID, uid: CLICKHOUSE_UID });
              expect(t).toMatchObject({ editorType: 'sql', rawSql: expect.any(String) });
            }
          }
        }
      });

      it('runs exactly its named queries and references only defined variables', () => {
        const sql = clickhouseSql(d);
        expect(new Set(sql)).toEqual(new Set(Object.values(spec.queries).map((q) => q.sql)));
        const defined = new Set((d.templating.list ?? []).map((v: VariableModel) => v.name));
        const text = JSON.stringify({ panels: d.panels, annotations: d.annotations, templating: d.templating });
        for (const name of referencedVariables(text)) expect(defined, `variable ${name}`).toContain(name);
        for (const v of d.templating.list ?? []) {
          if (v.type === 'query') expect(v).toMatchObject({ multi: true, includeAll: true });
        }
      });
    });
  }
});

// ---------- macro expander ----------

describe('dashboards: Grafana macro expander', () => {
  const ctx: ExpandContext = {
    fromMs: 1_700_000_000_500,
    toMs: 1_700_003_600_000,
    intervalMs: 30_000,
    variables: { cdn: 'All', country: ["DE", "O'x"], n: ['1'] },
    options: { cdn: ['a', 'b'] },
  };

  it('expands conditionalAll, variables and backend macros like the plugin', () => {
    expect(expandGrafanaSql('$__conditionalAll(cdn IN (${cdn:singlequote}), $cdn) AND $__conditionalAll(country IN (${country:singlequote}), $country)', ctx))
      .toBe("1=1 AND country IN ('DE','O\\'x')");
    expect(expandGrafanaSql('$__timeFilter(t) AND x = $__interval_s AND $__fromTime < $__toTime AND ${n} = $n', ctx))
      .toBe('t >= toDateTime(1700000000) AND t <= toDateTime(1700003600) AND x = 30 AND toDateTime(1700000000) < toDateTime(1700003600) AND 1 = 1');
    expect(expandGrafanaSql('cdn IN (${cdn:singlequote})', ctx)).toBe("cdn IN ('a','b')");
    expect(expandGrafanaSql('$__timeInterval(t)', ctx)).toBe('toStartOfInterval(toDateTime(t), INTERVAL 30 second)');
  });

  it('rejects macros and formats it does not support', () => {
    expect(() => expandGrafanaSql('$__timeFilter_ms(t)', ctx)).toThrow(/not supported/);
    expect(() => expandGrafanaSql('${country:regex}', ctx)).toThrow(/not supported/);
  });
});

// ---------- seeded data ----------

const T0_MS = Date.UTC(2024, 2, 1, 12, 0, 0);
const WINDOW_MS = 10_000;
const WINDOWS = 180; // 30 minutes
const CDNS = ['cdn-a', 'cdn-b'] as const;
const COUNTRIES = ['DE', 'FR'] as const;
const DEVICES = ['desktop', 'mobile'] as const;
const STREAMS = ['vod', 'live'] as const;

interface Seeded {
  metrics: Row[];
  /** Raw VST samples per metrics row (same index), for exact percentiles. */
  vstSamples: number[][];
  errors: Row[];
  deadLetters: Row[];
  steering: Row[];
}

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function seed(): Seeded {
  const rnd = lcg(42);
  const int = (lo: number, hi: number): number => lo + Math.floor(rnd() * (hi - lo + 1));
  const out: Seeded = { metrics: [], vstSamples: [], errors: [], deadLetters: [], steering: [] };
  for (let w = 0; w < WINDOWS; w++) {
    const windowStart = new Date(T0_MS + w * WINDOW_MS);
    CDNS.forEach((cdn, ci) => COUNTRIES.forEach((country, ki) => {
      const samples = Array.from({ length: int(0, 6) }, () => int(200, 8000) * (ci === 1 ? 1.5 : 1));
      const vst: Histogram = emptyHistogram();
      for (const s of samples) addToHistogram(vst, s);
      const { keys, counts } = histogramToArrays(vst);
      const bitrate = new Map<number, number>([[int(3, 6), int(1000, 40_000)], [int(7, 12), int(1000, 60_000)]]);
      const brKeys = [...bitrate.keys()].sort((a, b) => a - b);
      const brMs = brKeys.map((k) => bitrate.get(k) ?? 0);
      const plays = samples.length;
      out.vstSamples.push(samples);
      out.metrics.push({
        window_start: windowStart, window_ms: WINDOW_MS, cdn, country, asn: ki === 0 ? '3320' : '12322',
        device_type: DEVICES[(w + ci) % 2], stream_type: STREAMS[(w + ki) % 2],
        attempts: plays + int(0, 2), plays, vsf: int(0, 1), ebvs: int(0, 1), vpf: int(0, 1) * Math.min(plays, 1),
        vst_count: plays, vst_sum_ms: Math.round(samples.reduce((a, b) => a + b, 0)), vst_hist_keys: keys, vst_hist_counts: counts,
        playing_ms: int(20_000, 90_000), rebuffer_ms: int(0, 3_000), seek_ms: int(0, 1_500), active_ms: int(30_000, 100_000),
        bitrate_keys: brKeys, bitrate_playing_ms: brMs, bits_played: brKeys.reduce((a, k, i) => a + (brMs[i] ?? 0) * (300 + 400 * k), 0),
        src_partition: 0, src_offset: out.metrics.length,
      });
      if (w % 20 === 0) {
        out.errors.push({ window_start: windowStart, window_ms: WINDOW_MS, cdn, country, device_type: DEVICES[ci], stream_type: STREAMS[ki], error_code: `E${ci}${ki}`, fatal: ci, count: int(1, 5), src_partition: 0, src_offset: w });
      }
    }));
    if (w % 15 === 0) {
      out.deadLetters.push({ dead_at: windowStart, reason: w % 30 === 0 ? 'late' : 'after_end', session_id: `s${w % 4}`, event_ts: windowStart, payload: '{}', src_partition: 0, src_offset: w });
    }
    if (w % 45 === 5) {
      out.steering.push({ issued_at: windowStart, country: COUNTRIES[w % 2], asn: w % 2 === 0 ? '' : '3320', action: 'prefer', priority: ['cdn-b', 'cdn-a'], reason_metric: 'rebuffer_ratio', reason_cdn: 'cdn-a' });
    }
  }
  // Outside the tested range: must be filtered out by $__timeFilter.
  out.metrics.push({ window_start: new Date(T0_MS - 3_600_000), window_ms: WINDOW_MS, cdn: 'cdn-a', country: 'DE', attempts: 1_000_000, plays: 1_000_000, playing_ms: 1, rebuffer_ms: 1_000_000_000, src_partition: 1, src_offset: 0 });
  out.vstSamples.push([]);
  return out;
}

const SEEDED = seed();

const STEERING_DDL = `CREATE TABLE IF NOT EXISTS qoe_steering_decisions
(
    issued_at DateTime,
    country String,
    asn String,
    action String,
    priority Array(String),
    reason_metric String,
    reason_cdn String
)
ENGINE = MergeTree()
ORDER BY issued_at`;

async function prepare(store: Store, database: string): Promise<void> {
  await migrate(store, { database });
  // qoe_steering_decisions comes from steering's migration; create it here if that is not merged yet.
  await store.exec(STEERING_DDL);
  await store.insert('qoe_metrics', SEEDED.metrics);
  await store.insert('qoe_errors', SEEDED.errors);
  await store.insert('qoe_dead_letters', SEEDED.deadLetters);
  await store.insert('qoe_steering_decisions', SEEDED.steering);
}

const RANGE = { fromMs: T0_MS, toMs: T0_MS + WINDOWS * WINDOW_MS - 1000 };
const OPTIONS = { cdn: [...CDNS], country: [...COUNTRIES], device_type: [...DEVICES], stream_type: [...STREAMS] };

const CONTEXTS: Record<string, ExpandContext> = {
  'All selected, 60 s interval': {
    ...RANGE, intervalMs: 60_000, options: OPTIONS,
    variables: { cdn: 'All', country: 'All', device_type: 'All', stream_type: 'All', split: ['country'], window_s: ['10'] },
  },
  'some selected, 15 s interval': {
    ...RANGE, intervalMs: 15_000, options: OPTIONS,
    variables: { cdn: ['cdn-a'], country: ['DE', "no'where"], device_type: 'All', stream_type: ['vod', 'live'], split: ['asn'], window_s: ['10'] },
  },
};

// ---------- expectations computed from the seed ----------

function inRange(r: Row): boolean {
  const t = (r.window_start as Date).getTime();
  return t >= RANGE.fromMs && t <= RANGE.toMs;
}

const num = (r: Row, k: string): number => Number(r[k] ?? 0);

function nearestRank(samples: number[], q: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1] ?? NaN;
}

function expectedTotals(filter: (r: Row) => boolean): Record<string, number> {
  const rows = SEEDED.metrics.filter((r) => inRange(r) && filter(r));
  const sum = (k: string): number => rows.reduce((a, r) => a + num(r, k), 0);
  const samples = SEEDED.metrics.flatMap((r, i) => (inRange(r) && filter(r) ? SEEDED.vstSamples[i] ?? [] : []));
  const hist = rows.reduce<Histogram>((h, r) => {
    const keys = r.vst_hist_keys as number[];
    const counts = r.vst_hist_counts as number[];
    const part: Histogram = new Map(keys.map((k, i) => [k, counts[i] ?? 0]));
    return mergeHistograms(h, part);
  }, emptyHistogram());
  const viewed = sum('playing_ms') + sum('rebuffer_ms') + sum('seek_ms');
  const knownMs = rows.reduce((a, r) => a + (r.bitrate_playing_ms as number[]).reduce((x, y) => x + y, 0), 0);
  return {
    attempts: sum('attempts'),
    plays: sum('plays'),
    rebuffer_ratio: (sum('rebuffer_ms') + sum('seek_ms')) / viewed,
    connection_rebuffer_ratio: sum('rebuffer_ms') / viewed,
    avg_bitrate_kbps: sum('bits_played') / knownMs,
    vsf_rate: sum('vsf') / sum('attempts'),
    vpf_rate: sum('vpf') / sum('plays'),
    concurrent_sessions: sum('active_ms') / (Math.floor(RANGE.toMs / 1000) * 1000 - RANGE.fromMs),
    vst_p95_exact: nearestRank(samples, 0.95),
    vst_p50_exact: nearestRank(samples, 0.5),
    vst_p95_hist: histogramQuantile(hist, 0.95) ?? NaN,
    vst_p50_hist: histogramQuantile(hist, 0.5) ?? NaN,
  };
}

// ---------- engines ----------

function engineSuite(name: string, open: () => Promise<{ store: Store; close(): Promise<void> }>): void {
  describe(`dashboards SQL on ${name}`, () => {
    let store: Store | undefined;
    let close: (() => Promise<void>) | undefined;
    const s = (): Store => {
      if (store === undefined) throw new Error('store not open');
      return store;
    };

    beforeAll(async () => {
      const opened = await open();
      store = opened.store;
      close = opened.close;
    });
    afterAll(async () => {
      await close?.();
    });

    for (const spec of DASHBOARDS) {
      for (const [ctxName, ctx] of Object.entries(CONTEXTS)) {
        it(`${spec.uid}: every query runs (${ctxName}) and returns its columns`, async () => {
          for (const [qName, q] of Object.entries(spec.queries)) {
            const sql = expandGrafanaSql(q.sql, ctx);
            const rows = await s().query(sql).catch((err: unknown) => {
              throw new Error(`${spec.uid}.${qName}: ${(err as Error).message}\n${sql}`);
            });
            expect(rows.length, `${spec.uid}.${qName} returns rows`).toBeGreaterThan(0);
            expect(Object.keys(rows[0] ?? {}), `${spec.uid}.${qName} columns`).toEqual(q.columns);
          }
        });
      }
    }

    it('overview totals equal the values computed from the seeded rows (VST within 2%)', async () => {
      for (const [ctxName, ctx] of Object.entries(CONTEXTS)) {
        const sel = ctx.variables;
        const pick = (dim: string, r: Row): boolean => {
          const v = sel[dim];
          return v === undefined || v === 'All' || v.includes(String(r[dim] ?? ''));
        };
        const want = expectedTotals((r) => ['cdn', 'country', 'device_type', 'stream_type'].every((d) => pick(d, r)));
        const [got] = await s().query(expandGrafanaSql(overviewQueries.totals.sql, ctx));
        expect(got, ctxName).toBeDefined();
        if (got === undefined) continue;
        expect(num(got, 'attempts'), ctxName).toBe(want.attempts);
        expect(num(got, 'plays'), ctxName).toBe(want.plays);
        for (const k of ['rebuffer_ratio', 'connection_rebuffer_ratio', 'avg_bitrate_kbps', 'vsf_rate', 'vpf_rate'] as const) {
          expect(num(got, k), `${ctxName} ${k}`).toBeCloseTo(want[k] ?? NaN, 9);
        }
        expect(num(got, 'concurrent_sessions'), ctxName).toBeCloseTo((want.concurrent_sessions ?? NaN), 9);
        // SQL reads the same bucket as lib/histogram.ts, and that bucket is within 2% of the exact sample.
        expect(num(got, 'vst_p95_ms') / (want.vst_p95_hist ?? NaN), ctxName).toBeCloseTo(1, 9);
        expect(num(got, 'vst_p50_ms') / (want.vst_p50_hist ?? NaN), ctxName).toBeCloseTo(1, 9);
        expect(Math.abs(num(got, 'vst_p95_ms') / (want.vst_p95_exact ?? NaN) - 1), ctxName).toBeLessThanOrEqual(0.02);
        expect(Math.abs(num(got, 'vst_p50_ms') / (want.vst_p50_exact ?? NaN) - 1), ctxName).toBeLessThanOrEqual(0.02);
      }
    });

    it('concurrent sessions per point = active ms in the point / point ms, points aligned to whole windows', async () => {
      const ctx = CONTEXTS['some selected, 15 s interval'];
      if (ctx === undefined) throw new Error('context missing');
      // 15 s rounds up to 20 s: two 10 s windows per point.
      const rows = await s().query(expandGrafanaSql(overviewQueries.concurrent.sql, ctx));
      expect(rows.length).toBe(WINDOWS / 2);
      const first = rows[0];
      const expected = SEEDED.metrics
        .filter((r) => inRange(r) && r.cdn === 'cdn-a' && r.country === 'DE' && (r.window_start as Date).getTime() < T0_MS + 20_000)
        .reduce((a, r) => a + num(r, 'active_ms'), 0) / 20_000;
      expect(num(first ?? {}, 'concurrent_sessions')).toBeCloseTo(expected, 9);
    });

    it('bitrate distribution: shares sum to 1 and playing time matches the seed', async () => {
      const ctx = CONTEXTS['All selected, 60 s interval'];
      if (ctx === undefined) throw new Error('context missing');
      const rows = await s().query(expandGrafanaSql(bitrateQueries.range.sql, ctx));
      const shares = rows.reduce((a, r) => a + num(r, 'share'), 0);
      expect(shares).toBeCloseTo(1, 9);
      const hours = rows.reduce((a, r) => a + num(r, 'playing_h'), 0);
      const ms = SEEDED.metrics.filter(inRange).reduce((a, r) => a + (r.bitrate_playing_ms as number[]).reduce((x, y) => x + y, 0), 0);
      expect(hours).toBeCloseTo(ms / 3_600_000, 9);
      const labels = BITRATE_BUCKETS_KBPS.map((_, i) => bitrateBucketLabel(i));
      for (const r of rows) expect(labels).toContain(r.bitrate);
    });
  });
}

engineSuite('chDB', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'qoe-dash-chdb-'));
  const database = randomDatabaseName('qoe_dash');
  const store = await createChdbStore({ dataDir, database });
  await prepare(store, database);
  return {
    store,
    async close() {
      await store.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
});

const skipReason = clickhouseServerSkipReason();
if (skipReason !== undefined) console.warn(`skipping clickhouse-server dashboard tests: ${skipReason}`);

describe.skipIf(skipReason !== undefined)('clickhouse-server 18.16', () => {
  const server = useClickHouseServer();
  engineSuite('ClickHouse 18.16', async () => {
    const database = randomDatabaseName('qoe_dash');
    const store = await createClickHouseStore({ url: server().url, database });
    expect(await store.version()).toMatch(/^18\.16\./);
    await prepare(store, database);
    return {
      store,
      async close() {
        await store.exec(`DROP DATABASE IF EXISTS ${database}`);
        await store.close();
      },
    };
  });
});
