import { describe, expect, it } from 'vitest';
import avro from 'avsc';
import fc from 'fast-check';
import {
  confluentHeader, confluentSchemaId, confluentToSingleObject, createAvroCodec, crc64Avro, fingerprintOf, framingOf,
  MAX_LEARNT_WRITERS, singleObjectToConfluent,
} from './framing.js';
import { isQoeError } from '../lib/errors.js';
import { decodeSessionEvent, encodeSessionEvent, loadAvroType, sessionEventType } from './codec.js';
import { emptyDims, type SessionEvent } from './events.js';

const enc = (s: string): Buffer => Buffer.from(s, 'utf8');

describe('CRC-64-AVRO and single-object encoding', () => {
  // Vectors from Apache Avro's own tests (lang/ruby/test/test_fingerprints.rb, lang/csharp
  // SchemaFingerprints) and linkedin/goavro crc64avro_test.go.
  it.each([
    ['"int"', 0x7275d51a3f395c8fn],
    ['"string"', 0x8f014872634503c7n],
    ['"null"', 7195948357588979594n],
  ])('fingerprint of %s', (canonical, expected) => {
    expect(crc64Avro(enc(canonical))).toBe(expected);
  });

  it('writes the spec header: C3 01 + little-endian fingerprint', () => {
    const codec = createAvroCodec<number>(avro.Type.forSchema('int'));
    const buf = codec.encode(1);
    expect([...buf.subarray(0, 10)]).toEqual([0xc3, 0x01, 0x8f, 0x5c, 0x39, 0x3f, 0x1a, 0xd5, 0x75, 0x72]);
    expect(codec.decode(buf)).toBe(1);
  });

  it('refuses records without the header or with an unknown writer schema', () => {
    const codec = createAvroCodec<number>(avro.Type.forSchema('int'));
    expect(() => codec.decode(avro.Type.forSchema('int').toBuffer(1))).toThrow(/header/);
    const other = createAvroCodec<string>(avro.Type.forSchema('string')).encode('x');
    expect(() => codec.decode(other)).toThrow(/unknown writer schema/);
  });
});

describe('single-object codec: encode through a scratch buffer, decode in place', () => {
  const type = avro.Type.forSchema({
    type: 'record', name: 'R', fields: [
      { name: 'id', type: 'string' }, { name: 'n', type: 'long' }, { name: 'blob', type: 'bytes' },
      { name: 'xs', type: { type: 'array', items: 'double' } }, { name: 'tag', type: ['null', 'string'], default: null },
    ],
  });
  const record = fc.record({
    id: fc.string({ maxLength: 3000, size: 'max', unit: 'grapheme' }),
    n: fc.integer({ min: -(2 ** 52), max: 2 ** 52 }),
    blob: fc.uint8Array({ maxLength: 9000, size: 'max' }).map((a) => Buffer.from(a)),
    xs: fc.array(fc.double({ noNaN: true }), { maxLength: 300, size: 'max' }),
    tag: fc.option(fc.string({ maxLength: 20 })),
  });

  it('writes what the header and avsc\'s own toBuffer write, for records smaller and larger than the scratch buffer', () => {
    const codec = createAvroCodec<Record<string, unknown>>(type);
    const header = Buffer.concat([Buffer.from([0xc3, 0x01]), fingerprintOf(type)]);
    let large = 0;
    fc.assert(fc.property(fc.array(record, { minLength: 1, maxLength: 6 }), (recs) => {
      // Several in a row: a large record grows the scratch buffer, later ones must not carry its bytes.
      const out = recs.map((r) => codec.encode(r));
      for (const [i, r] of recs.entries()) {
        const expected = Buffer.concat([header, type.toBuffer(r)]);
        if (expected.length > 4096) large += 1;
        expect(out[i]!.equals(expected)).toBe(true);
        expect(type.isValid(codec.decode(out[i]!))).toBe(true);
        expect(type.toBuffer(codec.decode(out[i]!)).equals(type.toBuffer(r))).toBe(true);
      }
    }), { numRuns: 120 });
    expect(large).toBeGreaterThan(20);
  });

  it('decodes records of alternating writer schemas with the right reader, and refuses truncated or trailing bytes', () => {
    const v1 = avro.Type.forSchema({ type: 'record', name: 'R', fields: [{ name: 'id', type: 'string' }] });
    const v2 = avro.Type.forSchema({ type: 'record', name: 'R', fields: [{ name: 'id', type: 'string' }, { name: 'n', type: 'long', default: 7 }] });
    const codec = createAvroCodec<{ id: string; n: number }>(v2, [v1]);
    const old = createAvroCodec<{ id: string }>(v1);
    for (let i = 0; i < 5; i++) {
      expect({ ...codec.decode(old.encode({ id: `a${i}` })) }).toEqual({ id: `a${i}`, n: 7 });
      expect({ ...codec.decode(codec.encode({ id: `b${i}`, n: i })) }).toEqual({ id: `b${i}`, n: i });
    }
    const buf = codec.encode({ id: 'abcdef', n: 300 });
    expect(() => codec.decode(buf.subarray(0, buf.length - 1))).toThrow(/truncated/);
    expect(() => codec.decode(Buffer.concat([buf, Buffer.from([0])]))).toThrow(/trailing/);
    const unknown = Buffer.from(buf);
    unknown[5] = unknown[5]! ^ 0xff;
    expect(() => codec.decode(unknown)).toThrow(/unknown writer schema/);
    // The last fingerprint's reader is still the right one after a refused record.
    expect({ ...codec.decode(buf) }).toEqual({ id: 'abcdef', n: 300 });
  });
});

