import avro from 'avsc';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DIMENSIONS, type Dims } from '../schemas/events.js';
import { loadAvroType } from '../schemas/codec.js';
import { createAvroCodec } from '../schemas/framing.js';
import { SUM_FIELDS, dimsKey, emptyAcc, type WindowAcc } from './accumulator.js';
import { sessionStateCodec, windowAvro, windowStateCodec } from './changelog.js';
import { MAX_CACHED_DIMS, createSessionStateWriter, createWindowStateWriter, type SessionAvro, type WindowTable } from './state-writer.js';

const STATES = ['init', 'starting', 'playing', 'paused', 'seeking', 'rebuffering', 'ended', 'failed', 'quit'] as const;
// Dimension values from a small set (shared dims, as live) or any Unicode (multi-byte UTF-8, surrogate pairs).
const dimValue = fc.oneof(fc.constantFrom('', 'cdn-a', 'US', '7922', 'Chrome'), fc.string({ unit: 'grapheme', maxLength: 12 }));
const dims = fc.record(Object.fromEntries(DIMENSIONS.map((d) => [d, dimValue])) as Record<keyof Dims, typeof dimValue>);
const long = fc.oneof(fc.integer({ min: -1, max: 100 }), fc.integer({ min: -(2 ** 52), max: 2 ** 52 }), fc.integer({ min: -(2 ** 31), max: 2 ** 31 }), fc.constant(9007199254740990), fc.constant(-9007199254740990));
const double = fc.oneof(fc.double(), fc.integer({ min: 0, max: 2 ** 42 }));
const session: fc.Arbitrary<SessionAvro> = fc.record({
  t: long, id: fc.string({ unit: 'grapheme', maxLength: 60 }), state: fc.constantFrom(...STATES), started: fc.boolean(),
  attemptTsMs: fc.option(double, { nil: null }), sinceMs: double, extrapolatedToMs: fc.option(double, { nil: null }), lastTsMs: double,
  lastSeq: long, seenBelow: long, dims, bitrateKbps: double, droppedFrames: double, clockOffsetMs: double,
});

describe('the changelog session writer', () => {
  it('writes the bytes avsc writes, for any session (a fresh writer and one that has seen others)', () => {
    const seasoned = createSessionStateWriter(sessionStateCodec).write;
    fc.assert(fc.property(session, (s) => {
      const expected = sessionStateCodec.encode(s);
      expect(createSessionStateWriter(sessionStateCodec).write(s, dimsKey(s.dims))).toEqual(expected);
      expect(seasoned(s, dimsKey(s.dims))).toEqual(expected);
    }), { numRuns: 2000 });
  });

  it('writes each session its own dims while more distinct dims pass through than it keeps (the cache starts over)', () => {
    const writer = createSessionStateWriter(sessionStateCodec);
    const base = fc.sample(session, 1)[0] as SessionAvro;
    // 5,000 distinct dims, each twice: the cache fills to its bound, starts over, and fills again.
    for (let i = 0; i < 10_000; i++) {
      const s = { ...base, id: `s${i}`, dims: { ...base.dims, contentId: `content-${i % 5000}`, cdn: i % 2 === 0 ? 'a' : 'b' } };
      expect(writer.write(s, dimsKey(s.dims))).toEqual(sessionStateCodec.encode(s));
      expect(writer.cachedDims()).toBeLessThanOrEqual(MAX_CACHED_DIMS);
    }
    // Started over at record 4,097; every one of the 5,904 after it missed (what they needed had
    // just been dropped), so it started over once more at the bound.
    expect(writer.cachedDims()).toBe(((10_000 - MAX_CACHED_DIMS) % MAX_CACHED_DIMS) || MAX_CACHED_DIMS);
  });

  it('refuses what avsc refuses for a long (not a safe integer)', () => {
    const { write } = createSessionStateWriter(sessionStateCodec);
    const s = fc.sample(session, 1)[0] as SessionAvro;
    for (const bad of [1.5, Number.NaN, 2 ** 60, Number.MAX_SAFE_INTEGER]) {
      expect(() => sessionStateCodec.encode({ ...s, lastSeq: bad })).toThrow();
      expect(() => write({ ...s, lastSeq: bad }, dimsKey(s.dims))).toThrow(/not a long/);
    }
  });

  it('refuses a schema whose fields it does not know (a changed state-session.avsc fails at load, not on the wire)', () => {
    const schema = loadAvroType('state-session.avsc').schema() as { fields: Array<{ name: string }> };
    const changed = { ...schema, fields: [...schema.fields.slice(0, 3), { name: 'extra', type: 'int' }, ...schema.fields.slice(3)] };
    expect(() => createSessionStateWriter(createAvroCodec<SessionAvro>(avro.Type.forSchema(changed as avro.Schema)))).toThrow(/changed .*update processors\/state-writer\.ts/);
  });
});

