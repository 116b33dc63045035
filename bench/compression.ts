/**
 * Kafka record batch codecs on qoe-stream's own records: bytes after compression and CPU per batch,
 * gzip (kafkajs's built-in, the baseline) vs LZ4 (lib/bus/kafka-codecs.ts), in one run.
 *
 *   npx tsx bench/compression.ts [--events 100000] [--batch 20,200,1000] [--rounds 3]
 *
 * The input is what the codecs compress on the Kafka path: the records section of a record batch
 * (kafkajs's own Record encoder: key, value, varint framing) of qoe.beacons.v1 records as ingest writes
 * them (simulated players, bench/events.ts), grouped per partition in batches of N records in arrival
 * order. Each codec runs through the same call kafkajs makes (its codec's compress(encoder)), so
 * the libuv thread hop of both is included; CPU = process user + system time.
 */
import { parseArgs } from 'node:util';
import { createRequire } from 'node:module';
import { lz4Codec } from '../lib/bus/kafka-codecs.js';
import { decompressFrameSync } from 'lz4-napi';
import { fmt, machineLine, median } from './machine.js';
import { encodeStream, simulatedStream } from './events.js';

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '100000' },
    batch: { type: 'string', default: '20,200,1000' },
    rounds: { type: 'string', default: '3' },
  },
});

const require = createRequire(import.meta.url);
const Encoder = require('kafkajs/src/protocol/encoder') as new () => { buffer: Buffer; writeEncoder(e: unknown): unknown };
const Record = require('kafkajs/src/protocol/recordBatch/record/v0') as (r: { key: Buffer; value: Buffer; offsetDelta: number; timestampDelta: number; headers: object }) => unknown;
const gzip = (require('kafkajs/src/protocol/message/compression/gzip') as { compress(e: { buffer: Buffer }): Promise<Buffer> }).compress;

const sizes = values.batch.split(',').map(Number);
const rounds = Number(values.rounds);
console.log(machineLine());
const stream = simulatedStream({ views: Math.ceil(Number(values.events) / 28 * 1.6), periodMs: 600_000, limit: Number(values.events) });
const records = encodeStream(stream);
console.log(`events=${records.length} batch sizes=${sizes.join(',')} rounds=${rounds}`);

function batches(n: number): Array<{ buffer: Buffer }> {
  const byPartition = new Map<number, Array<{ key: Buffer; value: Buffer }>>();
  const out: Array<{ buffer: Buffer }> = [];
  const flush = (list: Array<{ key: Buffer; value: Buffer }>): void => {
    const enc = new Encoder();
    list.forEach((r, i) => enc.writeEncoder(Record({ key: r.key, value: r.value, offsetDelta: i, timestampDelta: i, headers: {} })));
    out.push({ buffer: enc.buffer });
  };
  for (const [i, r] of records.entries()) {
    const list = byPartition.get(r.partition) ?? [];
    list.push({ key: Buffer.from(stream.events[i]?.sessionId ?? ''), value: r.value });
    byPartition.set(r.partition, list);
    if (list.length === n) {
      flush(list);
      byPartition.set(r.partition, []);
    }
  }
  for (const list of byPartition.values()) if (list.length > 0) flush(list);
  return out;
}

const cpu = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

async function measure(codec: (e: { buffer: Buffer }) => Promise<Buffer>, input: Array<{ buffer: Buffer }>): Promise<{ bytes: number; cpuUs: number }> {
  let bytes = 0;
  const c0 = cpu();
  // Up to 8 in flight, as several partitions' batches of one request are.
  for (let i = 0; i < input.length; i += 8) {
    const done = await Promise.all(input.slice(i, i + 8).map((b) => codec(b)));
    for (const d of done) bytes += d.length;
  }
  return { bytes, cpuUs: ((cpu() - c0) * 1e6) / input.length };
}

for (const n of sizes) {
  const input = batches(n);
  const raw = input.reduce((s, b) => s + b.buffer.length, 0);
  // Round trip check: LZ4 frames decode to the input (and gzip to what zlib wrote).
  for (const b of input.slice(0, 20)) {
    if (!decompressFrameSync(await lz4Codec.compress(b)).equals(b.buffer)) throw new Error('lz4 round trip differs');
  }
  const res: Record<'gzip' | 'lz4', { bytes: number; cpu: number[] }> = { gzip: { bytes: 0, cpu: [] }, lz4: { bytes: 0, cpu: [] } };
  for (let r = 0; r < rounds; r++) {
    for (const [name, codec] of (r % 2 === 0 ? [['gzip', gzip], ['lz4', lz4Codec.compress]] : [['lz4', lz4Codec.compress], ['gzip', gzip]]) as Array<['gzip' | 'lz4', typeof gzip]>) {
      const m = await measure(codec, input);
      res[name].bytes = m.bytes;
      res[name].cpu.push(m.cpuUs);
    }
  }
  const g = median(res.gzip.cpu);
  const l = median(res.lz4.cpu);
  console.log(
    `RESULT ${n} records/batch (${input.length} batches, ${fmt(raw / input.length)} B each): ` +
    `gzip ${(raw / res.gzip.bytes).toFixed(1)}× smaller, ${fmt(g)} µs CPU/batch; ` +
    `lz4 ${(raw / res.lz4.bytes).toFixed(1)}× smaller, ${fmt(l)} µs CPU/batch; lz4/gzip CPU ${(l / g).toFixed(2)}, bytes ${(res.lz4.bytes / res.gzip.bytes).toFixed(2)}`,
  );
}
