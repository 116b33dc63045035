/**
 * Kafka's default partitioner for keyed records, so the memory bus and a Kafka cluster put a key on the
 * same partition: `toPositive(murmur2(utf8(key))) % numPartitions`
 * (org.apache.kafka.clients.producer.internals.BuiltInPartitioner.partitionForKey, and kafkajs's
 * DefaultPartitioner since 2.0). murmur2 is the Java client's `Utils.murmur2`: 32-bit MurmurHash2,
 * seed 0x9747b28c, little-endian 4-byte blocks, Java `int` arithmetic.
 */

const SEED = 0x9747b28c;
const M = 0x5bd1e995;
const R = 24;

/** Utils.murmur2 over raw bytes; returns a signed 32-bit integer like the Java `int`. */
export function murmur2(data: Uint8Array): number {
  const length = data.length;
  let h = (SEED ^ length) | 0;
  const blocks = length >>> 2;
  for (let i = 0; i < blocks; i++) {
    const i4 = i * 4;
    let k = (data[i4] ?? 0) | ((data[i4 + 1] ?? 0) << 8) | ((data[i4 + 2] ?? 0) << 16) | ((data[i4 + 3] ?? 0) << 24);
    k = Math.imul(k, M);
    k ^= k >>> R;
    k = Math.imul(k, M);
    h = Math.imul(h, M);
    h ^= k;
  }
  // Tail: the Java switch falls through 3 → 2 → 1.
  const tail = length & ~3;
  const rest = length & 3;
  if (rest === 3) h ^= (data[tail + 2] ?? 0) << 16;
  if (rest >= 2) h ^= (data[tail + 1] ?? 0) << 8;
  if (rest >= 1) {
    h ^= data[tail] ?? 0;
    h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

/** Utils.toPositive: clears the sign bit (not Math.abs, which differs for negatives). */
export function toPositive(n: number): number {
  return n & 0x7fffffff;
}

/** The partition Kafka's default partitioner picks for `key` (UTF-8 encoded). */
export function partitionForKey(key: string, numPartitions: number): number {
  if (!Number.isInteger(numPartitions) || numPartitions < 1) {
    throw new RangeError(`numPartitions must be a positive integer, got ${numPartitions}`);
  }
  return toPositive(murmur2(Buffer.from(key, 'utf8'))) % numPartitions;
}
