import avro from 'avsc';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeSessionEvent, encodeSessionEvent, sessionEventCodec, sessionEventFromAvro, sessionEventType } from './codec.js';
import { blankSessionEvent, createEventReader } from './event-reader.js';
import { DIMENSIONS, EVENT_TYPES, type Dims, type SessionEvent } from './events.js';
import { HEADER_BYTES } from './framing.js';

const text = fc.oneof(fc.constantFrom('', 'cdn-a', 'US', '7922'), fc.string({ unit: 'grapheme', maxLength: 40 }));
const long = fc.oneof(fc.integer({ min: -1, max: 200 }), fc.integer({ min: -(2 ** 52), max: 2 ** 52 }));
const int = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
const event: fc.Arbitrary<SessionEvent> = fc.record({
  sessionId: text, seq: long, tsMs: long, receivedAtMs: long,
  type: fc.constantFrom(...EVENT_TYPES), source: fc.constantFrom('native', 'cmcd', 'unknown' as SessionEvent['source']),
  dims: fc.record(Object.fromEntries(DIMENSIONS.map((d) => [d, text])) as Record<keyof Dims, typeof text>),
  bitrateKbps: fc.option(int, { nil: null }), playheadMs: fc.option(long, { nil: null }), droppedFrames: fc.option(long, { nil: null }),
  errorCode: fc.option(text, { nil: null }), errorFatal: fc.option(fc.boolean(), { nil: null }), httpStatus: fc.option(int, { nil: null }),
  ttfbMs: fc.option(int, { nil: null }), ttlbMs: fc.option(int, { nil: null }), startupMs: fc.option(int, { nil: null }), clientHash: text,
});
/** avsc's decoding and codec.ts's mapping: what the reader replaces. */
const viaAvsc = (buf: Buffer): SessionEvent => sessionEventFromAvro(sessionEventCodec.decode(buf));

/** beacon-event.avsc with one field's type replaced: writes bytes the current schema's reader must refuse. */
function variant(field: string, type: avro.Schema): avro.Type {
  const schema = sessionEventType.schema() as { fields: Array<{ name: string; type: unknown }> };
  return avro.Type.forSchema({ ...schema, name: 'Variant', fields: schema.fields.map((f) => (f.name === field ? { ...f, type } : f)) } as avro.Schema);
}

