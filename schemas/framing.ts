import type avro from 'avsc';
import { QoeError } from '../lib/errors.js';

/**
 * Avro on the wire, in one of two framings of the same Avro binary body (docs/architecture.md
 * "Wire format"):
 * - Avro single-object encoding (Avro spec, "Single object encoding"), the default:
 *     0xC3 0x01 | 8-byte little-endian CRC-64-AVRO fingerprint of the writer schema's Parsing
 *     Canonical Form | the Avro binary body.
 * - Confluent's wire format, when a schema registry is configured (lib/registry/):
 *     0x00 | 4-byte big-endian schema id assigned by the registry | the Avro binary body.
 * The first byte tells them apart. Codecs decode single-object records; a registry-aware bus
 * (lib/registry/wire.ts) turns a Confluent header into the single-object header of the same writer
 * schema before decoding, so both framings reach one decoder.
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
const FINGERPRINT_BYTES = HEADER_BYTES - 2;
const CONFLUENT_MAGIC = 0x00;
export const CONFLUENT_HEADER_BYTES = 5;

export type Framing = 'single-object' | 'confluent';

/** The framing a record carries, told by its first bytes; undefined = neither (not an Avro record of ours). */
export function framingOf(buf: Uint8Array): Framing | undefined {
  if (buf.length >= HEADER_BYTES && buf[0] === MAGIC_0 && buf[1] === MAGIC_1) return 'single-object';
  if (buf.length >= CONFLUENT_HEADER_BYTES && buf[0] === CONFLUENT_MAGIC) return 'confluent';
  return undefined;
}

/** Confluent header: magic byte 0, then the schema id as a big-endian (signed, as Java writes it) 32-bit int. */
export function confluentHeader(schemaId: number): Buffer {
  const out = Buffer.alloc(CONFLUENT_HEADER_BYTES);
  out.writeInt32BE(schemaId, 1);
  return out;
}

/** The schema id of a Confluent-framed record (check framingOf first). */
export function confluentSchemaId(buf: Buffer): number {
  return buf.readInt32BE(1);
}

/** The writer fingerprint of a single-object record (check framingOf first). */
export function singleObjectFingerprint(buf: Buffer): Buffer {
  return buf.subarray(2, HEADER_BYTES);
}

/** The same Avro body under a Confluent header. */
export function singleObjectToConfluent(buf: Buffer, schemaId: number): Buffer {
  const out = Buffer.allocUnsafe(buf.length - HEADER_BYTES + CONFLUENT_HEADER_BYTES);
  out[0] = CONFLUENT_MAGIC;
  out.writeInt32BE(schemaId, 1);
  buf.copy(out, CONFLUENT_HEADER_BYTES, HEADER_BYTES);
  return out;
}

/** The same Avro body under the single-object header of `fingerprint` (the schema the id names). */
export function confluentToSingleObject(buf: Buffer, fingerprint: Buffer): Buffer {
  const out = Buffer.allocUnsafe(buf.length - CONFLUENT_HEADER_BYTES + HEADER_BYTES);
  out[0] = MAGIC_0;
  out[1] = MAGIC_1;
  fingerprint.copy(out, 2);
  buf.copy(out, HEADER_BYTES, CONFLUENT_HEADER_BYTES);
  return out;
}

/** Writer schemas learnt at run time (from a registry) per codec; past it a new one is refused. */
export const MAX_LEARNT_WRITERS = 32;

export interface AvroCodec<T> {
  encode(value: T): Buffer;
  decode(buf: Buffer): T;
  readonly fingerprint: Buffer;
  /** The current schema: what encode writes and decode returns. */
  readonly type: avro.Type;
  /** Whether records of the writer schema with this fingerprint (hex) decode. */
  reads(fingerprintHex: string): boolean;
  /**
   * Also read records written with `writer` (a schema a registry served, e.g. a newer producer's),
   * resolved into the current schema. Keyed by the schema's fingerprint, i.e. by content, so one
   * codec serves any number of registries. Throws when Avro's resolution rules reject the pair or
   * MAX_LEARNT_WRITERS is reached.
   */
  addWriter(writer: avro.Type): void;
}

/**
 * A codec for `current` that also reads every schema in `previous` (older versions, resolved into
 * the current one). An unknown fingerprint or a missing header is an error: such records are
 * dead-lettered by the caller, never guessed at.
 */
