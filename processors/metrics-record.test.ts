import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { planRun } from '../sim/simulate.js';
import { normalizeEvent } from '../ingest/normalize.js';
import type { BeaconEvent } from '../ingest/beacon-schema.js';
import { advance, applyEvent, emptyPartitionState, type ProcessorSettings, type WindowOutput } from './partition.js';
import { METRICS_FIELDS, compileRecordBuilder, createMetricsRecordWriter, decodeMetricsRecord, encodeMetricsRecord, toMetricsRecord } from './metrics-record.js';
import { metricsRows } from './sink.js';
import { SUM_FIELDS, dimsKey, emptyAcc, type WindowAcc } from './accumulator.js';
import { DIMENSIONS, type Dims } from '../schemas/events.js';
import { toJsonEachRow, toJsonRow } from '../lib/store/common.js';

const cfg: ProcessorSettings = {
  windowMs: 10_000, graceMs: 2000, sessionTimeoutMs: 60_000, maxSessions: 10_000, maxClockAheadMs: 5000, maxClockSkewMs: 300_000, ebvsMinMs: 0,
};

/** snake_case of a camelCase name, written out here rather than taken from the code under test. */
const snake = (s: string): string => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** Window outputs of a simulated run, with errors and histograms in some of them. */
function outputs(): WindowOutput[] {
  const run = planRun({ views: 150, seed: 11, startMs: 1_767_225_600_000, periodMs: 120_000 });
  const events = run.views.flatMap((v) => v.events).sort((a, b) => a.ts - b.ts);
  const ps = emptyPartitionState();
  const out: WindowOutput[] = [];
  for (const e of events) {
    applyEvent(ps, cfg, normalizeEvent(e as BeaconEvent, undefined, { receivedAtMs: e.ts, clientHash: 'x' }));
    out.push(...advance(ps, cfg, e.ts - 1000));
  }
  out.push(...advance(ps, cfg, events.at(-1)!.ts + 600_000));
  return out;
}

