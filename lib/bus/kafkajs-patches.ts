import { createRequire } from 'node:module';
import { createSendMessages } from './kafkajs-send.js';

/**
 * Patches of kafkajs 2.2.4 internals, applied before kafkajs is first loaded (every adapter file
 * imports this module before 'kafkajs'). Each replaces a module that another kafkajs module takes at
 * its own load time, so the module cache entry is filled before kafkajs is required; `kafkajsPatched`
 * says whether that was in time (false if something in the process loaded kafkajs first).
 *
 * 1. `producer/groupMessagesPerPartition.js` builds each partition's list with `[...current, message]`:
 *    O(n²) copies for n records to one partition. The processor sends a transaction's changelog
 *    records to one partition and a window's metrics rows under one key, so thousands of records per
 *    send are normal: in a profile of bench/kafka.ts (b) this function and its garbage were the
 *    largest kafkajs cost. The replacement returns the same object (partition → messages in input
 *    order) in O(n).
 * 2. `consumer/filterAbortedMessages.js` (read_committed) assumes the fetch response lists aborted
 *    transactions in first-offset order and starts skipping at most one of them per record. Brokers
 *    list them in abort order (the Java client sorts them: "the entries in the abort index are sorted
 *    by abort order, but not necessarily first offset order", apache/kafka PR review of KIP-98). When
 *    a killed processor's partition producers each leave a transaction open on a metrics partition
 *    and the next owner aborts them in another order than they began, kafkajs handed the leading
 *    records of the earlier one to the sink as if committed: doubled rows after a kill -9. The
 *    replacement does what the Java client does: aborted transactions by first offset, every one that
 *    has begun at a record is skipped until its producer's abort marker.
 * 3. `protocol/encoder.js` allocates each buffer with `Buffer.alloc`: zero-filled, and a fresh
 *    ArrayBuffer each time, even for the 512 bytes every record of a produce request starts with. In
 *    a profile of bench/kafka.ts (b) those allocations and the garbage collection they cause were the
 *    largest kafkajs cost. The encoder only ever reads bytes it wrote (every write lands at
 *    its offset after `ensureAvailable`, and `buffer` is the written prefix), so the replacement
 *    allocates with `Buffer.allocUnsafe`, which takes small buffers from Node's shared pool. Its
 *    varint writers built each varint as an array, then a Buffer, and `writeVarLong` and
 *    `sizeOfVarLong` (every record's timestamp delta) went through 64-bit Long objects: for safe
 *    integers they now write and count the same bytes with number arithmetic (other values take
 *    kafkajs's own path).
 * 4. `protocol/requests/produce/v3/request.js` (which v4–v7 wrap) copies every message into a new
 *    object (`{ ...message, offsetDelta, timestampDelta }`), encodes each record into an Encoder of
 *    its own (512 bytes at least), then copies them all into the batch. In a profile of
 *    bench/kafka.ts (b) that was the largest kafkajs cost left (~7 % of the processor's CPU). The
 *    replacement writes a partition's records straight into one Encoder and builds the record batch
 *    as recordBatch/v0 does, byte for byte (a property test compares the two). Records with headers,
 *    or keys and values other than Buffers, strings and null, still go through kafkajs's Record.
 * 5. `protocol/recordBatch/record/v0/decoder.js` (every fetched record) reads the timestamp delta
 *    as a 64-bit Long built byte by byte (a BigInt and a Long per operation), adds it and the offset
 *    delta to the batch's first timestamp and offset as Longs, and folds an empty header list into a
 *    new object with reduce. In an allocation profile of bench/kafka.ts (b) that was the largest
 *    allocator of the processor (~1.8 kB per record). The replacement does the same with numbers
 *    where every value is a safe integer (timestamps and offsets are) and takes kafkajs's own path
 *    otherwise; a property test compares the decoded records with kafkajs's. The records it returns
 *    (`FetchedRecord`) keep the offset and timestamp as numbers and make kafkajs's decimal strings
 *    only when read, keep the key and value as positions in the batch's bytes (the slices made
 *    when read), and share one empty headers object.
 * 6. `consumer/batch.js` (every fetched partition) keeps the records at or after the fetched offset
 *    by parsing each record's offset string into a 64-bit Long (`Long.fromValue(offset).gte(...)`),
 *    the largest kafkajs cost of the consumer left after 5. The replacement compares the numbers
 *    `FetchedRecord` holds (Long where an offset is not a safe integer), with the same filters after;
 *    a filter that keeps every record hands on the array it was given rather than a copy.
 * 7. `protocol/recordBatch/v0/decoder.js` (every fetched record batch) cuts each record out of the
 *    batch as a Buffer of its own and reads it with a Decoder of its own: two objects per record
 *    that a record then held (its bytes) until the whole fetch was processed, each copied and
 *    promoted by the garbage collections meanwhile. In an allocation profile of what survived the
 *    young generation (bench/kafka.ts (b), 10 MiB fetches) kafkajs's fetch decoding was the largest
 *    part. The replacement reads each record where it lies in the (decompressed) batch. It stops
 *    at the first sign that kafkajs's slice would read other bytes (a field past the record's
 *    length, a negative length other than −1, headers) and reads that record as kafkajs does, from
 *    a slice. A property test compares whole, truncated and changed batches decoded both ways.
 *    What a batch's records share (the bytes, kafkajs's batch fields, the first timestamp and
 *    offset as numbers) is held once per batch (`FetchedBatchBase`), and a record holds its
 *    timestamp as the delta from the batch's first (a small integer, where a timestamp in ms is a
 *    heap number of its own): ~96 bytes per record held instead of ~136.
 * 8. `producer/sendMessages.js` (every send) can write records twice or drop them when a partition
 *    leader dies mid-send; the replacement and why are in kafkajs-send.ts.
 */

