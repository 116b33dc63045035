import type avro from 'avsc';

/**
 * Avro on the wire: Avro single-object encoding (Avro spec, "Single object encoding"):
 *   0xC3 0x01 | 8-byte little-endian CRC-64-AVRO fingerprint of the writer schema's Parsing
 *   Canonical Form | the Avro binary body.
 * Readers look the fingerprint up among the schema versions they know and resolve the writer's
 * schema into their own, so records written by the previous schema version keep decoding.
 */

const EMPTY = 0xc15d213aa4d7a795n;
const MASK = 0xffffffffffffffffn;
const TABLE: bigint[] = Array.from({ length: 256 }, (_, i) => {
  let fp = BigInt(i);
  for (let j = 0; j < 8; j++) fp = (fp >> 1n) ^ (EMPTY & (-(fp & 1n) & MASK));
  return fp;
});

/** CRC-64-AVRO (Rabin) of `bytes`, as the spec's reference implementation computes it. */
export function crc64Avro(bytes: Uint8Array): bigint {
  let fp = EMPTY;
  for (const b of bytes) fp = (fp >> 8n) ^ (TABLE[Number((fp ^ BigInt(b)) & 0xffn)] ?? 0n);
  return fp;
}

/** Parsing Canonical Form of a type's schema (avsc's schema() default). */
export function canonicalForm(type: avro.Type): string {
  return JSON.stringify(type.schema());
}

export function fingerprintOf(type: avro.Type): Buffer {
  const out = Buffer.alloc(8);
  out.writeBigUInt64LE(crc64Avro(Buffer.from(canonicalForm(type), 'utf8')));
  return out;
}

const MAGIC_0 = 0xc3;
const MAGIC_1 = 0x01;
export const HEADER_BYTES = 10;

export interface AvroCodec<T> {
  encode(value: T): Buffer;
  decode(buf: Buffer): T;
  readonly fingerprint: Buffer;
}

/**
 * A codec for `current` that also reads every schema in `previous` (older versions, resolved into
 * the current one). An unknown fingerprint or a missing header is an error: such records are
 * dead-lettered by the caller, never guessed at.
 */
export function createAvroCodec<T>(current: avro.Type, previous: readonly avro.Type[] = []): AvroCodec<T> {
  const fingerprint = fingerprintOf(current);
  const header = Buffer.from([MAGIC_0, MAGIC_1, ...fingerprint]);
  const readers = new Map<string, (body: Buffer) => T>();
  readers.set(fingerprint.toString('hex'), (body) => current.fromBuffer(body) as T);
  for (const writer of previous) {
    const resolver = current.createResolver(writer);
    readers.set(fingerprintOf(writer).toString('hex'), (body) => current.fromBuffer(body, resolver) as T);
  }
  return {
    fingerprint,
    encode(value) {
      return Buffer.concat([header, current.toBuffer(value)]);
    },
    decode(buf) {
      if (buf.length < HEADER_BYTES || buf[0] !== MAGIC_0 || buf[1] !== MAGIC_1) {
        throw new Error('not an Avro single-object encoded record (missing C3 01 header)');
      }
      const fp = buf.subarray(2, HEADER_BYTES).toString('hex');
      const read = readers.get(fp);
      if (!read) throw new Error(`unknown writer schema fingerprint ${fp}`);
      return read(buf.subarray(HEADER_BYTES));
    },
  };
}
