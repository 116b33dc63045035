import { describe, expect, it } from 'vitest';
import avro from 'avsc';
import { createAvroCodec, crc64Avro, fingerprintOf } from './framing.js';
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