type Partitioner = (args: { topic: string; partitionMetadata: unknown[]; message: unknown }) => number;

export function groupMessagesPerPartition(args: {
  topic: string; partitionMetadata: unknown[]; messages: unknown[]; partitioner: Partitioner;
}): Record<number, unknown[]> {
  const { topic, partitionMetadata, messages, partitioner } = args;
  const result: Record<number, unknown[]> = {};
  if (partitionMetadata.length === 0) return result;
  for (const message of messages) {
    const partition = partitioner({ topic, partitionMetadata, message });
    (result[partition] ??= []).push(message);
  }
  return result;
}

interface FetchedMessage {
  offset: string;
  key: Buffer | null;
  isControlRecord?: boolean;
  /** Absent on legacy (pre-0.11) message sets, which have no transactions. */
  batchContext?: { producerId: string; inTransaction: boolean };
}

/** The key of an ABORT control record: version 0, type 0. */
const ABORT_MARKER_KEY = Buffer.from([0, 0, 0, 0]);

export function filterAbortedMessages(args: {
  messages: FetchedMessage[]; abortedTransactions?: Array<{ producerId: string; firstOffset: string }>;
}): FetchedMessage[] {
  const { messages, abortedTransactions } = args;
  if (!abortedTransactions || abortedTransactions.length === 0) return messages;
  const pending = abortedTransactions
    .map((t) => ({ producerId: String(t.producerId), firstOffset: BigInt(t.firstOffset) }))
    .sort((a, b) => (a.firstOffset < b.firstOffset ? -1 : a.firstOffset > b.firstOffset ? 1 : 0));
  const aborting = new Set<string>();
  let next = 0;
  return messages.filter((m) => {
    const offset = BigInt(m.offset);
    for (let t = pending[next]; t !== undefined && t.firstOffset <= offset; t = pending[++next]) aborting.add(t.producerId);
    if (m.batchContext === undefined) return true;
    const producerId = String(m.batchContext.producerId);
    if (m.isControlRecord === true) {
      if (m.key !== null && Buffer.from(m.key).equals(ABORT_MARKER_KEY)) aborting.delete(producerId);
      return true;
    }
    return !(m.batchContext.inTransaction && aborting.has(producerId));
  });
}

const require = createRequire(import.meta.url);

/** A kafkajs internal module by its path under kafkajs/src. */
const kjs = (id: string): unknown => require(`kafkajs/src/${id}`);

interface EncoderInstance { buf: Buffer; offset: number; ensureAvailable(length: number): void }
interface EncoderMethods {
  ensureAvailable(length: number): void;
  writeUVarInt(value: number): EncoderInstance;
  writeVarLong(value: unknown): EncoderInstance;
}
interface EncoderClass {
  new (initialSize?: number): EncoderInstance;
  nextPowerOfTwo(value: number): number;
  sizeOfVarLong(value: unknown): number;
  prototype: EncoderInstance & EncoderMethods;
}

/** Below this, zigzag (2n or −2n−1) stays an exact double. */
const ZIGZAG_SAFE = 2 ** 52;

function zigzag(value: unknown): number | undefined {
  if (typeof value !== 'number' || !Number.isInteger(value) || Math.abs(value) >= ZIGZAG_SAFE) return undefined;
  return value >= 0 ? value * 2 : -value * 2 - 1;
}

/**
 * kafkajs's Encoder with unpooled zero-filled allocations replaced: the same class (prototype and
 * static methods are shared, so `instanceof` and `Encoder.sizeOf…` work), another constructor.
 */
