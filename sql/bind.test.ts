import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isQoeError } from '../lib/errors.js';
import { createChdbStore } from '../lib/store/chdb.js';
import type { Store } from '../lib/store/types.js';
import { HOSTILE_STRINGS } from '../test/helpers/clickhouse-fixtures.js';
import { bindParams, quoteString, renderParam } from './bind.js';


describe('bindParams', () => {
  it('renders each supported type', () => {
    const cases: [string, unknown, string][] = [
      ['String', "it's", "'it\\'s'"],
      ['UInt8', 255, '255'],
      ['UInt64', 18_446_744_073_709_551_615n, '18446744073709551615'],
      ['Int64', -5, '(-5)'],
      ['Int32', 0, '0'],
      ['Float64', 1.5, '1.5'],
      ['Float64', -0.25, '(-0.25)'],
      ['DateTime', 1_700_000_000_999, 'toDateTime(1700000000)'],
      ['DateTime', new Date(Date.UTC(2024, 0, 1)), 'toDateTime(1704067200)'],
      ['Array(String)', ['a', "b'"], "['a', 'b\\'']"],
      ['Array(String)', [], 'emptyArrayString()'],
    ];
    for (const [type, value, literal] of cases) expect(renderParam(type, value)).toBe(literal);
  });

  it('refuses values outside their type', () => {
    const bad: [string, unknown][] = [
      ['UInt8', 256],
      ['UInt8', -1],
      ['Int8', 1.5],
      ['Int64', Number.MAX_SAFE_INTEGER + 1],
      ['Int64', 9_223_372_036_854_775_808n],
      ['UInt32', '5'],
      ['Float64', Number.NaN],
      ['Float64', Infinity],
      ['String', 5],
      ['String', null],
      ['DateTime', -1000],
      ['DateTime', new Date(Number.NaN)],
      ['DateTime', '2024-01-01'],
      ['Array(String)', ['a', 1]],
      ['Array(String)', 'a'],
      ['Identifier', 'qoe_metrics'],
      ['Nullable(String)', 'x'],
    ];
    for (const [type, value] of bad) {
      expect(() => renderParam(type, value), `${type} ${String(value)}`).toThrow();
    }
  });

  it('needs a value for every placeholder and a placeholder for every value', () => {
    expect(() => bindParams('SELECT {a:UInt8}', {})).toThrow(/a has no value/);
    expect(() => bindParams('SELECT {a:UInt8}', { a: 1, b: 2 })).toThrow(/without a placeholder: b/);
    expect(() => bindParams('SELECT {a:UInt8}, {a:String}', { a: 1 })).toThrow(/declared as/);
    expect(bindParams('SELECT {a:UInt8} + {a:UInt8}', { a: 1 })).toBe('SELECT 1 + 1');
    try {
      bindParams('SELECT {a:UInt8}', {});
    } catch (err) {
      expect(isQoeError(err, 'QOE_ERR_STORE_QUERY')).toBe(true);
    }
  });

  it('leaves placeholders in literals, quoted identifiers and comments alone', () => {
    const sql = "SELECT '{a:UInt8}', `{a:UInt8}`, {a:UInt8} -- {b:UInt8}\n/* {c:UInt8} */";
    expect(bindParams(sql, { a: 7 })).toBe("SELECT '{a:UInt8}', `{a:UInt8}`, 7 -- {b:UInt8}\n/* {c:UInt8} */");
  });

  it('keeps a negative number from turning into a comment', () => {
    expect(bindParams('SELECT 1-{n:Int64}', { n: -1 })).toBe('SELECT 1-(-1)');
  });

  it('escapes every control character', () => {
    expect(quoteString('a\u0001\u007f\n')).toBe("'a\\x01\\x7f\\n'");
    expect(() => quoteString('\uD800')).toThrow(/surrogate/);
  });
});

describe('bindParams round trip through chDB', () => {
  let dir: string;
  let store: Store;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qoe-bind-'));
    store = await createChdbStore({ dataDir: dir, database: 'bind_test' });
  });
  afterAll(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it.each(HOSTILE_STRINGS.map((s) => [JSON.stringify(s), s]))('SELECT {s:String} returns %s exactly', async (_label, s) => {
    const rows = await store.query<{ s: string; n: number }>('SELECT {s:String} AS s, length({s:String}) AS n', { s });
    expect(rows).toEqual([{ s, n: Buffer.byteLength(s) }]);
  });

  it('round-trips arrays, integers, floats and DateTime', async () => {
    const rows = await store.query(
      'SELECT {a:Array(String)} AS a, {i:Int64} AS i, {u:UInt64} AS u, {f:Float64} AS f, toUnixTimestamp({t:DateTime}) AS t',
      { a: [...HOSTILE_STRINGS], i: -9_007_199_254_740_991, u: 9_007_199_254_740_991n, f: -1.25e-7, t: 1_700_000_000_000 },
    );
    expect(rows).toEqual([{ a: HOSTILE_STRINGS, i: -9_007_199_254_740_991, u: 9_007_199_254_740_991, f: -1.25e-7, t: 1_700_000_000 }]);
  });
});
