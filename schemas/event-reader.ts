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
/** Where the record ends in `buf`: reads past it refuse the record. */
let limit = 0;

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
  if (len < 0 || end > limit) invalid('string length');
  const s = buf.utf8Slice(pos, end);
  pos = end;
  return s;
}

/**
 * Decoded dimension values by their bytes. A beacon's dimensions repeat across events (a handful of
 * CDNs, countries, browsers, ASNs): a string made per value per event was ~13 native calls and
 * strings per event, most identical to one made moments before. A direct-mapped table — a value's
 * bytes hash to one slot holding the last value seen there, its bytes and its string — returns the
 * string made before when the bytes are equal, and replaces the slot otherwise. Bounded by
 * construction: DIM_SLOTS slots of at most DIM_MAX_BYTES bytes each (longer values are not kept).
 */
const DIM_SLOT_BITS = 12;
const DIM_SLOTS = 1 << DIM_SLOT_BITS;
const DIM_MAX_BYTES = 32;
const slotBytes = new Uint8Array(DIM_SLOTS * DIM_MAX_BYTES);
/** A slot's value's length in bytes; 0 = empty (the empty string is never looked up). */
const slotLength = new Uint8Array(DIM_SLOTS);
const slotString: string[] = new Array<string>(DIM_SLOTS).fill('');

function dimString(): string {
  const len = long();
  if (len === 0) return '';
  const end = pos + len;
  if (len < 0 || end > limit) invalid('string length');
  if (len > DIM_MAX_BYTES) {
    const s = buf.utf8Slice(pos, end);
    pos = end;
    return s;
  }
  // FNV-1a over the bytes, folded to a slot.
  let h = 0x811c9dc5;
  for (let i = pos; i < end; i++) h = Math.imul(h ^ (buf[i] as number), 0x01000193);
  const slot = (h ^ (h >>> DIM_SLOT_BITS) ^ (h >>> 24)) & (DIM_SLOTS - 1);
  const at = slot * DIM_MAX_BYTES;
  if (slotLength[slot] === len) {
    let i = 0;
    while (i < len && slotBytes[at + i] === buf[pos + i]) i++;
    if (i === len) {
      pos = end;
      return slotString[slot] as string;
    }
  }
  const s = buf.utf8Slice(pos, end);
  for (let i = 0; i < len; i++) slotBytes[at + i] = buf[pos + i] as number;
  slotLength[slot] = len;
  slotString[slot] = s;
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

/** A SessionEvent with every field present, in the order the reader writes them (one hidden class). */
export function blankSessionEvent(): SessionEvent {
  return {
    sessionId: '', seq: 0, tsMs: 0, receivedAtMs: 0, type: 'heartbeat', source: 'native',
    dims: {
      cdn: '', country: '', asn: '', contentId: '', streamType: '', playerName: '', playerVersion: '', deviceType: '', os: '',
      browser: '', custom1: '', custom2: '', custom3: '',
    },
    bitrateKbps: null, playheadMs: null, droppedFrames: null, errorCode: null, errorFatal: null, httpStatus: null, ttfbMs: null,
    ttlbMs: null, startupMs: null, clientHash: '',
  };
}

/**
 * A reader of qoe.beacons.v1 record bodies written with the current beacon-event.avsc, straight into
 * a SessionEvent: avsc first builds the Avro record (29 snake_case fields), which codec.ts then maps
 * into a SessionEvent and its dims — two objects per event and a quarter of the processor's decoding
 * (bench/README.md, 2026-11-30 fourth session). A property test checks it returns what that path
 * returns for every event, and refuses truncated records, trailing bytes, and indexes out of range
 * (avsc would give an undefined enum symbol; this is stricter).
 *
 * `end`: where the record ends in `record` (default: its length), to read a record where it lies
 * in a fetched batch's bytes.
 *
 * `into`: an event (from blankSessionEvent) to overwrite instead of making one — the processor
 * applies each event before reading the next, and a new event and dims per record were the largest
 * share of what it allocated (bench/README.md, eighth session). On a refused record `into` holds
 * part of it: read it only after a successful return.
 */
export function createEventReader(type: avro.Type): (record: Buffer, from: number, into?: SessionEvent, end?: number) => SessionEvent {
  const fields = checkRecordLayout(type, LAYOUT, 'schemas/event-reader.ts');
  const types = fields[4]?.type.symbols ?? [];
  const sources = fields[5]?.type.symbols ?? [];
  const symbol = <T extends string>(symbols: readonly string[]): T => (symbols[long()] as T | undefined) ?? invalid('enum index');

  return (record, from, into = blankSessionEvent(), end = record.length) => {
    buf = record as SliceableBuffer;
    pos = from;
    limit = end;
    try {
      // Assignments in the record's field order (the order of the reads).
      const e = into;
      e.sessionId = string();
      e.seq = long();
      e.tsMs = long();
      e.receivedAtMs = long();
      e.type = symbol<SessionEvent['type']>(types);
      e.source = symbol<SessionEvent['source']>(sources);
      const d = e.dims;
      d.cdn = dimString();
      d.country = dimString();
      d.asn = dimString();
      d.contentId = dimString();
      d.streamType = dimString();
      d.playerName = dimString();
      d.playerVersion = dimString();
      d.deviceType = dimString();
      d.os = dimString();
      d.browser = dimString();
      d.custom1 = dimString();
      d.custom2 = dimString();
      d.custom3 = dimString();
      e.bitrateKbps = nullable(long);
      e.playheadMs = nullable(long);
      e.droppedFrames = nullable(long);
      e.errorCode = nullable(string);
      e.errorFatal = nullable(boolean);
      e.httpStatus = nullable(long);
      e.ttfbMs = nullable(long);
      e.ttlbMs = nullable(long);
      e.startupMs = nullable(long);
      e.clientHash = string();
      // A read past the end (a varint, a union index or a boolean's byte) is found here: the same
      // records are refused as in a buffer of the record's own.
      if (pos > end) invalid('truncated');
      if (pos !== end) invalid('trailing data');
      return e;
    } finally {
      buf = EMPTY;
    }
  };
}