function fastEncoder(): EncoderClass {
  const path = require.resolve('kafkajs/src/protocol/encoder.js');
  const cached = require.cache[path];
  const Original = require(path) as EncoderClass;
  if (cached === undefined) delete require.cache[path];
  const proto = Original.prototype;
  proto.ensureAvailable = function ensureAvailable(this: EncoderInstance, length: number): void {
    if (this.offset + length <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Original.nextPowerOfTwo(this.offset + length));
    this.buf.copy(grown, 0, 0, this.offset);
    this.buf = grown;
  };
  // The same bit operations as kafkajs's writeUVarInt (a uint32 after zigzag), without the array.
  proto.writeUVarInt = function writeUVarInt(this: EncoderInstance, value: number): EncoderInstance {
    this.ensureAvailable(5);
    const buf = this.buf;
    let v = value;
    while ((v & 0xffffff80) !== 0) {
      buf[this.offset++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    buf[this.offset++] = v & 0x7f;
    return this;
  };
  const writeVarLong = proto.writeVarLong;
  proto.writeVarLong = function fastWriteVarLong(this: EncoderInstance, value: unknown): EncoderInstance {
    let z = zigzag(value);
    if (z === undefined) return writeVarLong.call(this, value);
    this.ensureAvailable(8);
    const buf = this.buf;
    for (; z >= 0x80; z = Math.floor(z / 0x80)) buf[this.offset++] = (z % 0x80) | 0x80;
    buf[this.offset++] = z;
    return this;
  };
  const sizeOfVarLong = Original.sizeOfVarLong.bind(Original);
  function Encoder(this: EncoderInstance, initialSize = 511): void {
    this.buf = Buffer.allocUnsafe(Original.nextPowerOfTwo(initialSize));
    this.offset = 0;
  }
  for (const [name, d] of Object.entries(Object.getOwnPropertyDescriptors(Original))) {
    if (name !== 'prototype' && name !== 'length' && name !== 'name') Object.defineProperty(Encoder, name, d);
  }
  Encoder.prototype = proto;
  Encoder.sizeOfVarLong = function fastSizeOfVarLong(value: unknown): number {
    let z = zigzag(value);
    if (z === undefined) return sizeOfVarLong(value);
    let bytes = 1;
    for (; z >= 0x80; z = Math.floor(z / 0x80)) bytes += 1;
    return bytes;
  };
  return Encoder as unknown as EncoderClass;
}

export const KafkajsEncoder = fastEncoder();

interface EncoderWriter {
  buffer: Buffer;
  writeVarInt(v: number): EncoderWriter;
  writeInt8(v: number): EncoderWriter;
  writeInt16(v: number): EncoderWriter;
  writeInt32(v: number): EncoderWriter;
  writeUInt32(v: number): EncoderWriter;
  writeInt64(v: unknown): EncoderWriter;
  writeVarLong(v: unknown): EncoderWriter;
  writeVarIntBytes(v: unknown): EncoderWriter;
  writeBuffer(v: Buffer): EncoderWriter;
  writeBytes(v: Buffer): EncoderWriter;
  writeString(v: string | null): EncoderWriter;
  writeArray(v: unknown[]): EncoderWriter;
  writeEncoder(v: EncoderWriter): EncoderWriter;
  size(): number;
}
interface ProduceMessage { key?: unknown; value?: unknown; headers?: Record<string, unknown> | null; timestamp?: unknown }
interface ProducePartition { partition: number; messages: ProduceMessage[]; firstSequence?: number }
interface ProduceRequestArgs {
  acks: number; timeout: number; transactionalId?: string | null; producerId?: unknown; producerEpoch?: number;
  compression?: number; topicData: Array<{ topic: string; partitions: ProducePartition[] }>;
}

/** Kafka's RecordBatch v2 magic byte; attribute bit of a transactional batch; codec bits. */
const MAGIC_BYTE = 2;
const TRANSACTIONAL_MASK = 16;
const COMPRESSION_CODEC_MASK = 0x07;

const plainBytes = (v: unknown): boolean => v === null || v === undefined || typeof v === 'string' || Buffer.isBuffer(v);

/** kafkajs's produce request v3, with each partition's records written into one Encoder (see 4. above). */
function fastProduceRequestV3(): (args: ProduceRequestArgs) => unknown {
  const Encoder = KafkajsEncoder as unknown as { new (size?: number): EncoderWriter; sizeOfVarInt(v: number): number; sizeOfVarLong(v: unknown): number; sizeOfVarIntBytes(v: unknown): number };
  // kafkajs modules, loaded at the first request: by then the Encoder above is in the module cache
  // (loading Record now would bind it to kafkajs's own Encoder).
  const load = () => ({
    Long: kjs('utils/long.js') as { fromInt(v: number): unknown },
    apiKey: (kjs('protocol/requests/apiKeys.js') as { Produce: number }).Produce,
    ...(kjs('protocol/message/compression/index.js') as {
      Types: { None: number }; lookupCodec(type: number): { compress(e: EncoderWriter): Promise<Buffer> } | null;
    }),
    Record: kjs('protocol/recordBatch/record/v0/index.js') as (r: Record<string, unknown>) => EncoderWriter,
    crc32C: kjs('protocol/recordBatch/crc32C/index.js') as (b: Buffer) => number,
  });
  let deps: ReturnType<typeof load> | undefined;

  async function encodePartition(
    { partition, messages, firstSequence }: ProducePartition, compression: number, transactionalId: string | null, producerId: unknown, producerEpoch: number,
  ): Promise<EncoderWriter> {
    const dateNow = Date.now();
    // As kafkajs: the explicit timestamps in default (string) sort order, else now.
    let firstTimestamp: unknown = dateNow;
    let maxTimestamp: unknown = dateNow;
    if (messages.some((m) => m.timestamp != null)) {
      const sorted = messages.map((m) => m.timestamp).filter((t) => t != null).sort();
      firstTimestamp = sorted[0];
      maxTimestamp = sorted[sorted.length - 1];
    }
    const { Record, Types, lookupCodec, crc32C, Long } = deps!;
    const records = new Encoder();
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i]!;
      const timestampDelta = ((m.timestamp || dateNow) as number) - (firstTimestamp as number);
      const headers = m.headers === undefined ? {} : m.headers;
      if (headers === null || Object.keys(headers).length > 0 || !plainBytes(m.key) || !plainBytes(m.value)) {
        records.writeBuffer(Record({ ...m, offsetDelta: i, timestampDelta }).buffer);
        continue;
      }
      // Record v0: length, attributes (0), timestamp delta, offset delta, key, value, no headers (varint 0).
      const body = 1 + Encoder.sizeOfVarLong(timestampDelta) + Encoder.sizeOfVarInt(i) + Encoder.sizeOfVarIntBytes(m.key) + Encoder.sizeOfVarIntBytes(m.value) + 1;
      records.writeVarInt(body).writeInt8(0).writeVarLong(timestampDelta).writeVarInt(i).writeVarIntBytes(m.key).writeVarIntBytes(m.value).writeVarInt(0);
    }
    // recordBatch/v0 RecordBatch.
    const attributes = (compression & COMPRESSION_CODEC_MASK) | (transactionalId ? TRANSACTIONAL_MASK : 0);
    const batchBody = new Encoder()
      .writeInt16(attributes)
      .writeInt32(messages.length - 1)
      .writeInt64(firstTimestamp)
      .writeInt64(maxTimestamp)
      .writeInt64(producerId)
      .writeInt16(producerEpoch)
      .writeInt32(firstSequence ?? 0)
      .writeInt32(messages.length);
    if (compression === Types.None) batchBody.writeBuffer(records.buffer);
    else batchBody.writeBuffer(await lookupCodec(compression)!.compress(records));
    const batch = new Encoder().writeInt32(0).writeInt8(MAGIC_BYTE).writeUInt32(crc32C(batchBody.buffer)).writeEncoder(batchBody);
    const recordBatch = new Encoder().writeInt64(Long.fromInt(0)).writeBytes(batch.buffer);
    return new Encoder().writeInt32(partition).writeInt32(recordBatch.size()).writeEncoder(recordBatch);
  }

  // The defaults of kafkajs's v3 request (destructuring defaults: for undefined only).
  return ({ acks, timeout, transactionalId = null, producerId, producerEpoch = 0, compression, topicData }) => {
    deps ??= load();
    const args = {
      acks, timeout, transactionalId, producerEpoch, topicData,
      producerId: producerId === undefined ? deps.Long.fromInt(-1) : producerId,
      compression: compression === undefined ? deps.Types.None : compression,
    };
    return { apiKey: deps.apiKey, apiVersion: 3, apiName: 'Produce', expectResponse: () => acks !== 0, encode: () => encodeRequest(args) };
  };

  async function encodeRequest({ acks, timeout, transactionalId, producerId, producerEpoch, compression, topicData }: Required<ProduceRequestArgs>): Promise<EncoderWriter> {
    const topics: EncoderWriter[] = [];
    for (const { topic, partitions } of topicData) {
      const encoded: EncoderWriter[] = [];
      for (const p of partitions) encoded.push(await encodePartition(p, compression, transactionalId, producerId, producerEpoch));
      topics.push(new Encoder().writeString(topic).writeArray(encoded));
    }
    return new Encoder().writeString(transactionalId).writeInt16(acks).writeInt32(timeout).writeArray(topics);
  }
}

