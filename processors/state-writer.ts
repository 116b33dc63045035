import type avro from 'avsc';
import type { Dims } from '../schemas/events.js';
import { HEADER_BYTES, checkRecordLayout, type AvroCodec } from '../schemas/framing.js';
import { SUM_FIELDS, type WindowAcc } from './accumulator.js';
import type { SessionState } from './session.js';

/** A changelog session value's fields (schemas/state-session.avsc, in schema order). */
export interface SessionAvro {
  t: number;
  id: string;
  state: SessionState;
  started: boolean;
  attemptTsMs: number | null;
  sinceMs: number;
  /** null: max(sinceMs, the partition's fired boundary) (see changelog.ts encodeSessionState). */
  extrapolatedToMs: number | null;
  lastTsMs: number;
  lastSeq: number;
  seenBelow: number;
  dims: Dims;
  bitrateKbps: number;
  droppedFrames: number;
  clockOffsetMs: number;
}

/** The fields and Avro types the writer below writes, in order; checked against the schema at load. */
const LAYOUT: readonly string[] = [
  't:long', 'id:string', 'state:enum', 'started:boolean', 'attemptTsMs:null|double', 'sinceMs:double',
  'extrapolatedToMs:null|double', 'lastTsMs:double', 'lastSeq:long', 'seenBelow:long', 'dims:record',
  'bitrateKbps:double', 'droppedFrames:double', 'clockOffsetMs:double',
];

/** The largest magnitude avsc writes as a long from a number (2^53 - 2: zigzag doubles it within 2^54). */
const MAX_LONG = 9007199254740990;
/** Distinct dims records whose bytes are kept (a session's dims repeat in each of its records, and across sessions). */
export const MAX_CACHED_DIMS = 4096;
/** Every field but the two strings and the dims takes at most 10 bytes (a varint long, or a union index + a double). */
const FIXED_BYTES = 12 * 10;

/**
 * The single-object encoding of a changelog session value, written field by field: the same bytes
 * as avsc writes (a test compares them on random sessions), without its per-field type dispatch,
 * and with each distinct dims record encoded once — its 13 strings were most of a session record's
 * cost, and every event's transaction writes its session (bench/README.md, 2026-11-30 fourth session).
 * The dims bytes are keyed by the session's interned dims key, which is derived from its dims
 * (partition.ts and session.ts set the two together).
 */
export interface SessionStateWriter {
  write(v: SessionAvro, dimsKey: string): Buffer;
  /** Dims records whose bytes are kept now (at most MAX_CACHED_DIMS). */
  cachedDims(): number;
}

/**
 * Avro primitives written into one growing scratch buffer that starts with the single-object header
 * (the bytes avsc's Tap writes for the same values); `take()` copies the value written out.
 */
