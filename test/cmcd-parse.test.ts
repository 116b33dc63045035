import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeCmcd, toCmcdValue, type Cmcd } from '@svta/cml-cmcd';
import { parseCmcdBody, parseCmcdRecord, type CmcdParseResult, type CmcdRecord } from '../ingest/cmcd/parse.js';
import { parseDictionary, type BareItem, type Dictionary, type Item, type Member, type Params } from '../ingest/cmcd/sf.js';

// --- A test-only RFC 8941 serializer (§4.1), to round-trip generated dictionaries through the parser.

function serializeBare(b: BareItem): string {
  switch (b.type) {
    case 'integer':
      return String(b.value);
    case 'decimal': {
      const fixed = b.value.toFixed(3).replace(/0+$/, '');
      return fixed.endsWith('.') ? `${fixed}0` : fixed;
    }
    case 'string':
      return `"${b.value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
    case 'token':
      return b.value;
    case 'boolean':
      return b.value ? '?1' : '?0';
    case 'bytes':
      return `:${b.value}:`;
  }
}

function serializeParams(p: Params): string {
  let out = '';
  for (const [k, v] of p) out += v.type === 'boolean' && v.value ? `;${k}` : `;${k}=${serializeBare(v)}`;
  return out;
}

function serializeItem(i: Item): string {
  return serializeBare(i.bare) + serializeParams(i.params);
}

function serializeDictionary(d: Dictionary): string {
  return [...d]
    .map(([k, m]) => {
      if (m.kind === 'list') return `${k}=(${m.items.map(serializeItem).join(' ')})${serializeParams(m.params)}`;
      if (m.bare.type === 'boolean' && m.bare.value) return k + serializeParams(m.params);
      return `${k}=${serializeItem(m)}`;
    })
    .join(',');
}

// --- Generators (RFC 8941 §3).

const LC = 'abcdefghijklmnopqrstuvwxyz';
const key = fc
  .tuple(fc.constantFrom(...(LC + '*').split('')), fc.array(fc.constantFrom(...(LC + '0123456789_-.*').split('')), { maxLength: 8 }))
  .map(([h, t]) => h + t.join(''));
const TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ:/";
const bare: fc.Arbitrary<BareItem> = fc.oneof(
  fc.integer({ min: -999_999_999_999_999, max: 999_999_999_999_999 }).map((value) => ({ type: 'integer' as const, value })),
  fc.integer({ min: -999_999_999_999_999, max: 999_999_999_999_999 }).map((n) => ({ type: 'decimal' as const, value: n / 1000 })),
  fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 20 }).map((value) => ({ type: 'string' as const, value })),
  fc
    .tuple(fc.constantFrom(...'*ABCXYZabcxyz'.split('')), fc.array(fc.constantFrom(...TCHARS.split('')), { maxLength: 10 }))
    .map(([h, t]) => ({ type: 'token' as const, value: h + t.join('') })),
  fc.boolean().map((value) => ({ type: 'boolean' as const, value })),
  fc.uint8Array({ maxLength: 12 }).map((u) => ({ type: 'bytes' as const, value: Buffer.from(u).toString('base64') })),
);
const params: fc.Arbitrary<Params> = fc.array(fc.tuple(key, bare), { maxLength: 3 }).map((entries) => new Map(entries));
const item: fc.Arbitrary<Item> = fc.record({ kind: fc.constant('item' as const), bare, params });
const member: fc.Arbitrary<Member> = fc.oneof(item, fc.record({ kind: fc.constant('list' as const), items: fc.array(item, { maxLength: 4 }), params }));
const dictionary: fc.Arbitrary<Dictionary> = fc.array(fc.tuple(key, member), { minLength: 1, maxLength: 8 }).map((entries) => new Map(entries));

function ok(r: CmcdParseResult): CmcdRecord {
  if (!r.ok) throw new Error(`expected a record, got ${r.code}: ${r.message}`);
  return r.record;
}

describe('parseDictionary (RFC 8941)', () => {
  it('round-trips any dictionary through the serializer', () => {
    fc.assert(
      fc.property(dictionary, (d) => {
        const out = parseDictionary(serializeDictionary(d));
        expect(out.skipped).toEqual([]);
        expect(out.dict).toEqual(d);
      }),
      { numRuns: 500 },
    );
  });

  it('never throws on arbitrary input', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (s) => {
        parseDictionary(s);
        parseCmcdRecord(s);
      }),
      { numRuns: 2000 },
    );
  });

  it.each([
    ['a=1,b', [['a', 1], ['b', true]]],
    ['a=1 , b=2', [['a', 1], ['b', 2]]],
    ['a=1,a=2', [['a', 2]]],
  ] as const)('%s', (text, expected) => {
    const { dict, skipped } = parseDictionary(text);
    expect(skipped).toEqual([]);
    expect([...dict].map(([k, m]) => [k, m.kind === 'item' ? m.bare.value : null])).toEqual(expected);
  });

  it.each<[string, string[]]>([
    ['a="unterminated,b=2', []], // the string runs to the end: nothing after it can be trusted
    ['a=1,B=2,c=3', ['a', 'c']],
    ['a=(1 2,b=2', []],
    ['a="x\\n",b=2', ['b']],
    ['a=1.2345,b=2', ['b']],
    ['a=1 b=2,c=3', ['c']],
  ])('skips the member that does not parse and keeps the others: %s', (text, kept) => {
    const { dict, skipped } = parseDictionary(text);
    expect([...dict.keys()]).toEqual(kept);
    expect(skipped.length).toBeGreaterThan(0);
  });
});

describe('parseCmcdRecord', () => {
  it('types known keys: tokens, strings with escapes, inner lists with object-type parameters, custom keys', () => {
    const r = ok(parseCmcdRecord('br=(5000;v 320;a),bs,cid="a\\"b\\\\c",com.example-name=42,e=ps,ec=("E1" "E2"),pr=1.25,sid="s1",sn=7,st=ll,sta=p,ts=1700000000000,v=2'));
    expect(r).toMatchObject({
      v: 2, e: 'ps', sta: 'p', st: 'll', sid: 's1', cid: 'a"b\\c', sn: 7, ts: 1700000000000, bs: true, pr: 1.25, ec: ['E1', 'E2'],
      br: [{ value: 5000, ot: 'v' }, { value: 320, ot: 'a' }],
    });
    expect(r.custom.get('com.example-name')).toMatchObject({ kind: 'item', bare: { type: 'integer', value: 42 } });
  });

  it('accepts v1 bare integers for list keys and defaults v to 1', () => {
    const r = ok(parseCmcdRecord('br=3200,bl=21300,ot=v,sid="s"'));
    expect(r).toMatchObject({ v: 1, br: [{ value: 3200, ot: null }], bl: [{ value: 21300, ot: null }], ot: 'v' });
  });

  it('ignores unknown keys and invalid values, keeping the rest', () => {
    const res = parseCmcdRecord('sid="s",sta=zz,ts="1",msd=-5,cid=tok,zz=1,nrr="1-2",v=2');
    expect(res.ok).toBe(true);
    if (!res.ok) return;
    expect(res.record).toEqual({ v: 2, sid: 's', custom: new Map() });
    expect(res.ignored.sort()).toEqual(['cid', 'msd', 'sta', 'ts']);
  });

  it('ignores a string longer than the spec allows (sid ≤ 64)', () => {
    const res = ok(parseCmcdRecord(`sid="${'x'.repeat(65)}",cid="c"`));
    expect(res.sid).toBeUndefined();
    expect(res.cid).toBe('c');
  });

  it('ignores a record whose v is higher than 2, whole', () => {
    expect(parseCmcdRecord('e=ps,sid="s",sta=p,v=3')).toMatchObject({ ok: false, code: 'unsupported_version' });
  });

  it('rejects a record with nothing parseable, and an over-long line, as values (never throws)', () => {
    expect(parseCmcdRecord('{"json":true}')).toMatchObject({ ok: false, code: 'syntax' });
    expect(parseCmcdRecord(`sid="${'x'.repeat(20_000)}"`)).toMatchObject({ ok: false, code: 'too_long' });
  });
});

describe('parseCmcdBody', () => {
  it('one record per line, CRLF or LF, lines trimmed, empty lines skipped, line numbers kept', () => {
    const out = parseCmcdBody('e=t,sid="a",ts=1,v=2\r\n\r\n   e=t,sid="b",ts=2,v=2  \n%%%\ne=t,sid="c",v=3\n');
    expect(out.map((r) => [r.line, r.ok ? r.record.sid : r.code])).toEqual([
      [1, 'a'],
      [3, 'b'],
      [4, 'syntax'],
      [5, 'unsupported_version'],
    ]);
  });
});

// --- Property: whatever @svta/cml-cmcd encodes (event mode), we parse to the same values.

const sta = fc.constantFrom('s', 'p', 'k', 'r', 'a', 'w', 'e', 'f', 'q', 'd');
const safeString = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), minLength: 1, maxLength: 40 });
const kbps = fc.integer({ min: 0, max: 200_000 });
const svtaRecord = fc.record(
  {
    sid: safeString,
    cid: safeString,
    cdn: safeString,
    e: fc.constantFrom('ps', 'e', 't', 'rr', 'bc'),
    sta,
    ts: fc.integer({ min: 1_600_000_000_000, max: 2_000_000_000_000 }),
    sn: fc.nat({ max: 1_000_000 }),
    msd: fc.nat({ max: 100_000 }),
    dfa: fc.nat({ max: 100_000 }),
    rc: fc.integer({ min: 0, max: 599 }),
    ttfb: fc.nat({ max: 60_000 }),
    ttlb: fc.nat({ max: 60_000 }),
    ec: fc.array(safeString, { minLength: 1, maxLength: 3 }),
    bv: kbps,
    ba: kbps,
    pb: kbps,
    st: fc.constantFrom('v', 'l', 'll'),
    bs: fc.constant(true),
  },
  { requiredKeys: ['sid', 'e', 'ts'] },
);

describe('interop with @svta/cml-cmcd encodeCmcd (property)', () => {
  it('parses every encoded event record back to the same values', () => {
    fc.assert(
      fc.property(svtaRecord, (x) => {
        // "This key MUST only be reported on events of type `rr`": the encoder drops rc/ttfb/ttlb elsewhere.
        if (x.e !== 'rr') {
          delete x.rc;
          delete x.ttfb;
          delete x.ttlb;
        }
        const cmcd: Record<string, unknown> = { ...x };
        delete cmcd['bv'];
        delete cmcd['ba'];
        if (x.bv !== undefined && x.ba !== undefined) cmcd['br'] = [toCmcdValue(x.bv, { v: true }), toCmcdValue(x.ba, { a: true })];
        if (x.pb !== undefined) cmcd['pb'] = [toCmcdValue(x.pb, { v: true })];
        const text = encodeCmcd(cmcd as Cmcd, { reportingMode: 'event' });
        const res = parseCmcdRecord(text);
        expect(res.ok, text).toBe(true);
        if (!res.ok) return;
        expect(res.ignored, text).toEqual([]);
        const { bv, ba, pb, ...plain } = x;
        expect(res.record).toMatchObject({ v: 2, ...plain });
        if (bv !== undefined && ba !== undefined) expect(res.record.br).toEqual([{ value: bv, ot: 'v' }, { value: ba, ot: 'a' }]);
        if (pb !== undefined) expect(res.record.pb).toEqual([{ value: pb, ot: 'v' }]);
      }),
      { numRuns: 300 },
    );
  });
});