export const produceRequestV3 = fastProduceRequestV3();

interface KafkajsDecoder {
  buffer: Buffer;
  offset: number;
  readInt8(): number;
  readVarInt(): number;
  readVarLong(): { toString(): string };
  readVarIntBytes(): Buffer | null;
  readVarIntArray<T>(reader: (d: KafkajsDecoder) => T): T[];
}
interface RecordBatchContext {
  firstOffset: string; firstTimestamp: string; magicByte: number; isControlBatch?: boolean; timestampType: number; maxTimestamp: string;
}

/** A record without headers: one shared, frozen object (kafkajs made a new `{}` for each). */
const NO_HEADERS: Record<string, unknown> = Object.freeze({});

/**
 * What the records of one record batch share, held once for the batch rather than on each record:
 * the bytes the records are read from, kafkajs's batch fields, and the batch's first timestamp as a
 * number (NaN where not exact), which a record's timestamp is held relative to (see FetchedRecord).
 */
export class FetchedBatchBase {
  constructor(
    readonly bytes: Buffer,
    readonly magicByte: number | undefined,
    readonly isControlRecord: boolean,
    readonly batchContext: Partial<RecordBatchContext>,
    readonly timestampBase: number,
    /** The batch's first offset as a number (NaN where not exact). */
    readonly offsetBase: number,
  ) {}

