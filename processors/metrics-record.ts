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

export function toMetricsRecord(out: WindowOutput, windowMs: number, sourcePartition: number): MetricsRecord {
  const rec: MetricsRecord = { window_start_ms: out.windowStartMs, window_ms: windowMs, source_partition: sourcePartition, errors: [] };
  for (let i = 0; i < DIMENSIONS.length; i++) rec[DIM_COLUMNS[i]!] = out.dims[DIMENSIONS[i]!];
  const acc: WindowAcc = out.acc;
  for (let i = 0; i < SUM_FIELDS.length; i++) rec[SUM_COLUMNS[i]!] = acc[SUM_FIELDS[i]!];
  const vst = histogramToArrays(acc.vstHist);
  rec.vst_hist_keys = vst.keys;
  rec.vst_hist_counts = vst.counts;
  const ttfb = histogramToArrays(acc.ttfbHist);
  rec.ttfb_hist_keys = ttfb.keys;
  rec.ttfb_hist_counts = ttfb.counts;
  const br = histogramToArrays(acc.bitrateMs);
  rec.bitrate_keys = br.keys;
  rec.bitrate_playing_ms = br.counts;
  for (const [k, count] of acc.errors) {
    if (count === 0) continue;
    const sep = k.indexOf(':');
    rec.errors.push({ error_code: k.slice(sep + 1), fatal: k.slice(0, sep) === '1', count });
  }
  return rec;
}

export function encodeMetricsRecord(rec: MetricsRecord): Buffer {
  return windowMetricsCodec.encode(rec);
}

export function decodeMetricsRecord(buf: Buffer): MetricsRecord {
  return windowMetricsCodec.decode(buf);
}
