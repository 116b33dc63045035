import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type avro from 'avsc';
import { JSON_LINE, toJsonEachRow, toJsonRow, type EncodedRow } from '../lib/store/common.js';
import type { Row } from '../lib/store/types.js';
import { confluentHeader, HEADER_BYTES } from '../schemas/framing.js';
import { decodeMetricsRecord, encodeMetricsRecord, METRICS_FIELDS, windowMetricsType, type MetricsRecord } from './metrics-record.js';
import { metricsJsonRows } from './metrics-json.js';
import { metricsRows } from './sink.js';

/** The rows the decoding way builds, as JSON values (what JSONEachRow makes of them). */
const asJson = (row: Row): unknown => JSON.parse(JSON.stringify(toJsonRow(row)));
const lineOf = (row: EncodedRow): unknown => {
  const text = row[JSON_LINE].toString('utf8');
  expect(text.endsWith('\n')).toBe(true);
  expect(text.slice(0, -1)).not.toContain('\n');
  return JSON.parse(text);
};

/** Strings JSON must escape, and UTF-8 of 1 to 4 bytes. */
const hostile = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.constantFrom('', 'a"b', 'back\\slash', 'tab\tnew\nline\r', '\u0000\u001f\u007f', 'é Ω 日本 😀', '\u2028\u2029', '{"x":1}'),
);
const big = fc.integer({ min: -(2 ** 52) + 1, max: 2 ** 52 - 1 });
const counts = fc.array(fc.oneof(fc.nat({ max: 1000 }), big), { maxLength: 6 });

/** A window-metrics record with every field drawn: hostile dimension values, negative and 2^52-sized sums. */
const records: fc.Arbitrary<MetricsRecord> = fc.record({
  strings: fc.array(hostile, { minLength: METRICS_FIELDS.length, maxLength: METRICS_FIELDS.length }),
  longs: fc.array(fc.oneof(fc.integer({ min: -5, max: 5000 }), big), { minLength: METRICS_FIELDS.length, maxLength: METRICS_FIELDS.length }),
  arrays: fc.array(counts, { minLength: METRICS_FIELDS.length, maxLength: METRICS_FIELDS.length }),
  windowStartMs: fc.integer({ min: 0, max: 4_102_444_800_000 }),
  windowMs: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
  errors: fc.array(fc.record({ error_code: hostile, fatal: fc.boolean(), count: fc.oneof(fc.nat({ max: 100 }), big) }), { maxLength: 4 }),
}).map(({ strings, longs, arrays, windowStartMs, windowMs, errors }) => {
  const fields = (windowMetricsType as unknown as { fields: Array<{ name: string; type: avro.Type }> }).fields;
  const rec: Record<string, unknown> = {};
  fields.forEach((f, i) => {
    const t = f.type.typeName;
    if (t === 'string') rec[f.name] = strings[i];
    else if (t === 'long') rec[f.name] = longs[i];
    else if (t === 'int') rec[f.name] = Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, longs[i] ?? 0));
    else if (t === 'array') rec[f.name] = (arrays[i] ?? []).map((n) => ((f.type as unknown as { itemsType: avro.Type }).itemsType.typeName === 'int' ? n % 2 ** 31 : n));
  });
  return { ...rec, window_start_ms: windowStartMs, window_ms: windowMs, source_partition: 3, errors } as MetricsRecord;
});