describe('schema evolution', () => {
  it('reads a record written with the previous SessionEvent schema, filling the new fields with defaults', () => {
    const v0 = loadAvroType('history/beacon-event.v0.avsc');
    expect(fingerprintOf(v0).equals(fingerprintOf(sessionEventType))).toBe(false);
    const old = createAvroCodec<Record<string, unknown>>(v0);
    const rec: Record<string, unknown> = {
      session_id: 's-1', seq: 3, ts_ms: 1_700_000_000_000, received_at_ms: 1_700_000_000_100, type: 'first_frame', source: 'native',
      cdn: 'cdn-a', country: 'US', asn: '7922', content_id: 'c', stream_type: 'vod', player_name: 'p', player_version: '1',
      device_type: 'desktop', os: 'linux', browser: 'chrome', custom1: '', custom2: '', custom3: '',
      bitrate_kbps: 3000, playhead_ms: null, dropped_frames: null, error_code: null, error_fatal: null, client_hash: 'abc',
    };
    const e = decodeSessionEvent(old.encode(rec));
    expect(e).toMatchObject({ sessionId: 's-1', seq: 3, type: 'first_frame', bitrateKbps: 3000, startupMs: null, httpStatus: null });
    expect(e.dims.cdn).toBe('cdn-a');
  });

  it('round-trips the current schema', () => {
    const e: SessionEvent = {
      sessionId: 'x', seq: 0, tsMs: 1, receivedAtMs: 2, type: 'request', source: 'cmcd', dims: { ...emptyDims(), cdn: 'b' },
      bitrateKbps: null, playheadMs: 5, droppedFrames: null, errorCode: null, errorFatal: null, httpStatus: 503, ttfbMs: 40, ttlbMs: 90,
      startupMs: null, clientHash: 'h',
    };
    expect(decodeSessionEvent(encodeSessionEvent(e))).toEqual(e);
  });
});