describe('the beacon record reader', () => {
  it('returns what avsc and the mapping return, and the event written, for any event', () => {
    fc.assert(fc.property(event, (e) => {
      const buf = encodeSessionEvent(e);
      const fast = decodeSessionEvent(buf);
      expect(fast).toEqual(viaAvsc(buf));
      expect(fast).toEqual(e);
    }), { numRuns: 3000 });
  });

  it('reads into a reused event: each record as a fresh read gives it, nothing left of the one before', () => {
    const into = blankSessionEvent();
    fc.assert(fc.property(fc.array(event, { minLength: 1, maxLength: 5 }), (es) => {
      for (const e of es) {
        const got = decodeSessionEvent(encodeSessionEvent(e), into);
        expect(got).toBe(into);
        expect(got).toEqual(e);
      }
    }), { numRuns: 500 });
    // A refused record leaves part of itself in it; the next good one is read whole.
    const [a, b] = fc.sample(event, 2) as [SessionEvent, SessionEvent];
    const bad = encodeSessionEvent(a);
    expect(() => decodeSessionEvent(bad.subarray(0, bad.length - 1), into)).toThrow();
    expect(decodeSessionEvent(encodeSessionEvent(b), into)).toEqual(b);
  });

  it('reads a record where it lies in larger bytes as in a buffer of its own, and refuses it cut short there', () => {
    const pad = fc.uint8Array({ maxLength: 12 }).map((a) => Buffer.from(a));
    fc.assert(fc.property(event, pad, pad, (e, before, after) => {
      const rec = encodeSessionEvent(e);
      const bytes = Buffer.concat([before, rec, after]);
      const start = before.length;
      expect(decodeSessionEvent(bytes, undefined, start, start + rec.length)).toEqual(e);
      expect(decodeSessionEvent(bytes, blankSessionEvent(), start, start + rec.length)).toEqual(e);
      // Cut short, with the rest of the record (and more) still in the bytes after the end.
      for (let n = HEADER_BYTES + 1; n < rec.length; n++) expect(() => decodeSessionEvent(bytes, blankSessionEvent(), start, start + n)).toThrow();
    }), { numRuns: 300 });
  });

  it('reads dimension values kept from earlier records as written: repeats, colliding slots, values around the kept length', () => {
    // More distinct values than the reader keeps slots for (4096), all of a few lengths, so slots
    // are shared and replaced; 32 bytes is the longest kept, 33 is read each time.
    const sized = (n: number): fc.Arbitrary<string> => fc.string({ unit: fc.constantFrom('a', 'b', '7', '-'), minLength: n, maxLength: n });
    const wide = fc.string({ unit: fc.constantFrom('é', 'a', '€'), minLength: 1, maxLength: 10 });
    const pool = fc.sample(fc.oneof(sized(2), sized(5), sized(16), sized(31), sized(32), sized(33), wide), 12_000);
    const base = fc.sample(event, 1)[0] as SessionEvent;
    const into = blankSessionEvent();
    let n = 0;
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < pool.length; i += 13) {
        const dims = Object.fromEntries(DIMENSIONS.map((d, j) => [d, pool[(i + j * 7 + round) % pool.length] as string])) as Dims;
        const e = { ...base, dims };
        expect(decodeSessionEvent(encodeSessionEvent(e), into).dims).toEqual(dims);
        n += 1;
      }
    }
    expect(n).toBeGreaterThan(2500);
  });

  it('refuses every truncation of a record and a record with bytes after it', () => {
    fc.assert(fc.property(event, (e) => {
      const buf = encodeSessionEvent(e);
      for (let n = HEADER_BYTES + 1; n < buf.length; n++) expect(() => decodeSessionEvent(buf.subarray(0, n))).toThrow();
      expect(() => decodeSessionEvent(Buffer.concat([buf, Buffer.from([0])]))).toThrow(/trailing data/);
    }), { numRuns: 200 });
  });

  it('refuses an enum or union index out of range, and a boolean other than 0 or 1', () => {
    const read = createEventReader(sessionEventType);
    const base = { ...(sessionEventCodec.decode(encodeSessionEvent(fc.sample(event, 1)[0] as SessionEvent))) };
    expect(() => read(variant('type', 'int').toBuffer({ ...base, type: EVENT_TYPES.length + 5 }), 0)).toThrow(/enum index/);
    expect(() => read(variant('source', 'int').toBuffer({ ...base, source: -1 }), 0)).toThrow(/enum index/);
    expect(() => read(variant('bitrate_kbps', 'int').toBuffer({ ...base, bitrate_kbps: 2 }), 0)).toThrow(/union index/);
    // error_fatal as two raw bytes: union index 1 (zigzag 2), then a boolean byte of 5.
    expect(() => read(variant('error_fatal', { type: 'fixed', name: 'Raw', size: 2 }).toBuffer({ ...base, error_fatal: Buffer.from([2, 5]) }), 0)).toThrow(/boolean/);
    expect(read(variant('error_fatal', { type: 'fixed', name: 'Raw', size: 2 }).toBuffer({ ...base, error_fatal: Buffer.from([2, 1]) }), 0).errorFatal).toBe(true);
    // In range, the same bytes read as the current schema writes them.
    expect(read(variant('type', 'int').toBuffer({ ...base, type: 1 }), 0).type).toBe(EVENT_TYPES[1]);
  });

  it('refuses a schema whose fields it does not know (a changed beacon-event.avsc fails at load)', () => {
    expect(() => createEventReader(variant('seq', 'int'))).toThrow(/changed .*update schemas\/event-reader\.ts/);
  });
});