describe('window metrics record and qoe_metrics row', () => {
  const outs = outputs();

  it('carries every dimension, sum, histogram and error of a window output, and survives Avro', () => {
    expect(outs.length).toBeGreaterThan(100);
    expect(outs.some((o) => o.acc.errors.size > 0) && outs.some((o) => o.acc.vstHist.size > 0)).toBe(true);
    for (const o of outs) {
      const rec = toMetricsRecord(o, 10_000, 3);
      expect(Object.keys(rec).sort()).toEqual([...METRICS_FIELDS].sort());
      expect([rec.window_start_ms, rec.window_ms, rec.source_partition]).toEqual([o.windowStartMs, 10_000, 3]);
      for (const d of DIMENSIONS) expect(rec[snake(d)]).toBe(o.dims[d]);
      for (const f of SUM_FIELDS) expect(rec[snake(f)]).toBe(o.acc[f]);
      const pairs = (keys: unknown, counts: unknown): Array<[number, number]> => (keys as number[]).map((k, i) => [k, (counts as number[])[i]!]);
      expect(pairs(rec.vst_hist_keys, rec.vst_hist_counts).sort((a, b) => a[0] - b[0])).toEqual([...o.acc.vstHist].sort((a, b) => a[0] - b[0]));
      expect(pairs(rec.ttfb_hist_keys, rec.ttfb_hist_counts).sort((a, b) => a[0] - b[0])).toEqual([...o.acc.ttfbHist].sort((a, b) => a[0] - b[0]));
      expect(pairs(rec.bitrate_keys, rec.bitrate_playing_ms).sort((a, b) => a[0] - b[0])).toEqual([...o.acc.bitrateMs].sort((a, b) => a[0] - b[0]));
      const errors = [...o.acc.errors].filter(([, n]) => n > 0).map(([k, n]) => ({ error_code: k.slice(k.indexOf(':') + 1), fatal: k.startsWith('1:'), count: n }));
      expect(rec.errors).toEqual(errors);
      expect({ ...decodeMetricsRecord(encodeMetricsRecord(rec)) }).toEqual(rec);
    }
  });

  it('becomes a qoe_metrics row (window start in seconds, source position) and error rows', () => {
    for (const o of outs) {
      const rec = decodeMetricsRecord(encodeMetricsRecord(toMetricsRecord(o, 10_000, 3)));
      const { metrics, errors } = metricsRows(rec, 5, 1234);
      const expected: Record<string, unknown> = {};
      for (const f of METRICS_FIELDS) if (!['window_start_ms', 'source_partition', 'errors'].includes(f)) expected[f] = rec[f];
      Object.assign(expected, { window_start: o.windowStartMs / 1000, src_partition: 5, src_offset: 1234 });
      expect(metrics).toEqual(expected);
      expect(errors).toHaveLength(rec.errors.length);
      for (const [i, e] of rec.errors.entries()) {
        expect(errors[i]).toMatchObject({ window_start: o.windowStartMs / 1000, error_code: e.error_code, fatal: e.fatal ? 1 : 0, count: e.count, src_partition: 5, src_offset: 1234 });
        for (const d of DIMENSIONS) expect(errors[i]![snake(d)]).toBe(o.dims[d]);
      }
    }
  });

  it('is written from the output with the bytes of encodeMetricsRecord(toMetricsRecord(…))', () => {
    const write = createMetricsRecordWriter();
    for (const o of outs) expect(write(o, 10_000, 3)).toEqual(encodeMetricsRecord(toMetricsRecord(o, 10_000, 3)));
    // Any accumulator: sums of either sign up to 2^52, buckets and errors with zero counts, dims
    // from a small pool (the writer keeps their bytes) or hostile, with and without the dims key.
    const dimValue = fc.oneof(fc.constantFrom('', 'cdn-a', 'US', 'é Ω 日本 😀'), fc.string({ unit: 'grapheme', maxLength: 40 }));
    const dims = fc.record(Object.fromEntries(DIMENSIONS.map((d) => [d, dimValue])) as Record<keyof Dims, typeof dimValue>);
    const count = fc.oneof(fc.integer({ min: -3, max: 3 }), fc.integer({ min: -(2 ** 52), max: 2 ** 52 }));
    const buckets = fc.array(fc.tuple(fc.integer({ min: 0, max: 480 }), count), { maxLength: 10 }).map((e) => new Map(e));
    const acc: fc.Arbitrary<WindowAcc> = fc.record({
      sums: fc.array(count, { minLength: SUM_FIELDS.length, maxLength: SUM_FIELDS.length }), vstHist: buckets, ttfbHist: buckets,
      bitrateMs: fc.array(fc.tuple(fc.integer({ min: 0, max: 2 ** 31 - 1 }), count), { maxLength: 6 }).map((e) => new Map(e)),
      errors: fc.array(fc.tuple(fc.constantFrom('0', '1'), fc.string({ unit: 'grapheme', maxLength: 20 }), count), { maxLength: 5 })
        .map((e) => new Map(e.map(([f, c, n]) => [`${f}:${c}`, n]))),
    }).map(({ sums, ...maps }) => {
      const a = Object.assign(emptyAcc(), maps);
      SUM_FIELDS.forEach((f, i) => (a[f] = sums[i] ?? 0));
      return a;
    });
    fc.assert(fc.property(fc.integer({ min: 0, max: 4_102_444_800_000 }), fc.integer({ min: 1, max: 2 ** 31 - 1 }), fc.nat({ max: 2 ** 31 - 1 }),
      fc.oneof(fc.constantFrom(...fc.sample(dims, { seed: 1, numRuns: 3 })), dims), acc, fc.boolean(), (windowStartMs, windowMs, partition, d, a, keyed) => {
        const o: WindowOutput = { windowStartMs, dims: d, acc: a, ...(keyed ? { key: dimsKey(d) } : {}) };
        expect(write(o, windowMs, partition)).toEqual(encodeMetricsRecord(toMetricsRecord(o, windowMs, partition)));
      }), { numRuns: 500 });
  });

  it('compiles only Avro field names', () => {
    expect(() => compileRecordBuilder(['a'], [['x; process.exit(1); //', 'a']])).toThrow(/not an Avro field name/);
    expect(compileRecordBuilder<(a: number) => unknown>(['a'], [['x', 'a + 1'], ['_y2', 'a']])(1)).toEqual({ x: 2, _y2: 1 });
  });
});

describe('JSONEachRow values', () => {
  it('turns Dates into epoch seconds and bigints into strings, and leaves a plain row as it is', () => {
    const plain = { a: 1, b: 'x', c: [1, 2], d: null };
    expect(toJsonRow(plain)).toBe(plain);
    const mixed = { t: new Date(1_767_225_601_999), big: 2n ** 64n, n: 3 };
    expect(toJsonRow(mixed)).toEqual({ t: 1_767_225_601, big: '18446744073709551616', n: 3 });
    expect(mixed.t).toBeInstanceOf(Date);
    expect(toJsonEachRow([plain, mixed])).toBe('{"a":1,"b":"x","c":[1,2],"d":null}\n{"t":1767225601,"big":"18446744073709551616","n":3}\n');
  });
});