  /** The base of the records `decoder` reads in a batch with this context. */
  static of(bytes: Buffer, batchContext: Partial<RecordBatchContext>): FetchedBatchBase {
    const { firstOffset, firstTimestamp, magicByte, isControlBatch = false } = batchContext;
    return new FetchedBatchBase(bytes, magicByte, isControlBatch, batchContext, Number(firstTimestamp), Number(firstOffset));
  }
}

/**
 * A fetched record as the patched decoder returns it: kafkajs's fields, with the offset and the
 * timestamp held as numbers where exact and made into kafkajs's decimal strings only when read
 * (kafkajs built two strings per record, then the consumer parsed them back, and the Batch parsed
 * the offset into a Long once more), and the key and value as positions in the record batch's
 * bytes, a Buffer made when read: a fetch's records live until the whole fetch is processed, and
 * every object and field they hold is copied by each garbage collection meanwhile, then promoted.
 * So what the batch's records share is in one FetchedBatchBase, and the timestamp is held as its
 * delta from the batch's first one, a small integer (a timestamp in ms is not: it was a heap number
 * of its own per record). `fetchedOffset` / `fetchedTimestamp` / `fetchedKeyText` read them without
 * kafkajs's forms.
 */
export class FetchedRecord {
  constructor(
    readonly base: FetchedBatchBase,
    readonly attributes: number,
    /**
     * A number: the timestamp minus `base.timestampBase` (both, and the sum, safe integers); a
     * string: the timestamp as kafkajs's decimal string.
     */
    private readonly ts: number | string,
    /** A safe integer, or kafkajs's decimal string when it is not one. */
    readonly offsetValue: number | string,
    /** Where the key and value are in `base.bytes` (length −1: null; read as kafkajs reads them). */
    readonly keyAt: number,
    readonly keyLength: number,
    readonly valueAt: number,
    readonly valueLength: number,
    readonly headers: Record<string, unknown>,
  ) {}

  get magicByte(): number | undefined {
    return this.base.magicByte;
  }

  get isControlRecord(): boolean {
    return this.base.isControlRecord;
  }

  get batchContext(): Partial<RecordBatchContext> {
    return this.base.batchContext;
  }

  /** A safe integer, or kafkajs's decimal string when it is not one. */
  get timestampValue(): number | string {
    return typeof this.ts === 'number' ? this.base.timestampBase + this.ts : this.ts;
  }

  get offset(): string {
    return String(this.offsetValue);
  }

  get timestamp(): string {
    return String(this.timestampValue);
  }

  /** As kafkajs's `slice`: a view of the batch's bytes (cut short at their end, as a slice is). */
  get key(): Buffer | null {
    return this.keyLength === -1 ? null : this.base.bytes.subarray(this.keyAt, this.keyAt + this.keyLength);
  }

  get value(): Buffer | null {
    return this.valueLength === -1 ? null : this.base.bytes.subarray(this.valueAt, this.valueAt + this.valueLength);
  }
}

/** A fetched record's key as text ('' for none), without making a Buffer of it. */
export function fetchedKeyText(m: { key: Buffer | null }): string {
  if (m instanceof FetchedRecord) {
    const bytes = m.base.bytes;
    return m.keyLength === -1 ? '' : bytes.toString('utf8', m.keyAt, Math.min(bytes.length, m.keyAt + m.keyLength));
  }
  return m.key === null ? '' : m.key.toString('utf8');
}

const NO_BYTES = Buffer.alloc(0);

/**
 * `read` of a fetched record's value where it lies: the bytes holding it, and its start and end in
 * them — the bytes `m.value` views (empty for none), without a Buffer made for it.
 */
export function readFetchedValue<T>(m: { value: Buffer | null }, read: (bytes: Buffer, start: number, end: number) => T): T {
  if (m instanceof FetchedRecord) {
    if (m.valueLength === -1) return read(NO_BYTES, 0, 0);
    // Clamped as the getter's subarray clamps them.
    const bytes = m.base.bytes;
    const start = Math.min(Math.max(m.valueAt, 0), bytes.length);
    return read(bytes, start, Math.max(start, Math.min(m.valueAt + m.valueLength, bytes.length)));
  }
  const value = m.value ?? NO_BYTES;
  return read(value, 0, value.length);
}

/** A fetched record's offset as a number (exact: Kafka offsets are far below 2^53). */
export function fetchedOffset(m: { offset: string }): number {
  return m instanceof FetchedRecord && typeof m.offsetValue === 'number' ? m.offsetValue : Number(m.offset);
}

/** A fetched record's timestamp (ms) as a number. */
export function fetchedTimestamp(m: { timestamp: string }): number {
  if (m instanceof FetchedRecord) {
    const t = m.timestampValue;
    if (typeof t === 'number') return t;
  }
  return Number(m.timestamp);
}