// Sums of any sign (retractions), histograms with any int keys (Map order kept, zero counts too), error codes in any Unicode.
const counts = <K>(key: fc.Arbitrary<K>): fc.Arbitrary<Map<K, number>> => fc.array(fc.tuple(key, double), { maxLength: 12 }).map((e) => new Map(e));
const acc: fc.Arbitrary<WindowAcc> = fc.record({
  sums: fc.array(fc.oneof(double, fc.integer({ min: -(2 ** 40), max: 2 ** 40 })), { minLength: SUM_FIELDS.length, maxLength: SUM_FIELDS.length }),
  vstHist: counts(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })), ttfbHist: counts(fc.integer({ min: 0, max: 200 })),
  bitrateMs: counts(fc.integer({ min: 0, max: 14 })), errors: counts(fc.tuple(fc.constantFrom('0', '1'), fc.string({ unit: 'grapheme', maxLength: 20 })).map(([f, c]) => `${f}:${c}`)),
}).map((r) => {
  const a = emptyAcc();
  SUM_FIELDS.forEach((f, i) => (a[f] = r.sums[i] ?? 0));
  return Object.assign(a, { vstHist: r.vstHist, ttfbHist: r.ttfbHist, bitrateMs: r.bitrateMs, errors: r.errors });
});
const table = fc.constantFrom<WindowTable>('open', 'corrections');

describe('the changelog accumulator writer', () => {
  const write = createWindowStateWriter(windowStateCodec);

  it('writes the bytes avsc writes, for any accumulator, window and dims key', () => {
    fc.assert(fc.property(table, double, fc.string({ unit: 'grapheme', maxLength: 200 }), acc, (t, w, k, a) => {
      const expected = windowStateCodec.encode(windowAvro(t, w, k, a));
      expect(write(t, w, k, a)).toEqual(expected);
      // And what restore reads back is the accumulator written.
      expect(windowStateCodec.decode(write(t, w, k, a))).toEqual(windowStateCodec.decode(expected));
    }), { numRuns: 2000 });
  });

  it('grows its buffer for a value larger than any before', () => {
    const a = emptyAcc();
    for (let i = 0; i < 5000; i++) a.vstHist.set(i, i);
    a.errors = new Map([[`1:${'é'.repeat(3000)}`, 1]]);
    expect(write('open', 0, 'k'.repeat(4000), a)).toEqual(windowStateCodec.encode(windowAvro('open', 0, 'k'.repeat(4000), a)));
  });

  it('refuses what avsc refuses for a histogram key (not an int)', () => {
    for (const bad of [1.5, 2 ** 31, Number.NaN]) {
      const a = emptyAcc();
      a.vstHist.set(bad, 1);
      expect(() => windowStateCodec.encode(windowAvro('open', 0, 'k', a))).toThrow();
      expect(() => write('open', 0, 'k', a)).toThrow(/not an int/);
    }
  });

  it('refuses a schema whose fields it does not know, also in its nested records', () => {
    const schema = loadAvroType('state-window.avsc').schema() as { fields: Array<{ name: string; type: unknown }> };
    const top = { ...schema, fields: [...schema.fields, { name: 'extra', type: 'int' }] };
    expect(() => createWindowStateWriter(createAvroCodec(avro.Type.forSchema(top as avro.Schema)))).toThrow(/changed .*update processors\/state-writer\.ts/);
    const sums = schema.fields[3]?.type as { fields: unknown[] };
    const nested = { ...schema, fields: schema.fields.map((f, i) => (i === 3 ? { ...f, type: { ...sums, fields: [...sums.fields].reverse() } } : f)) };
    expect(() => createWindowStateWriter(createAvroCodec(avro.Type.forSchema(nested as avro.Schema)))).toThrow(/changed .*update processors\/state-writer\.ts/);
  });
});