describe('qoe.metrics.v1 records straight to JSONEachRow lines', () => {
  it('writes the lines of the rows the decoding way builds, for any record', () => {
    fc.assert(fc.property(records, fc.nat({ max: 1023 }), fc.nat({ max: 2 ** 40 }), (rec, partition, offset) => {
      const bytes = encodeMetricsRecord(rec);
      const expected = metricsRows(decodeMetricsRecord(bytes), partition, offset);
      const got = metricsJsonRows(bytes, partition, offset);
      expect(got).not.toBeNull();
      expect(lineOf(got!.metrics)).toEqual(asJson(expected.metrics));
      expect(got!.errors.map(lineOf)).toEqual(expected.errors.map(asJson));
      // The plain fields the sink reads agree with the lines.
      for (const row of [got!.metrics, ...got!.errors]) {
        expect(Object.fromEntries(Object.entries(row))).toEqual({ window_start: Math.floor(rec.window_start_ms / 1000), src_partition: partition, src_offset: offset });
      }
      // And what the store sends is those lines.
      expect(toJsonEachRow([got!.metrics, ...got!.errors])).toBe([got!.metrics, ...got!.errors].map((r) => r[JSON_LINE].toString('utf8')).join(''));
    }), { numRuns: 300 });
  });

  it('keeps every line intact while later records fill slab after slab', () => {
    const many = fc.sample(records.filter((r) => r.errors.length > 0), { seed: 5, numRuns: 3000 }).map((r, i) => ({ bytes: encodeMetricsRecord(r), offset: i }));
    const rows = many.map(({ bytes, offset }) => metricsJsonRows(bytes, 1, offset));
    // Past one slab (1 MiB): some error rows start a slab of their own.
    expect(rows.reduce((n, r) => n + (r?.metrics[JSON_LINE].length ?? 0), 0)).toBeGreaterThan(2 * 1024 * 1024);
    many.forEach(({ bytes, offset }, i) => {
      const expected = metricsRows(decodeMetricsRecord(bytes), 1, offset);
      expect(lineOf(rows[i]!.metrics)).toEqual(asJson(expected.metrics));
      expect(rows[i]!.errors.map(lineOf)).toEqual(expected.errors.map(asJson));
    });
  });

  it('reads arrays written as blocks with their byte size (the Avro spec allows either)', () => {
    const rec = fc.sample(records, { seed: 7, numRuns: 1 })[0]!;
    rec.vst_hist_keys = [1, 2, 3, 4, 5];
    rec.vst_hist_counts = [10, -20, 30, 2 ** 40, 0];
    const fields = (windowMetricsType as unknown as { fields: Array<{ name: string; type: avro.Type }> }).fields;
    const zigzag = (n: number): Buffer => (windowMetricsType as unknown as { fields: Array<{ type: avro.Type }> }).fields[0]!.type.toBuffer(n);
    // vst_hist_counts as two blocks: −2 items (with their size), then 3 items, then the end.
    const blocks = (items: number[]): Buffer => {
      const first = Buffer.concat(items.slice(0, 2).map(zigzag));
      return Buffer.concat([zigzag(-2), zigzag(first.length), first, zigzag(3), ...items.slice(2).map(zigzag), zigzag(0)]);
    };
    const body = Buffer.concat(fields.map((f) => (f.name === 'vst_hist_counts' ? blocks(rec.vst_hist_counts as number[]) : f.type.toBuffer(rec[f.name]))));
    const bytes = Buffer.concat([encodeMetricsRecord(rec).subarray(0, HEADER_BYTES), body]);
    expect(decodeMetricsRecord(bytes).vst_hist_counts).toEqual(rec.vst_hist_counts);
    expect(lineOf(metricsJsonRows(bytes, 1, 2)!.metrics)).toEqual(asJson(metricsRows(decodeMetricsRecord(bytes), 1, 2).metrics));
  });

  it('leaves to the decoding way what it does not take: other framings and writers, longs past 2^52, malformed records', () => {
    const rec = fc.sample(records, { seed: 3, numRuns: 1 })[0]!;
    const bytes = encodeMetricsRecord(rec);
    const confluent = Buffer.concat([confluentHeader(7), bytes.subarray(HEADER_BYTES)]);
    expect(metricsJsonRows(confluent, 0, 0)).toBeNull();
    const otherWriter = Buffer.from(bytes);
    otherWriter[HEADER_BYTES - 1] = (otherWriter[HEADER_BYTES - 1] ?? 0) ^ 0xff;
    expect(metricsJsonRows(otherWriter, 0, 0)).toBeNull();
    expect(metricsJsonRows(bytes.subarray(0, bytes.length - 1), 0, 0)).toBeNull();
    expect(metricsJsonRows(Buffer.concat([bytes, Buffer.from([0])]), 0, 0)).toBeNull();
    // avsc writes longs up to 2^52; another writer may write more (a varint of 2^60 for attempts).
    const fields = (windowMetricsType as unknown as { fields: Array<{ name: string; type: avro.Type }> }).fields;
    const varint = (v: bigint): Buffer => {
      const out: number[] = [];
      for (let n = v << 1n; ; n >>= 7n) {
        if (n < 0x80n) return Buffer.from([...out, Number(n)]);
        out.push(Number(n & 0x7fn) | 0x80);
      }
    };
    const huge = Buffer.concat([bytes.subarray(0, HEADER_BYTES), ...fields.map((f) => (f.name === 'attempts' ? varint(2n ** 60n) : f.type.toBuffer(rec[f.name])))]);
    expect(huge.length).toBeGreaterThan(bytes.length);
    expect(metricsJsonRows(huge, 0, 0)).toBeNull();
    // The reader is left usable: the next record is read as ever.
    expect(lineOf(metricsJsonRows(bytes, 0, 0)!.metrics)).toEqual(asJson(metricsRows(decodeMetricsRecord(bytes), 0, 0).metrics));
  });
});