/** 7 varint bytes hold 49 bits: a zigzag value below 2^49 is exact as a double. */
const MAX_FAST_VARLONG_BYTES = 7;

/**
 * kafkajs's record v0 decoder with number arithmetic where it is exact (see 5. above): a record
 * read at the decoder's offset. With `end` (the record's end in a batch's bytes, read in place:
 * see 7. above), undefined where the bytes kafkajs's slice would read could differ: a
 * negative length other than −1 (kafkajs moves back, before its slice's start), headers (their
 * lengths and count are not checked here), or fields past `end`.
 */
type ReadRecord = (decoder: KafkajsDecoder, base: FetchedBatchBase, end: number | undefined) => FetchedRecord | undefined;

function fastRecordDecoder(): ReadRecord {
  const Long = kjs('utils/long.js') as { fromValue(v: unknown): { add(v: unknown): { toString(): string } } };
  const HeaderDecoder = kjs('protocol/recordBatch/header/v0/decoder.js') as (d: KafkajsDecoder) => { key: string; value: Buffer | null };
  const { LOG_APPEND_TIME } = kjs('protocol/timestampTypes.js') as { LOG_APPEND_TIME: number };

  /** The zigzag varlong at the decoder's offset as a number, or undefined (offset unchanged) if longer than 7 bytes. */
  function readSmallVarLong(decoder: KafkajsDecoder): number | undefined {
    const buf = decoder.buffer;
    const start = decoder.offset;
    let z = 0;
    let scale = 1;
    for (let i = 0; i < MAX_FAST_VARLONG_BYTES; i++) {
      const b = buf[start + i];
      if (b === undefined) return undefined;
      z += (b & 0x7f) * scale;
      scale *= 0x80;
      if (b < 0x80) {
        decoder.offset = start + i + 1;
        return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
      }
    }
    return undefined;
  }

  /** Whether `n + delta` is exact: both, and the sum, safe integers (`n` is Number() of the decimal base). */
  const exact = (n: number, delta: number | { toString(): string }): delta is number =>
    typeof delta === 'number' && Number.isSafeInteger(n) && Number.isSafeInteger(n + delta);
  /** `base + delta` as the decimal string kafkajs writes. */
  const longPlus = (base: string | undefined, delta: number | { toString(): string }): string => Long.fromValue(base).add(delta).toString();

  function foldHeaders(list: Array<{ key: string; value: Buffer | null }>): Record<string, unknown> {
    // kafkajs's reduce, verbatim in effect: repeated keys collect their values in an array.
    return list.reduce<Record<string, unknown>>((obj, { key, value }) => ({
      ...obj,
      [key]: obj[key] === undefined ? value : Array.isArray(obj[key]) ? (obj[key] as unknown[]).concat([value]) : [obj[key], value],
    }), {});
  }

  return (decoder, base, end) => {
    const { firstOffset, firstTimestamp, timestampType, maxTimestamp } = base.batchContext;
    const attributes = decoder.readInt8();
    const timestampDelta = readSmallVarLong(decoder) ?? decoder.readVarLong();
    // A number: the delta from the batch's first timestamp (FetchedRecord); kafkajs's string otherwise.
    const timestamp = timestampType === LOG_APPEND_TIME && maxTimestamp
      ? maxTimestamp
      : exact(base.timestampBase, timestampDelta) ? timestampDelta : longPlus(firstTimestamp, timestampDelta);
    const offsetDelta = decoder.readVarInt();
    const offset = exact(base.offsetBase, offsetDelta) ? base.offsetBase + offsetDelta : longPlus(firstOffset, offsetDelta);
    // readVarIntBytes, without the slices: the positions (see FetchedRecord).
    const keyLength = decoder.readVarInt();
    if (keyLength < -1 && end !== undefined) return undefined;
    const keyAt = decoder.offset;
    if (keyLength !== -1) decoder.offset += keyLength;
    const valueLength = decoder.readVarInt();
    if (valueLength < -1 && end !== undefined) return undefined;
    const valueAt = decoder.offset;
    if (valueLength !== -1) decoder.offset += valueLength;
    const headersAt = decoder.offset;
    const headerCount = decoder.readVarInt();
    let headers: Record<string, unknown>;
    if (headerCount === 0 || headerCount === -1) headers = NO_HEADERS;
    else {
      if (end !== undefined) return undefined;
      decoder.offset = headersAt;
      headers = foldHeaders(decoder.readVarIntArray(HeaderDecoder));
    }
    if (end !== undefined && decoder.offset > end) return undefined;
    return new FetchedRecord(base, attributes, timestamp, offset, keyAt, keyLength, valueAt, valueLength, headers);
  };
}

const readRecord = fastRecordDecoder();

/** kafkajs's record decoder: the record at the decoder's offset, in a buffer of its own (a base of its own). */
export const recordDecoderV0 = (decoder: KafkajsDecoder, batchContext: Partial<RecordBatchContext> = {}): FetchedRecord =>
  readRecord(decoder, FetchedBatchBase.of(decoder.buffer, batchContext), undefined) as FetchedRecord;

