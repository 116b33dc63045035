import kafkajs, { CompressionTypes } from 'kafkajs';
import { compressFrame, decompressFrame } from 'lz4-napi';
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

export const lz4Codec = {
  /** kafkajs passes its Encoder; `buffer` is the encoded records. */
  compress: (encoder: { buffer: Buffer }): Promise<Buffer> => compressFrame(encoder.buffer),
  decompress: (buffer: Buffer): Promise<Buffer> => decompressFrame(buffer),
};

// A default import: Node's ESM loader does not see CompressionCodecs among kafkajs's named exports.
kafkajs.CompressionCodecs[CompressionTypes.LZ4] = () => lz4Codec;

export function compressionType(c: KafkaCompression): CompressionTypes {
  if (c === 'gzip') return CompressionTypes.GZIP;
  if (c === 'lz4') return CompressionTypes.LZ4;
  return CompressionTypes.None;
}