export function createScratch(fingerprint: Buffer): {
  start(room: number): void; long(n: number): void; double(x: number): void; string(s: string): void;
  nullableDouble(x: number | null): void; byte(b: number): void; bytes(b: Buffer): void; take(): Buffer;
} {
  const header = Buffer.from([0xc3, 0x01, ...fingerprint]);
  const scratch = (size: number): Buffer => {
    const b = Buffer.allocUnsafe(size);
    header.copy(b, 0);
    return b;
  };
  let buf = scratch(1024);
  let pos = 0;
  const long = (n: number): void => {
    if (!(n % 1 === 0 && n >= -MAX_LONG && n <= MAX_LONG)) throw new Error(`not a long: ${n}`);
    // Zigzag, then 7 bits per byte, low first; arithmetic rather than bit operations beyond 2^31.
    let v = n >= 0 ? n * 2 : -n * 2 - 1;
    while (v >= 0x80) {
      buf[pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    buf[pos++] = v;
  };
  const double = (x: number): void => {
    buf.writeDoubleLE(x, pos);
    pos += 8;
  };
  return {
    /** Starts a value after the header, with room for `room` bytes of it. */
    start(room: number): void {
      if (buf.length < HEADER_BYTES + room) buf = scratch(Math.max(HEADER_BYTES + room, buf.length * 2));
      pos = HEADER_BYTES;
    },
    long,
    double,
    string(s: string): void {
      const n = Buffer.byteLength(s);
      long(n);
      pos += buf.write(s, pos, n, 'utf8');
    },
    nullableDouble(x: number | null): void {
      if (x === null) buf[pos++] = 0;
      else {
        buf[pos++] = 2;
        double(x);
      }
    },
    byte(b: number): void {
      buf[pos++] = b;
    },
    bytes(b: Buffer): void {
      pos += b.copy(buf, pos);
    },
    take(): Buffer {
      const out = Buffer.allocUnsafe(pos);
      buf.copy(out, 0, 0, pos);
      return out;
    },
  };
}

export function createSessionStateWriter(codec: AvroCodec<SessionAvro>): SessionStateWriter {
  const fields = checkRecordLayout(codec.type, LAYOUT, 'processors/state-writer.ts');
  const stateIndex = new Map((fields[2]?.type.symbols ?? []).map((s, i) => [s, i]));
  const dimsType = fields[10]?.type as unknown as avro.Type;
  const dimsCache = new Map<string, Buffer>();
  const out = createScratch(codec.fingerprint);
  const dimsBytes = (dims: Dims, key: string): Buffer => {
    let b = dimsCache.get(key);
    if (b === undefined) {
      if (dimsCache.size >= MAX_CACHED_DIMS) dimsCache.clear();
      b = dimsType.toBuffer(dims);
      dimsCache.set(key, b);
    }
    return b;
  };

  const write = (v: SessionAvro, dimsKey: string): Buffer => {
    const dims = dimsBytes(v.dims, dimsKey);
    out.start(FIXED_BYTES + 10 + 3 * v.id.length + dims.length);
    out.long(v.t);
    out.string(v.id);
    const state = stateIndex.get(v.state);
    if (state === undefined) throw new Error(`not a PlaybackState: ${v.state}`);
    out.long(state);
    out.byte(v.started ? 1 : 0);
    out.nullableDouble(v.attemptTsMs);
    out.double(v.sinceMs);
    out.nullableDouble(v.extrapolatedToMs);
    out.double(v.lastTsMs);
    out.long(v.lastSeq);
    out.long(v.seenBelow);
    out.bytes(dims);
    out.double(v.bitrateKbps);
    out.double(v.droppedFrames);
    out.double(v.clockOffsetMs);
    return out.take();
  };
  return { write, cachedDims: () => dimsCache.size };
}

/** The fields of a changelog accumulator value (schemas/state-window.avsc) and of its records. */
const WINDOW_LAYOUT: readonly string[] = [
  'table:enum', 'w:double', 'k:string', 'sums:record', 'vstHist:array', 'ttfbHist:array', 'bitrateMs:array', 'errors:array',
];
const SUMS_LAYOUT: readonly string[] = SUM_FIELDS.map((f) => `${f}:double`);
const BUCKET_LAYOUT: readonly string[] = ['k:int', 'n:double'];
const ERROR_LAYOUT: readonly string[] = ['k:string', 'n:double'];

export type WindowTable = 'open' | 'corrections';

/**
 * The single-object encoding of a changelog accumulator value, written from the accumulator itself:
 * the bytes avsc writes for `{ table, w, k, sums: acc, vstHist: [{ k, n }…], … }` (a test compares
 * them), without building the four arrays of { k, n } records avsc needed — a window's accumulators
 * are rewritten in every transaction that touched them.
 */
export function createWindowStateWriter(codec: AvroCodec<unknown>): (table: WindowTable, w: number, k: string, acc: WindowAcc) => Buffer {
  const owner = 'processors/state-writer.ts';
  const fields = checkRecordLayout(codec.type, WINDOW_LAYOUT, owner);
  const itemsOf = (i: number): avro.Type => (fields[i]?.type as unknown as { itemsType: avro.Type }).itemsType;
  checkRecordLayout(fields[3]?.type as unknown as avro.Type, SUMS_LAYOUT, owner);
  for (const i of [4, 5, 6]) checkRecordLayout(itemsOf(i), BUCKET_LAYOUT, owner);
  checkRecordLayout(itemsOf(7), ERROR_LAYOUT, owner);
  const tableIndex = new Map((fields[0]?.type.symbols ?? []).map((s, i) => [s, i]));
  const out = createScratch(codec.fingerprint);
  const buckets = (m: Map<number, number>): void => {
    // An Avro array: one block of every entry (in the Map's order), then the end (a zero count).
    if (m.size > 0) {
      out.long(m.size);
      for (const [k, n] of m) {
        if ((k | 0) !== k) throw new Error(`not an int: ${k}`);
        out.long(k);
        out.double(n);
      }
    }
    out.byte(0);
  };
  return (table, w, k, acc) => {
    let room = 10 + 8 + 10 + 3 * k.length + SUM_FIELDS.length * 8 + 4 * 20 + 15 * (acc.vstHist.size + acc.ttfbHist.size + acc.bitrateMs.size);
    for (const code of acc.errors.keys()) room += 18 + 3 * code.length;
    out.start(room);
    const t = tableIndex.get(table);
    if (t === undefined) throw new Error(`not a WindowTable: ${table}`);
    out.long(t);
    out.double(w);
    out.string(k);
    for (const f of SUM_FIELDS) out.double(acc[f]);
    buckets(acc.vstHist);
    buckets(acc.ttfbHist);
    buckets(acc.bitrateMs);
    if (acc.errors.size > 0) {
      out.long(acc.errors.size);
      for (const [code, n] of acc.errors) {
        out.string(code);
        out.double(n);
      }
    }
    out.byte(0);
    return out.take();
  };
}