interface KafkajsBatchDecoder extends KafkajsDecoder {
  readInt16(): number;
  readInt32(): number;
  readInt64(): { toString(): string };
  readAll(): Buffer;
  readArray<T>(reader: (d: KafkajsDecoder) => T): T[];
  slice(length: number): KafkajsBatchDecoder;
  forward(length: number): void;
}

/** kafkajs's record batch v0 decoder reading each record where it lies (see 7. above). */
function fastRecordBatchDecoder(): (fetchDecoder: KafkajsBatchDecoder) => Promise<Record<string, unknown> & { records: FetchedRecord[] }> {
  const Decoder = kjs('protocol/decoder.js') as new (buffer: Buffer | null) => KafkajsBatchDecoder;
  const { KafkaJSPartialMessageError } = kjs('errors.js') as { KafkaJSPartialMessageError: new (message: string) => Error };
  const { lookupCodecByAttributes } = kjs('protocol/message/compression/index.js') as {
    lookupCodecByAttributes(attributes: number): { decompress(b: Buffer): Promise<Buffer> } | null;
  };
  const { LOG_APPEND_TIME, CREATE_TIME } = kjs('protocol/timestampTypes.js') as { LOG_APPEND_TIME: number; CREATE_TIME: number };
  const TIMESTAMP_TYPE_FLAG_MASK = 0x8;
  const TRANSACTIONAL_FLAG_MASK = 0x10;
  const CONTROL_FLAG_MASK = 0x20;

  /**
   * One length-prefixed record, decoded in the decoder's own buffer. Where that could read other
   * bytes than kafkajs's slice would (readRecord stops at the first sign: fields past the record's
   * length, a negative length moving back, headers) or fails, the record is decoded again as kafkajs
   * does, from a slice of its own: the same record, or the same error. Stopping early matters: read
   * in place, a negative length moves back into the batch's header, whose bytes can make a header
   * count of millions.
   */
  function decodeRecord(decoder: KafkajsBatchDecoder, base: FetchedBatchBase): FetchedRecord {
    const start = decoder.offset;
    const length = decoder.readVarInt();
    const end = decoder.offset + length;
    if (length >= 0 && end <= decoder.buffer.length) {
      try {
        const record = readRecord(decoder, base, end);
        if (record !== undefined) {
          decoder.offset = end;
          return record;
        }
      } catch {
        // kafkajs's path below throws its own error for it.
      }
    }
    decoder.offset = start;
    return recordDecoderV0(new Decoder(decoder.readVarIntBytes()), base.batchContext);
  }

  async function decodeRecords(
    codec: ReturnType<typeof lookupCodecByAttributes>, recordsDecoder: KafkajsBatchDecoder, ctx: Partial<RecordBatchContext>,
  ): Promise<FetchedRecord[]> {
    if (!codec) {
      const base = FetchedBatchBase.of(recordsDecoder.buffer, ctx);
      return recordsDecoder.readArray((d) => decodeRecord(d as KafkajsBatchDecoder, base));
    }
    const length = recordsDecoder.readInt32();
    if (length <= 0) return [];
    const decompressed = new Decoder(await codec.decompress(recordsDecoder.readAll()));
    const base = FetchedBatchBase.of(decompressed.buffer, ctx);
    const records = new Array<FetchedRecord>(length);
    for (let i = 0; i < length; i++) records[i] = decodeRecord(decompressed, base);
    return records;
  }

  // kafkajs's module, line for line, but for decodeRecord.
  return async (fetchDecoder) => {
    const firstOffset = fetchDecoder.readInt64().toString();
    const length = fetchDecoder.readInt32();
    const decoder = fetchDecoder.slice(length);
    fetchDecoder.forward(length);
    const remainingBytes = Buffer.byteLength(decoder.buffer);
    if (remainingBytes < length) {
      throw new KafkaJSPartialMessageError(`Tried to decode a partial record batch: remainingBytes(${remainingBytes}) < recordBatchLength(${length})`);
    }
    const partitionLeaderEpoch = decoder.readInt32();
    const magicByte = decoder.readInt8();
    decoder.readInt32(); // the CRC: kafkajs does not check it
    const attributes = decoder.readInt16();
    const lastOffsetDelta = decoder.readInt32();
    const firstTimestamp = decoder.readInt64().toString();
    const maxTimestamp = decoder.readInt64().toString();
    const producerId = decoder.readInt64().toString();
    const producerEpoch = decoder.readInt16();
    const firstSequence = decoder.readInt32();
    const recordContext = {
      firstOffset, firstTimestamp, partitionLeaderEpoch,
      inTransaction: (attributes & TRANSACTIONAL_FLAG_MASK) > 0,
      isControlBatch: (attributes & CONTROL_FLAG_MASK) > 0,
      lastOffsetDelta, producerId, producerEpoch, firstSequence, maxTimestamp,
      timestampType: (attributes & TIMESTAMP_TYPE_FLAG_MASK) > 0 ? LOG_APPEND_TIME : CREATE_TIME,
    };
    const records = await decodeRecords(lookupCodecByAttributes(attributes), decoder, { ...recordContext, magicByte });
    return { ...recordContext, records };
  };
}

