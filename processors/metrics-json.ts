import { encodedRow, type EncodedRow } from '../lib/store/common.js';
import { HEADER_BYTES } from '../schemas/framing.js';
import { checkMetricsLayout, windowMetricsCodec } from './metrics-record.js';

/**
 * qoe.metrics.v1 records straight from their Avro bytes to the JSONEachRow lines of their
 * qoe_metrics and qoe_errors rows — the rows processors/sink.ts metricsRows builds from the decoded
 * record, the same in meaning (a property test parses both and compares). Decoding each record into
 * an object of ~45 fields with its arrays and strings, building the row object, and JSON.stringify
 * of it cost the sink ~9 µs per row (and the client's join of all lines), ~7 % of the processor +
 * sink's CPU on the dense bench (bench/README.md, fifteenth session; ~3.8 µs now); here the bytes are read once and the line is written as
 * they are read, with no string or object per field.
 *
 * Only records of the current schema, single-object encoded, are read here; anything else (an
 * earlier schema version, a long beyond 2^52, a malformed record) returns null and goes the decoding
 * way, which resolves old versions and reports bad records as before.
 */

const FIELDS = checkMetricsLayout('processors/metrics-json.ts');
const ascii = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'latin1'));
const keyOf = (i: number): Uint8Array => ascii(`,"${FIELDS[i]?.name ?? ''}":`);
/** Field positions in the layout (metrics-record.ts): 3 header fields, 13 dimensions, 21 sums, 6 arrays, the errors. */
const DIMS_AT = 3;
const SUMS_AT = 16;
const ARRAYS_AT = 37;
const DIM_KEYS = Array.from({ length: SUMS_AT - DIMS_AT }, (_, i) => keyOf(DIMS_AT + i));
const SUM_KEYS = Array.from({ length: ARRAYS_AT - SUMS_AT }, (_, i) => keyOf(SUMS_AT + i));
const ARRAY_KEYS = Array.from({ length: FIELDS.length - 1 - ARRAYS_AT }, (_, i) => keyOf(ARRAYS_AT + i));
const K_WINDOW_START = ascii('{"window_start":');
const K_WINDOW_MS = ascii(',"window_ms":');
const K_ERROR_CODE = ascii(',"error_code":');
const K_FATAL = ascii(',"fatal":');
const K_COUNT = ascii(',"count":');
const K_SRC_PARTITION = ascii(',"src_partition":');
const K_SRC_OFFSET = ascii(',"src_offset":');
const HEADER = Uint8Array.from([0xc3, 0x01, ...windowMetricsCodec.fingerprint]);
const keyBytes = (keys: Uint8Array[]): number => keys.reduce((n, k) => n + k.length, 0);
/**
 * Most bytes a line takes beyond 18 per byte of its record: every number (≤ 17 characters and a
 * comma) and every string byte (≤ 6 escaped) is read from at least one byte of the record.
 */
const METRICS_EXTRA = keyBytes([K_WINDOW_START, K_WINDOW_MS, ...DIM_KEYS, ...SUM_KEYS, ...ARRAY_KEYS, K_SRC_PARTITION, K_SRC_OFFSET]) + 128;
const ERROR_EXTRA = keyBytes([K_WINDOW_START, K_WINDOW_MS, K_ERROR_CODE, K_FATAL, K_COUNT, K_SRC_PARTITION, K_SRC_OFFSET]) + 128;

/** Thrown (and caught below) when the record is not one this reader takes. */
class NotHere extends Error {}
const NOT_HERE = new NotHere();

/**
 * Lines are written into slabs of SLAB_BYTES and handed out as views of them: a Buffer of its own
 * per line (~1 KiB, from Node's pool) made the collector account ~100 MB of external memory per
 * million beacons on the dense bench. A slab lives while a row written in it waits to be inserted.
 */
const SLAB_BYTES = 1024 * 1024;
let out = Buffer.allocUnsafeSlow(0);
let pos = 0;
let src: Buffer = Buffer.alloc(0);
let at = 0;

/** Room for `n` more bytes from `pos`: a new slab when this one has not. */
function room(n: number): void {
  if (pos + n <= out.length) return;
  out = Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, n));
  pos = 0;
}

function key(k: Uint8Array): void {
  out.set(k, pos);
  pos += k.length;
}

/** An Avro long (zigzag varint) as a number; beyond 2^52 it is not read here. */
function long(): number {
  let b = src[at++];
  if (b === undefined) throw NOT_HERE;
  let n = b & 0x7f;
  let mul = 0x80;
  while (b >= 0x80) {
    b = src[at++];
    if (b === undefined || mul > 2 ** 49) throw NOT_HERE;
    n += (b & 0x7f) * mul;
    mul *= 0x80;
  }
  if (n > Number.MAX_SAFE_INTEGER) throw NOT_HERE;
  return n % 2 === 0 ? n / 2 : -(n + 1) / 2;
}

/** An integer (|n| ≤ 2^53) as JSON digits. */
function int(n: number): void {
  if (n < 0) {
    out[pos++] = 0x2d;
    n = -n;
  }
  if (n < 10) {
    out[pos++] = 0x30 + n;
    return;
  }
  if (n < 0x80000000) {
    // Most sums: the digits' count first, then the digits from the last, in int32 arithmetic.
    let digits = 2;
    for (let m = 100; m <= n && digits < 10; m *= 10) digits++;
    let p = pos + digits;
    pos = p;
    while (n >= 10) {
      const q = (n / 10) | 0;
      out[--p] = 0x30 + n - q * 10;
      n = q;
    }
    out[--p] = 0x30 + n;
    return;
  }
  const first = pos;
  do {
    let q = Math.floor(n / 10);
    let r = n - q * 10;
    // n / 10 rounded up to the next integer (possible near 2^53): one less.
    if (r < 0) {
      q -= 1;
      r += 10;
    }
    out[pos++] = 0x30 + r;
    n = q;
  } while (n > 0);
  for (let i = first, j = pos - 1; i < j; i++, j--) {
    const d = out[i] as number;
    out[i] = out[j] as number;
    out[j] = d;
  }
}