describe('Confluent framing', () => {
  const intCodec = createAvroCodec<number>(avro.Type.forSchema('int'));

  it('writes magic byte 0 and the schema id as a 4-byte big-endian int', () => {
    expect([...confluentHeader(1)]).toEqual([0, 0, 0, 0, 1]);
    expect([...confluentHeader(0x01020304)]).toEqual([0, 1, 2, 3, 4]);
    expect([...confluentHeader(0x7fffffff)]).toEqual([0, 0x7f, 0xff, 0xff, 0xff]);
    // Java's int: ids above 2^31 - 1 do not exist; a negative one reads back as written.
    expect(confluentSchemaId(confluentHeader(-2))).toBe(-2);
    expect(confluentSchemaId(Buffer.from([0, 0, 0, 1, 0, 0x99]))).toBe(256);
  });

  it('swaps headers around the same Avro body, both ways', () => {
    const single = intCodec.encode(-3);
    const confluent = singleObjectToConfluent(single, 42);
    expect([...confluent]).toEqual([0, 0, 0, 0, 42, ...single.subarray(10)]);
    expect(confluentToSingleObject(confluent, intCodec.fingerprint).equals(single)).toBe(true);
  });

  it('tells the framings apart by the first byte(s)', () => {
    expect(framingOf(intCodec.encode(1))).toBe('single-object');
    expect(framingOf(Buffer.from([0, 0, 0, 0, 7, 2]))).toBe('confluent');
    expect(framingOf(Buffer.from([0, 0, 0]))).toBeUndefined(); // too short for an id
    expect(framingOf(Buffer.from([0xc3, 0x01, 0]))).toBeUndefined(); // too short for a fingerprint
    expect(framingOf(Buffer.from('{"reason":"late"}'))).toBeUndefined();
  });

  it('refuses a Confluent record no registry resolved with a stable error code naming the id', () => {
    let err: unknown;
    try {
      intCodec.decode(Buffer.from([0, 0, 0, 1, 0, 2]));
    } catch (e) {
      err = e;
    }
    expect(isQoeError(err, 'QOE_ERR_SCHEMA_UNKNOWN_WRITER')).toBe(true);
    expect((err as Error).message).toMatch(/schema id 256/);
  });

  it('learns a writer schema by content: a newer writer resolves into the current schema', () => {
    const v1 = avro.Type.forSchema({ type: 'record', name: 'R', fields: [{ name: 'a', type: 'int' }] });
    const v2 = avro.Type.forSchema({ type: 'record', name: 'R', fields: [{ name: 'a', type: 'int' }, { name: 'b', type: 'string', default: '' }] });
    const codec = createAvroCodec<{ a: number }>(v1);
    const fromV2 = createAvroCodec<{ a: number; b: string }>(v2).encode({ a: 7, b: 'dropped' });
    expect(codec.reads(fingerprintOf(v2).toString('hex'))).toBe(false);
    expect(() => codec.decode(fromV2)).toThrow(/unknown writer schema/);
    codec.addWriter(v2);
    expect(codec.reads(fingerprintOf(v2).toString('hex'))).toBe(true);
    expect(codec.decode(fromV2)).toEqual({ a: 7 });
    // A writer Avro cannot resolve is refused, and the codec is unchanged.
    expect(() => codec.addWriter(avro.Type.forSchema({ type: 'record', name: 'R', fields: [{ name: 'a', type: 'string' }] }))).toThrow();
  });

  it('learns at most MAX_LEARNT_WRITERS writer schemas', () => {
    const codec = createAvroCodec<Record<string, unknown>>(avro.Type.forSchema({ type: 'record', name: 'R', fields: [] }));
    const writer = (i: number): avro.Type => avro.Type.forSchema({ type: 'record', name: 'R', fields: [{ name: `f${i}`, type: 'int' }] });
    for (let i = 0; i < MAX_LEARNT_WRITERS; i++) codec.addWriter(writer(i));
    codec.addWriter(writer(0)); // already known: no-op
    let err: unknown;
    try {
      codec.addWriter(writer(MAX_LEARNT_WRITERS));
    } catch (e) {
      err = e;
    }
    expect(isQoeError(err, 'QOE_ERR_SCHEMA_UNKNOWN_WRITER')).toBe(true);
  });
});