export function createAvroCodec<T>(current: avro.Type, previous: readonly avro.Type[] = []): AvroCodec<T> {
  const fingerprint = fingerprintOf(current);
  const header = Buffer.from([MAGIC_0, MAGIC_1, ...fingerprint]);
  // A reader takes the whole record and reads its body from HEADER_BYTES on (no subarray per record);
  // the checks are fromBuffer's.
  const reader = (resolver?: avro.Resolver) => (buf: Buffer): T => {
    const { value, offset } = current.decode(buf, HEADER_BYTES, resolver);
    if (offset < 0) throw new Error('truncated buffer');
    if (offset < buf.length) throw new Error('trailing data');
    return value as T;
  };
  const readers = new Map<string, (buf: Buffer) => T>();
  readers.set(fingerprint.toString('hex'), reader());
  const resolving = (writer: avro.Type): ((buf: Buffer) => T) => reader(current.createResolver(writer));
  for (const writer of previous) readers.set(fingerprintOf(writer).toString('hex'), resolving(writer));
  const builtIn = readers.size;
  // The reader of the last fingerprint seen: records of one topic nearly always share it, so most
  // records cost a byte comparison rather than a hex string and a map lookup.
  let lastFingerprint = Buffer.alloc(0);
  let lastRead: ((buf: Buffer) => T) | undefined;
  // Encoding goes through one scratch buffer (grown when a record does not fit), then one exact copy.
  let scratch = Buffer.alloc(4096);
  header.copy(scratch);
  return {
    fingerprint,
    type: current,
    encode(value) {
      let end = current.encode(value, scratch, HEADER_BYTES);
      if (end < 0) {
        scratch = Buffer.alloc(Math.max(scratch.length * 2, scratch.length - end));
        header.copy(scratch);
        end = current.encode(value, scratch, HEADER_BYTES);
      }
      const out = Buffer.allocUnsafe(end);
      scratch.copy(out, 0, 0, end);
      return out;
    },
    decode(buf) {
      if (buf.length < HEADER_BYTES || buf[0] !== MAGIC_0 || buf[1] !== MAGIC_1) throw notSingleObject(buf);
      if (lastRead !== undefined && buf.compare(lastFingerprint, 0, FINGERPRINT_BYTES, 2, HEADER_BYTES) === 0) return lastRead(buf);
      const fp = buf.subarray(2, HEADER_BYTES).toString('hex');
      const read = readers.get(fp);
      if (!read) throw new QoeError('QOE_ERR_SCHEMA_UNKNOWN_WRITER', `unknown writer schema fingerprint ${fp}`);
      lastFingerprint = Buffer.from(buf.subarray(2, HEADER_BYTES));
      lastRead = read;
      return read(buf);
    },
    reads: (fp) => readers.has(fp),
    addWriter(writer) {
      const fp = fingerprintOf(writer).toString('hex');
      if (readers.has(fp)) return;
      if (readers.size - builtIn >= MAX_LEARNT_WRITERS) {
        throw new QoeError('QOE_ERR_SCHEMA_UNKNOWN_WRITER', `writer schema ${fp} refused: ${MAX_LEARNT_WRITERS} learnt writer schemas already`);
      }
      readers.set(fp, resolving(writer));
    },
  };
}

/** Off the hot path: why a record is not single-object encoded. */
function notSingleObject(buf: Buffer): Error {
  if (framingOf(buf) === 'confluent') {
    return new QoeError('QOE_ERR_SCHEMA_UNKNOWN_WRITER',
      `Confluent-framed record with schema id ${confluentSchemaId(buf)} that no schema registry resolved (is QOE_SCHEMA_REGISTRY_URL set?)`);
  }
  return new Error('not an Avro single-object encoded record (missing C3 01 header)');
}

interface AvroField {
  name: string;
  type: { typeName: string; types?: Array<{ typeName: string }>; symbols?: string[] };
}

/**
 * A record type's fields as `name:type` (a union as its branches, `null|int`), for code that reads or
 * writes the record by hand: it states the layout it was written for and calls this at load, so a
 * changed schema stops the process at start rather than misreading records. Returns the fields.
 */
export function checkRecordLayout(type: avro.Type, expected: readonly string[], owner: string): AvroField[] {
  const fields = (type as unknown as { fields: AvroField[] }).fields;
  const name = (t: AvroField['type']): string => (t.typeName.startsWith('union:') ? (t.types ?? []).map((u) => u.typeName).join('|') : t.typeName);
  const actual = fields.map((f) => `${f.name}:${name(f.type)}`);
  if (actual.join(',') !== expected.join(',')) throw new Error(`${type.name ?? 'the schema'} changed (${actual.join(', ')}): update ${owner}`);
  return fields;
}
