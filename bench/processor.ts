/**
 * Processor events/s on one core: decode Avro + applyEvent + periodic advance, on the simulator's
 * session event stream; the same without decode; and the decode-only loop as the baseline, each
 * variant interleaved over several rounds in one process (median reported).
 *
 *   npx tsx bench/processor.ts [--events 300000] [--rounds 3] [--only <variant substring> | =<variant name>]
 *                              [--period-ms 1800000] [--views N] [--window-dims all|<QOE_WINDOW_DIMENSIONS>]
 *
 * --period-ms / --views set how dense the traffic is (attempts spread over the period), and with it
 * how many events share a window × dimension tuple; --window-dims bounds the tuples.
 */
import { parseArgs } from 'node:util';
import { createCore, decodeOnly, liveSessions, runDecoded, runEncoded } from './core.js';
import { encodeStream, simulatedStream } from './events.js';
import { fmt, machineLine, median } from './machine.js';
import { sessionEventType } from '../schemas/codec.js';
import { HEADER_BYTES } from '../schemas/framing.js';

const { values } = parseArgs({ options: {
  events: { type: 'string', default: '300000' },
  rounds: { type: 'string', default: '3' },
  /** Run only variants whose name contains this (e.g. under --cpu-prof). */
  only: { type: 'string', default: '' },
  'period-ms': { type: 'string', default: '1800000' },
  views: { type: 'string', default: '' },
  'window-dims': { type: 'string', default: 'all' },
} });
const windowDims = values['window-dims'];
const limit = Number(values.events);
const rounds = Number(values.rounds);

console.log(machineLine());
const t0 = performance.now();
// ~28 events per view; 1.6× the views needed so the cut at `limit` falls mid-population (sessions open).
const views = values.views === '' ? Math.ceil((limit / 28) * 1.6) : Number(values.views);
const stream = simulatedStream({ views, periodMs: Number(values['period-ms']), limit });
const records = encodeStream(stream);
const n = records.length;
const avgBytes = records.reduce((a, r) => a + r.value.length, 0) / n;
const spanS = ((records[n - 1]?.receivedAtMs ?? 0) - (records[0]?.receivedAtMs ?? 0)) / 1000;
console.log(`input: ${fmt(n)} events from ${fmt(stream.views)} simulated views over ${fmt(spanS)} s of arrivals, avg Avro record ${avgBytes.toFixed(0)} B (generated in ${fmt(performance.now() - t0)} ms); window dimensions: ${windowDims}`);

function timed(fn: () => void): number {
  const start = performance.now();
  fn();
  return n / ((performance.now() - start) / 1000);
}

const variants: Record<string, () => number> = {
  'decode only (baseline)': () => timed(() => void decodeOnly(records)),
  'decode + apply + advance': () => timed(() => runEncoded(createCore(windowDims), records)),
  // As the Kafka processor: plus the changelog diff of every partition after each batch, committed.
  'decode + apply + advance + changelog': () => timed(() => runEncoded(createCore(windowDims, { changelog: true }), records)),
  'apply + advance (pre-decoded)': () => timed(() => runDecoded(createCore(windowDims), stream.events, stream.partitions)),
  // The floor: avsc's own binary decode of the body, no framing check, no mapping to SessionEvent.
  'raw avsc decode (floor)': () => timed(() => void records.reduce((a, r) => a + (sessionEventType.fromBuffer(r.value.subarray(HEADER_BYTES)) as { seq: number }).seq, 0)),
};
for (const k of Object.keys(variants)) if (values.only.startsWith('=') ? k !== values.only.slice(1) : !k.includes(values.only)) delete variants[k];
const results = new Map<string, number[]>(Object.keys(variants).map((k) => [k, []]));

// Round 0 warms up the JIT and is not counted.
for (let round = 0; round <= rounds; round++) {
  for (const [name, fn] of Object.entries(variants)) {
    const rate = fn();
    if (round > 0) results.get(name)?.push(rate);
  }
}

const med = (k: string): number => median(results.get(k) ?? []);
for (const [name, xs] of results) {
  console.log(`${name.padEnd(32)} median ${fmt(med(name)).padStart(10)} events/s   runs: ${xs.map(fmt).join(' ')}`);
}
const core = createCore(windowDims);
runEncoded(core, records);
const full = med('decode + apply + advance');
const decode = med('decode only (baseline)');
console.log(`live sessions at the end: ${fmt(liveSessions(core))}; window rows emitted: ${fmt(core.outputs)} (${(core.outputs / n).toFixed(3)} per event); dead letters: ${fmt(core.deadLetters)}`);
console.log(`ratio full / decode-only = ${(full / decode).toFixed(2)} (decode is ${((full / decode) * 100).toFixed(0)}% of the full time)`);
console.log(`RESULT processor events/s/core = ${fmt(full)} (target >= 300,000: ${full >= 300_000 ? 'met' : 'MISSED'}); without decode ${fmt(med('apply + advance (pre-decoded)'))}`);
