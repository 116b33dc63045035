/**
 * Per window row: what the processor and the sink do with one row of qoe.metrics.v1 — build the
 * record from a window output, Avro-encode it, decode it, make the qoe_metrics row, make it
 * JSON-ready — each as µs per call, and the hand-written ways of today (the record written from the
 * output, the JSON line read from the record's bytes), with JSON.stringify of the same row (what the ClickHouse client
 * does with it) as the baseline measured in the same run. Rows come from a simulated run.
 *
 *   npx tsx bench/rows.ts [--calls 100000] [--rounds 3]
 */
import { parseArgs } from 'node:util';
import { planRun } from '../sim/simulate.js';
import { normalizeEvent } from '../ingest/normalize.js';
import type { BeaconEvent } from '../ingest/beacon-schema.js';
import { advance, applyEvent, emptyPartitionState, type WindowOutput } from '../processors/partition.js';
import { createMetricsRecordWriter, decodeMetricsRecord, encodeMetricsRecord, toMetricsRecord } from '../processors/metrics-record.js';
import { metricsJsonRows } from '../processors/metrics-json.js';
import { metricsRows } from '../processors/sink.js';
import { toJsonRow } from '../lib/store/common.js';
import { machineLine, median } from './machine.js';

const { values } = parseArgs({ options: { calls: { type: 'string', default: '100000' }, rounds: { type: 'string', default: '3' } } });
const calls = Number(values.calls);
const rounds = Number(values.rounds);

const settings = { windowMs: 10_000, graceMs: 7500, sessionTimeoutMs: 60_000, maxSessions: 100_000, maxClockAheadMs: 5000, maxClockSkewMs: 300_000, ebvsMinMs: 0 };
const run = planRun({ views: 400, seed: 42, startMs: 1_767_225_600_000, periodMs: 300_000 });
const ps = emptyPartitionState();
const outs: WindowOutput[] = [];
for (const e of run.views.flatMap((v) => v.events).sort((a, b) => a.ts - b.ts)) {
  applyEvent(ps, settings, normalizeEvent(e as BeaconEvent, undefined, { receivedAtMs: e.ts, clientHash: 'x' }));
  outs.push(...advance(ps, settings, e.ts - 1000));
}
const recs = outs.map((o) => toMetricsRecord(o, 10_000, 0));
const bufs = recs.map(encodeMetricsRecord);
const decoded = bufs.map(decodeMetricsRecord);
const rows = decoded.map((r, i) => metricsRows(r, 0, i).metrics);
const writeMetricsRecord = createMetricsRecordWriter();

let sink = 0;
const variants: Record<string, (i: number) => unknown> = {
  'JSON.stringify(row) (baseline)': (i) => JSON.stringify(rows[i]),
  toMetricsRecord: (i) => toMetricsRecord(outs[i]!, 10_000, 0),
  encodeMetricsRecord: (i) => encodeMetricsRecord(recs[i]!),
  decodeMetricsRecord: (i) => decodeMetricsRecord(bufs[i]!),
  metricsRows: (i) => metricsRows(decoded[i]!, 0, i),
  toJsonRow: (i) => toJsonRow(rows[i]!),
  // What the processor does per row since the fifteenth session, and what the sink does.
  'write the record (processor)': (i) => writeMetricsRecord(outs[i]!, 10_000, 0),
  'record → JSON line (sink)': (i) => metricsJsonRows(bufs[i]!, 0, i),
  'decode → row → JSON (sink before)': (i) => JSON.stringify(toJsonRow(metricsRows(decodeMetricsRecord(bufs[i]!), 0, i).metrics)),
};
const results = new Map<string, number[]>(Object.keys(variants).map((k) => [k, []]));
console.log(machineLine());
console.log(`${outs.length} window rows from ${run.views.length} simulated views; ${calls} calls per variant and round (round 0 warms up)`);
for (let round = 0; round <= rounds; round++) {
  for (const [name, fn] of Object.entries(variants)) {
    const t0 = performance.now();
    for (let c = 0; c < calls; c++) {
      const out = fn(c % outs.length);
      if (out !== undefined) sink += 1;
    }
    if (round > 0) results.get(name)!.push(((performance.now() - t0) * 1000) / calls);
  }
}
const base = median(results.get('JSON.stringify(row) (baseline)')!);
for (const [name, us] of results) console.log(`${name.padEnd(32)} ${median(us).toFixed(2).padStart(6)} µs/row  (${(median(us) / base).toFixed(2)}× baseline)   runs: ${us.map((u) => u.toFixed(2)).join(' ')}`);
if (sink === 0) console.log('');
