import { loadAvroType } from '../schemas/codec.js';
import type avro from 'avsc';
import { HEADER_BYTES, checkRecordLayout, createAvroCodec } from '../schemas/framing.js';
import { DIMENSIONS, snakeCase } from '../schemas/events.js';
import { histogramToArrays, sortBuckets } from '../lib/histogram.js';
import { SUM_FIELDS, dimsKey, type WindowAcc } from './accumulator.js';
import { MAX_CACHED_DIMS, createScratch } from './state-writer.js';
import type { WindowOutput } from './partition.js';

/**
 * The processor's output record (qoe.metrics.v1, schemas/window-metrics.avsc): already in the
 * column layout of the qoe_metrics table, with the errors of the window alongside.
 */
export const windowMetricsType = loadAvroType('window-metrics.avsc');
export const windowMetricsCodec = createAvroCodec<MetricsRecord>(windowMetricsType);

const DIM_COLUMNS = DIMENSIONS.map(snakeCase);
const SUM_COLUMNS = SUM_FIELDS.map(snakeCase);

export type MetricsRecord = Record<string, unknown> & {
  window_start_ms: number;
  window_ms: number;
  source_partition: number;
  errors: Array<{ error_code: string; fatal: boolean; count: number }>;
};

/** The names of the record's fields, in schema order. */
export const METRICS_FIELDS: readonly string[] = (windowMetricsType as unknown as { fields: Array<{ name: string }> }).fields.map((f) => f.name);

const AVRO_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * A function returning an object literal with `fields` (Avro field names, so safe to compile), each
 * from its source expression over `params`. Every object it makes has one hidden class: building the
 * ~45 fields one by one, or by spreading, gave objects that encode and stringify several times slower
 * (bench/README.md, 2026-11-30).
 */
export function compileRecordBuilder<F>(params: string[], fields: ReadonlyArray<readonly [string, string]>): F {
  for (const [name] of fields) if (!AVRO_NAME.test(name)) throw new Error(`not an Avro field name: ${name}`);
  return new Function(...params, `return { ${fields.map(([name, expr]) => `${name}: ${expr}`).join(', ')} };`) as F;
}

/** The source of each field of the record: the output, its dims and accumulator, the histograms as arrays. */
const FIELD_SOURCES = new Map<string, string>([
  ['window_start_ms', 'out.windowStartMs'], ['window_ms', 'windowMs'], ['source_partition', 'sourcePartition'], ['errors', 'errors'],
  ...DIMENSIONS.map((d, i): [string, string] => [DIM_COLUMNS[i]!, `out.dims.${d}`]),
  ...SUM_FIELDS.map((f, i): [string, string] => [SUM_COLUMNS[i]!, `out.acc.${f}`]),
  ['vst_hist_keys', 'vst.keys'], ['vst_hist_counts', 'vst.counts'], ['ttfb_hist_keys', 'ttfb.keys'], ['ttfb_hist_counts', 'ttfb.counts'],
  ['bitrate_keys', 'br.keys'], ['bitrate_playing_ms', 'br.counts'],
]);

type Arrays = ReturnType<typeof histogramToArrays>;
const buildRecord = compileRecordBuilder<(
  out: WindowOutput, windowMs: number, sourcePartition: number, errors: MetricsRecord['errors'], vst: Arrays, ttfb: Arrays, br: Arrays,
) => MetricsRecord>(
  ['out', 'windowMs', 'sourcePartition', 'errors', 'vst', 'ttfb', 'br'],
  METRICS_FIELDS.map((name) => {
    const expr = FIELD_SOURCES.get(name);
    if (expr === undefined) throw new Error(`window-metrics.avsc field ${name} has no source in toMetricsRecord`);
    return [name, expr] as const;
  }),
);

export function toMetricsRecord(out: WindowOutput, windowMs: number, sourcePartition: number): MetricsRecord {
  const acc: WindowAcc = out.acc;
  const errors: MetricsRecord['errors'] = [];
  for (const [k, count] of acc.errors) {
    if (count === 0) continue;
    const sep = k.indexOf(':');
    errors.push({ error_code: k.slice(sep + 1), fatal: k.slice(0, sep) === '1', count });
  }
  return buildRecord(out, windowMs, sourcePartition, errors, histogramToArrays(acc.vstHist), histogramToArrays(acc.ttfbHist), histogramToArrays(acc.bitrateMs));
}

/** The fields and Avro types of window-metrics.avsc, in order, that the writer below and metrics-json.ts were written for. */
const LAYOUT: readonly string[] = [
  'window_start_ms:long', 'window_ms:int', 'source_partition:int', ...DIM_COLUMNS.map((c) => `${c}:string`), ...SUM_COLUMNS.map((c) => `${c}:long`),
  'vst_hist_keys:array', 'vst_hist_counts:array', 'bitrate_keys:array', 'bitrate_playing_ms:array', 'ttfb_hist_keys:array', 'ttfb_hist_counts:array',
  'errors:array',
];
const ITEMS: readonly string[] = ['int', 'long', 'int', 'long', 'int', 'long'];
const ERROR_LAYOUT: readonly string[] = ['error_code:string', 'fatal:boolean', 'count:long'];