export const recordBatchDecoderV0 = fastRecordBatchDecoder();

interface PartitionData {
  partition: number;
  highWatermark: string;
  abortedTransactions?: Array<{ producerId: string; firstOffset: string }>;
  messages: FetchedMessage[];
}

/**
 * `list.filter(keep)`, but `list` itself when every element is kept (the usual case: a fetch
 * starting at a batch boundary, no transaction markers). The three arrays a Batch holds were three
 * copies of every fetched partition's records, grown element by element. They are only read.
 */
function kept<T>(list: T[], keep: (m: T) => boolean): T[] {
  return list.every(keep) ? list : list.filter(keep);
}

/**
 * kafkajs's consumer Batch with its constructor replaced (see 6. above): the same prototype, so its
 * methods and `instanceof` are kafkajs's own. Loaded after the aborted-messages filter is patched.
 */
function fastBatch(): unknown {
  const Original = require('kafkajs/src/consumer/batch.js') as { prototype: object };
  const Long = require('kafkajs/src/utils/long.js') as { fromValue(v: unknown): { gte(o: unknown): boolean } };
  const filterAborted = require('kafkajs/src/consumer/filterAbortedMessages.js') as typeof filterAbortedMessages;
  class Batch {
    fetchedOffset: string;
    topic: string;
    partition: number;
    highWatermark: string;
    rawMessages: FetchedMessage[];
    messagesWithinOffset: FetchedMessage[];
    messages: FetchedMessage[];
    constructor(topic: string, fetchedOffset: string, partitionData: PartitionData) {
      this.fetchedOffset = fetchedOffset;
      const { abortedTransactions, messages } = partitionData;
      this.topic = topic;
      this.partition = partitionData.partition;
      this.highWatermark = partitionData.highWatermark;
      this.rawMessages = messages;
      // Records before the fetched offset (a compressed batch starts earlier) are not handed out.
      const from = Number(fetchedOffset);
      if (Number.isSafeInteger(from)) {
        this.messagesWithinOffset = kept(messages, (m) => {
          const o = m instanceof FetchedRecord ? m.offsetValue : m.offset;
          return typeof o === 'number' ? o >= from : Long.fromValue(o).gte(Long.fromValue(fetchedOffset));
        });
      } else {
        const longFrom = Long.fromValue(fetchedOffset);
        this.messagesWithinOffset = kept(messages, (m) => Long.fromValue(m.offset).gte(longFrom));
      }
      // Aborted transactions and control records are not handed out either.
      const committed = filterAborted({ messages: this.messagesWithinOffset, abortedTransactions });
      this.messages = kept(committed, (m) => m.isControlRecord !== true);
    }
  }
  Object.setPrototypeOf(Batch.prototype, Original.prototype);
  return Batch;
}

function patchModule(target: string, user: string, replacement: unknown): boolean {
  const targetPath = require.resolve(target);
  const cache = require.cache;
  if (cache[require.resolve(user)] !== undefined) return cache[targetPath]?.exports === replacement;
  const Module = require('node:module') as { new (id: string): NodeJS.Module };
  const m = new Module(targetPath);
  m.filename = targetPath;
  m.loaded = true;
  m.exports = replacement;
  cache[targetPath] = m;
  return true;
}

/** The kafkajs modules replaced here, by the kafkajs module that loads each (see patchModule). */
const PATCHES: Array<[target: string, user: string, replacement: () => unknown]> = [
  ['producer/groupMessagesPerPartition.js', 'producer/sendMessages.js', () => groupMessagesPerPartition],
  ['consumer/filterAbortedMessages.js', 'consumer/batch.js', () => filterAbortedMessages],
  ['protocol/encoder.js', 'protocol/request.js', () => KafkajsEncoder],
  ['protocol/requests/produce/v3/request.js', 'protocol/requests/produce/v3/request.js', () => produceRequestV3],
  ['protocol/recordBatch/record/v0/decoder.js', 'protocol/recordBatch/v0/decoder.js', () => recordDecoderV0],
  ['protocol/recordBatch/v0/decoder.js', 'protocol/requests/fetch/v4/decodeMessages.js', () => recordBatchDecoderV0],
  ['consumer/batch.js', 'consumer/consumerGroup.js', fastBatch],
  ['producer/sendMessages.js', 'producer/messageProducer.js', () => createSendMessages],
];

/** The patches that could not be installed (kafkajs was loaded before this module): none, normally. */
export const kafkajsUnpatched: readonly string[] = PATCHES.filter(
  ([target, user, replacement]) => !patchModule(`kafkajs/src/${target}`, `kafkajs/src/${user}`, replacement()),
).map(([target]) => target);

/** Whether every patch is what kafkajs uses. Two of them fix lost and doubled records: the Kafka bus refuses to start without. */
export const kafkajsPatched: boolean = kafkajsUnpatched.length === 0;
