import type avro from 'avsc';
import type { Dims } from '../schemas/events.js';
import { HEADER_BYTES, checkRecordLayout, type AvroCodec } from '../schemas/framing.js';
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

export function createSessionStateWriter(codec: AvroCodec<SessionAvro>): SessionStateWriter {
  const fields = checkRecordLayout(codec.type, LAYOUT, 'processors/state-writer.ts');
  const stateIndex = new Map((fields[2]?.type.symbols ?? []).map((s, i) => [s, i]));
  const dimsType = fields[10]?.type as unknown as avro.Type;
  const dimsCache = new Map<string, Buffer>();
  const header = Buffer.from([0xc3, 0x01, ...codec.fingerprint]);
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
  const string = (s: string): void => {
    const n = Buffer.byteLength(s);
    long(n);
    pos += buf.write(s, pos, n, 'utf8');
  };
  const nullableDouble = (x: number | null): void => {
    if (x === null) buf[pos++] = 0;
    else {
      buf[pos++] = 2;
      double(x);
    }
  };
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
    const room = HEADER_BYTES + FIXED_BYTES + 10 + 3 * v.id.length + dims.length;
    if (buf.length < room) buf = scratch(Math.max(room, buf.length * 2));
    pos = HEADER_BYTES;
    long(v.t);
    string(v.id);
    const state = stateIndex.get(v.state);
    if (state === undefined) throw new Error(`not a PlaybackState: ${v.state}`);
    long(state);
    buf[pos++] = v.started ? 1 : 0;
    nullableDouble(v.attemptTsMs);
    double(v.sinceMs);
    nullableDouble(v.extrapolatedToMs);
    double(v.lastTsMs);
    long(v.lastSeq);
    long(v.seenBelow);
    pos += dims.copy(buf, pos);
    double(v.bitrateKbps);
    double(v.droppedFrames);
    double(v.clockOffsetMs);
    const out = Buffer.allocUnsafe(pos);
    buf.copy(out, 0, 0, pos);
    return out;
  };
  return { write, cachedDims: () => dimsCache.size };
}
