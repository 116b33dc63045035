import type avro from 'avsc';
import type { SessionEvent } from './events.js';
import { checkRecordLayout } from './framing.js';

/** The fields and Avro types the reader below reads, in order; checked against beacon-event.avsc at load. */
const LAYOUT: readonly string[] = [
  'session_id:string', 'seq:long', 'ts_ms:long', 'received_at_ms:long', 'type:enum', 'source:enum',
  'cdn:string', 'country:string', 'asn:string', 'content_id:string', 'stream_type:string', 'player_name:string',
  'player_version:string', 'device_type:string', 'os:string', 'browser:string', 'custom1:string', 'custom2:string',
  'custom3:string', 'bitrate_kbps:null|int', 'playhead_ms:null|long', 'dropped_frames:null|long',
  'error_code:null|string', 'error_fatal:null|boolean', 'http_status:null|int', 'ttfb_ms:null|int', 'ttlb_ms:null|int',
  'startup_ms:null|int', 'client_hash:string',
];

/** Longer than any varint of a 64-bit long. */
const MAX_VARINT_BYTES = 10;

/** Node's UTF-8 slice without argument checks (what toString('utf8', start, end) ends in; avsc reads strings with it too). */
interface SliceableBuffer extends Buffer {
  utf8Slice(start: number, end: number): string;
}

const EMPTY = Buffer.alloc(0) as SliceableBuffer;
let buf = EMPTY;
let pos = 0;

function invalid(what: string): never {
  throw new Error(`invalid beacon record: ${what} at byte ${pos}`);
}

function long(): number {
  // 7 bits per byte, low first, then zigzag; arithmetic rather than bit operations beyond 2^31.
  let b = buf[pos++] ?? invalid('truncated');
  if (b < 0x80) return b % 2 === 0 ? b / 2 : -(b + 1) / 2;
  let n = b & 0x7f;
  let mul = 0x80;
  for (let i = 1; ; i++) {
    if (i === MAX_VARINT_BYTES) invalid('varint too long');
    b = buf[pos++] ?? invalid('truncated');
    n += (b & 0x7f) * mul;
    if (b < 0x80) break;
    mul *= 0x80;
  }
  return n % 2 === 0 ? n / 2 : -(n + 1) / 2;
}

function string(): string {
  const len = long();
  if (len === 0) return '';
  const end = pos + len;
  if (len < 0 || end > buf.length) invalid('string length');
  const s = buf.utf8Slice(pos, end);
  pos = end;
  return s;
}

function nullable<T>(read: () => T): T | null {
  const index = buf[pos++];
  if (index === 0) return null;
  if (index === 2) return read();
  return invalid(index === undefined ? 'truncated' : 'union index');
}

function boolean(): boolean {
  const b = buf[pos++];
  if (b === 0 || b === 1) return b === 1;
  return invalid(b === undefined ? 'truncated' : 'boolean');
}

/**
 * A reader of qoe.beacons.v1 record bodies written with the current beacon-event.avsc, straight into
 * a SessionEvent: avsc first builds the Avro record (29 snake_case fields), which codec.ts then maps
 * into a SessionEvent and its dims — two objects per event and a quarter of the processor's decoding
 * (bench/README.md, 2026-11-30 fourth session). A property test checks it returns what that path
 * returns for every event, and refuses truncated records, trailing bytes, and indexes out of range
 * (avsc would give an undefined enum symbol; this is stricter).
 */
export function createEventReader(type: avro.Type): (record: Buffer, from: number) => SessionEvent {
  const fields = checkRecordLayout(type, LAYOUT, 'schemas/event-reader.ts');
  const types = fields[4]?.type.symbols ?? [];
  const sources = fields[5]?.type.symbols ?? [];
  const symbol = <T extends string>(symbols: readonly string[]): T => (symbols[long()] as T | undefined) ?? invalid('enum index');

  return (record, from) => {
    buf = record as SliceableBuffer;
    pos = from;
    try {
      const e: SessionEvent = {
        sessionId: string(), seq: long(), tsMs: long(), receivedAtMs: long(),
        type: symbol<SessionEvent['type']>(types), source: symbol<SessionEvent['source']>(sources),
        dims: {
          cdn: string(), country: string(), asn: string(), contentId: string(), streamType: string(), playerName: string(),
          playerVersion: string(), deviceType: string(), os: string(), browser: string(), custom1: string(), custom2: string(),
          custom3: string(),
        },
        bitrateKbps: nullable(long), playheadMs: nullable(long), droppedFrames: nullable(long), errorCode: nullable(string),
        errorFatal: nullable(boolean), httpStatus: nullable(long), ttfbMs: nullable(long), ttlbMs: nullable(long),
        startupMs: nullable(long), clientHash: string(),
      };
      if (pos !== record.length) invalid('trailing data');
      return e;
    } finally {
      buf = EMPTY;
    }
  };
}

