import './kafkajs-patches.js';
import kafkajs, { CompressionTypes } from 'kafkajs';
import { compressFrame, compressFrameSync, decompressFrame, decompressFrameSync } from 'lz4-napi';
import type { KafkaCompression } from './types.js';

/**
 * Record batch compression of the Kafka bus (`QOE_KAFKA_COMPRESSION`). kafkajs has gzip built in;
 * LZ4 is registered here (lz4-napi: Rust's lz4_flex with prebuilt binaries from npm, no build
 * step). Kafka's LZ4 codec is the standard LZ4 frame format (KIP-57): magic 04 22 4D 18,
 * independent blocks, header checksum; lz4_flex writes exactly that with 64 KB blocks, and the
 * broker checks every batch it accepts (test/bus-kafka.test.ts writes each codec through a real
 * broker, reads the log back with Kafka's own DumpLogSegments, and reads what Kafka's Java producer wrote).
 * LZ4 costs a fraction of gzip's CPU for somewhat larger batches (bench/README.md), the usual
 * trade of Kafka deployments that are CPU bound; consumers here read LZ4 batches whichever
 * producer wrote them.
 */

/**
 * Up to these sizes a batch is (de)compressed on the calling thread; larger ones in libuv's pool.
 * Handing a frame to the pool and back costs more than a small frame's work: live, a fetch brings
 * many small batches (what the producers sent since the last one — ~500 bytes each in the live
 * bench, 115,000 of them per million events) and each async call took ~30 µs of the event loop's
 * time against ~3 µs for the work itself: +14 % events per core live (bench/README.md, 2026-12-01
 * thirteenth session). Large frames come in a backlog's fetches (~30 KB each, hundreds per fetch):
 * decompressed in the pool, they overlap the event loop's work on the records, as before.
 */
export const LZ4_SYNC_MAX_BYTES = { compress: 256 * 1024, decompress: 16 * 1024 };

export const lz4Codec = {
  /** kafkajs passes its Encoder; `buffer` is the encoded records. */
  compress: async (encoder: { buffer: Buffer }): Promise<Buffer> =>
    encoder.buffer.length <= LZ4_SYNC_MAX_BYTES.compress ? compressFrameSync(encoder.buffer) : compressFrame(encoder.buffer),
  // async: a corrupt frame is a rejected promise on either path, as kafkajs expects.
  decompress: async (buffer: Buffer): Promise<Buffer> =>
    buffer.length <= LZ4_SYNC_MAX_BYTES.decompress ? decompressFrameSync(buffer) : decompressFrame(buffer),
};

// A default import: Node's ESM loader does not see CompressionCodecs among kafkajs's named exports.
kafkajs.CompressionCodecs[CompressionTypes.LZ4] = () => lz4Codec;

export function compressionType(c: KafkaCompression): CompressionTypes {
  if (c === 'gzip') return CompressionTypes.GZIP;
  if (c === 'lz4') return CompressionTypes.LZ4;
  return CompressionTypes.None;
}