const HEX = ascii('0123456789abcdef');

/** An Avro string as a JSON string: its UTF-8 bytes copied, with what JSON must escape escaped. */
function string(): void {
  const len = long();
  const end = at + len;
  if (len < 0 || end > src.length) throw NOT_HERE;
  out[pos++] = 0x22;
  for (let i = at; i < end; i++) {
    const b = src[i] as number;
    if (b === 0x22 || b === 0x5c) {
      out[pos++] = 0x5c;
      out[pos++] = b;
    } else if (b < 0x20) {
      out[pos++] = 0x5c;
      out[pos++] = 0x75;
      out[pos++] = 0x30;
      out[pos++] = 0x30;
      out[pos++] = HEX[b >> 4] as number;
      out[pos++] = HEX[b & 15] as number;
    } else {
      out[pos++] = b;
    }
  }
  out[pos++] = 0x22;
  at = end;
}

/** The item count of the next block of an Avro array (0: the end); a block with its byte size counts negative. */
function block(): number {
  const n = long();
  if (n >= 0) return n;
  long();
  return -n;
}

/** An Avro array of int or long as a JSON array. */
function array(): void {
  out[pos++] = 0x5b;
  let first = true;
  for (let n = block(); n !== 0; n = block()) {
    for (let i = 0; i < n; i++) {
      if (!first) out[pos++] = 0x2c;
      first = false;
      int(long());
    }
  }
  out[pos++] = 0x5d;
}

/** Past the errors array (their rows are written after the metrics row); returns how many there are. */
function skipErrors(): number {
  let count = 0;
  for (let n = block(); n !== 0; n = block()) {
    for (let i = 0; i < n; i++) {
      const len = long();
      at += len;
      if (len < 0 || at >= src.length || (src[at] !== 0 && src[at] !== 1)) throw NOT_HERE;
      at += 1;
      long();
      count += 1;
    }
  }
  return count;
}

function end(): void {
  out[pos++] = 0x7d;
  out[pos++] = 0x0a;
}

export interface EncodedMetricsRows {
  metrics: EncodedRow;
  errors: EncodedRow[];
}

/**
 * The qoe_metrics row and the qoe_errors rows of the record at `partition`/`offset` of
 * qoe.metrics.v1, as lines (lib/store/common.ts encodedRow) with their window_start, src_partition
 * and src_offset as plain fields (what the sink reads of them); null: not a record of the current
 * schema, or not one this reader takes — decode it instead.
 */
export function metricsJsonRows(record: Buffer, partition: number, offset: number): EncodedMetricsRows | null {
  if (record.length <= HEADER_BYTES) return null;
  for (let i = 0; i < HEADER_BYTES; i++) if (record[i] !== HEADER[i]) return null;
  src = record;
  at = HEADER_BYTES;
  room(METRICS_EXTRA + 18 * record.length);
  const slab = out;
  const start = pos;
  try {
    const windowStart = Math.floor(long() / 1000);
    key(K_WINDOW_START);
    int(windowStart);
    const windowMs = long();
    key(K_WINDOW_MS);
    int(windowMs);
    long(); // source_partition: not a column
    let dimsFrom = pos;
    for (const k of DIM_KEYS) {
      key(k);
      string();
    }
    let dimsTo = pos;
    for (const k of SUM_KEYS) {
      key(k);
      int(long());
    }
    for (const k of ARRAY_KEYS) {
      key(k);
      array();
    }
    const errorsAt = at;
    const errorCount = skipErrors();
    if (at !== record.length) throw NOT_HERE;
    key(K_SRC_PARTITION);
    int(partition);
    key(K_SRC_OFFSET);
    int(offset);
    end();
    const fields = (): { window_start: number; src_partition: number; src_offset: number } => ({ window_start: windowStart, src_partition: partition, src_offset: offset });
    const metrics = encodedRow(out.subarray(start, pos), fields());
    const errors: EncodedRow[] = [];
    if (errorCount > 0) {
      at = errorsAt;
      for (let n = block(); n !== 0; n = block()) {
        for (let i = 0; i < n; i++) {
          const dimsLength = dimsTo - dimsFrom;
          const before = out;
          room(ERROR_EXTRA + dimsLength + 18 * record.length);
          if (out !== before) {
            // A new slab: the dims the error rows repeat go first.
            out.set(before.subarray(dimsFrom, dimsTo), 0);
            [dimsFrom, dimsTo, pos] = [0, dimsLength, dimsLength];
          }
          const from = pos;
          key(K_WINDOW_START);
          int(windowStart);
          key(K_WINDOW_MS);
          int(windowMs);
          key(K_ERROR_CODE);
          string();
          key(K_FATAL);
          int(src[at++] as number);
          key(K_COUNT);
          int(long());
          key(K_SRC_PARTITION);
          int(partition);
          key(K_SRC_OFFSET);
          int(offset);
          // The dimension columns, as the metrics line has them.
          out.copyWithin(pos, dimsFrom, dimsTo);
          pos += dimsLength;
          end();
          errors.push(encodedRow(out.subarray(from, pos), fields()));
        }
      }
    }
    return { metrics, errors };
  } catch (err) {
    if (!(err instanceof NotHere)) throw err;
    // Nothing written is kept (the errors are checked before any of their rows is written).
    if (out === slab) pos = start;
    return null;
  } finally {
    src = EMPTY;
  }
}

const EMPTY = Buffer.alloc(0);