/**
 * Throws unless window-metrics.avsc has the layout above (fields, array items, the error record):
 * code that reads or writes the record by hand calls it at load, so a changed schema stops the
 * process at start rather than misreading records. Returns the fields.
 */
export function checkMetricsLayout(owner: string): ReturnType<typeof checkRecordLayout> {
  const fields = checkRecordLayout(windowMetricsType, LAYOUT, owner);
  const arrays = fields.slice(3 + DIM_COLUMNS.length + SUM_COLUMNS.length, -1);
  arrays.forEach((f, i) => {
    const items = (f.type as unknown as { itemsType: { typeName: string } }).itemsType.typeName;
    if (items !== ITEMS[i]) throw new Error(`window-metrics.avsc ${f.name} holds ${items}s: update ${owner}`);
  });
  checkRecordLayout((fields.at(-1)?.type as unknown as { itemsType: avro.Type }).itemsType, ERROR_LAYOUT, owner);
  return fields;
}

/**
 * The metrics record of a window output, written field by field from the output itself: the bytes
 * encodeMetricsRecord(toMetricsRecord(…)) gives (a test compares them), without the record object,
 * its six arrays and avsc's per-field dispatch — a record per output row was ~3 % of the processor +
 * sink's CPU and ~7 % of what it allocated (bench/README.md, fifteenth session). The 13 dimension
 * strings of a dims key are encoded once and kept (at most MAX_CACHED_DIMS keys).
 */
export function createMetricsRecordWriter(): (out: WindowOutput, windowMs: number, sourcePartition: number) => Buffer {
  checkMetricsLayout('processors/metrics-record.ts');
  const w = createScratch(windowMetricsCodec.fingerprint);
  const dimsCache = new Map<string, Buffer>();
  const dimsBytes = (dims: WindowOutput['dims'], key: string): Buffer => {
    let b = dimsCache.get(key);
    if (b === undefined) {
      if (dimsCache.size >= MAX_CACHED_DIMS) dimsCache.clear();
      let room = 0;
      for (const d of DIMENSIONS) room += 10 + 3 * dims[d].length;
      w.start(room);
      for (const d of DIMENSIONS) w.string(dims[d]);
      b = w.take().subarray(HEADER_BYTES);
      dimsCache.set(key, b);
    }
    return b;
  };
  const int = (n: number): void => {
    if ((n | 0) !== n) throw new Error(`not an int: ${n}`);
    w.long(n);
  };
  // A histogram's non-zero buckets by key, into two arrays reused from one output to the next.
  const keys: number[] = [];
  const counts: number[] = [];
  const histogram = (h: Map<number, number>): void => {
    const n = sortBuckets(h, keys, counts);
    // Two Avro arrays: one block each (none when empty), then the end.
    if (n > 0) {
      w.long(n);
      for (let i = 0; i < n; i++) int(keys[i] as number);
    }
    w.byte(0);
    if (n > 0) {
      w.long(n);
      for (let i = 0; i < n; i++) w.long(counts[i] as number);
    }
    w.byte(0);
  };
  return (out, windowMs, sourcePartition) => {
    const acc = out.acc;
    const dims = dimsBytes(out.dims, out.key ?? dimsKey(out.dims));
    let room = 3 * 10 + dims.length + SUM_COLUMNS.length * 10 + 100 + 15 * (acc.vstHist.size + acc.ttfbHist.size + acc.bitrateMs.size);
    for (const code of acc.errors.keys()) room += 22 + 3 * code.length;
    w.start(room);
    w.long(out.windowStartMs);
    int(windowMs);
    int(sourcePartition);
    w.bytes(dims);
    for (const f of SUM_FIELDS) w.long(acc[f]);
    histogram(acc.vstHist);
    histogram(acc.bitrateMs);
    histogram(acc.ttfbHist);
    let errors = 0;
    for (const n of acc.errors.values()) if (n !== 0) errors++;
    if (errors > 0) {
      w.long(errors);
      for (const [k, n] of acc.errors) {
        if (n === 0) continue;
        const sep = k.indexOf(':');
        w.string(k.slice(sep + 1));
        w.byte(k.slice(0, sep) === '1' ? 1 : 0);
        w.long(n);
      }
    }
    w.byte(0);
    return w.take();
  };
}

export function encodeMetricsRecord(rec: MetricsRecord): Buffer {
  return windowMetricsCodec.encode(rec);
}

export function decodeMetricsRecord(buf: Buffer): MetricsRecord {
  return windowMetricsCodec.decode(buf);
}
