import { loadAvroType } from '../schemas/codec.js';
import { createAvroCodec } from '../schemas/framing.js';
import { DIMENSIONS, snakeCase } from '../schemas/events.js';
import { histogramToArrays } from '../lib/histogram.js';
import { SUM_FIELDS, type WindowAcc } from './accumulator.js';
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

export function encodeMetricsRecord(rec: MetricsRecord): Buffer {
  return windowMetricsCodec.encode(rec);
}

export function decodeMetricsRecord(buf: Buffer): MetricsRecord {
  return windowMetricsCodec.decode(buf);
}
