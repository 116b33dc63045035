import { QoeError } from '../lib/errors.js';

/**
 * Client-side binding of `{name:Type}` placeholders into SQL text.
 *
 * Why client-side: ClickHouse 18.16 (Debian's server) predates server-side query parameters, and
 * the same statements must run there and on chDB (26.x). Every value is validated against its
 * declared type and rendered as a literal that cannot leave its token:
 *
 * - String: a single-quoted literal; backslash, quote and every control character are escaped
 *   (`\\`, `\'`, `\n`, `\xHH`). UTF-8 passes through. Strings with lone UTF-16 surrogates are
 *   refused (they cannot round-trip).
 * - UInt8..UInt64, Int8..Int64: a safe-integer number or a bigint within the type's range, rendered
 *   as a plain decimal literal (negative ones parenthesised, so `x-{n:Int64}` never becomes a `--`
 *   comment). The literal is untyped as in any SQL text: ClickHouse infers the smallest type; CAST
 *   in the statement where the type matters.
 * - Float64: a finite number.
 * - DateTime: epoch milliseconds (number) or a Date, rendered as `toDateTime(<seconds>)`, the
 *   milliseconds truncated. An epoch value names an instant, so the server timezone does not matter.
 * - Array(String): an array of strings; empty → `emptyArrayString()` (a bare `[]` is Array(Nothing)).
 *
 * Identifier is not supported: table and column names are never parameters.
 * Placeholders inside string literals, quoted identifiers and comments are left alone.
 * A placeholder without a value, or a value without a placeholder, is an error.
 */

export const PARAM_TYPES = [
  'String',
  'UInt8',
  'UInt16',
  'UInt32',
  'UInt64',
  'Int8',
  'Int16',
  'Int32',
  'Int64',
  'Float64',
  'DateTime',
  'Array(String)',
] as const;
export type ParamType = (typeof PARAM_TYPES)[number];

const INT_RANGES: Record<string, readonly [bigint, bigint]> = {
  UInt8: [0n, 255n],
  UInt16: [0n, 65_535n],
  UInt32: [0n, 4_294_967_295n],
  UInt64: [0n, 18_446_744_073_709_551_615n],
  Int8: [-128n, 127n],
  Int16: [-32_768n, 32_767n],
  Int32: [-2_147_483_648n, 2_147_483_647n],
  Int64: [-9_223_372_036_854_775_808n, 9_223_372_036_854_775_807n],
};

/** Largest DateTime: the type is a UInt32 count of seconds. */
const MAX_DATETIME_S = 4_294_967_295;

function bindError(message: string, name?: string): QoeError {
  return new QoeError('QOE_ERR_STORE_QUERY', message, name === undefined ? {} : { details: { param: name } });
}

const NAMED_ESCAPES: Record<string, string> = {
  '\\': '\\\\',
  "'": "\\'",
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\0': '\\0',
  '\b': '\\b',
  '\f': '\\f',
};

// Lone surrogates would be replaced by U+FFFD when encoded to UTF-8: the value could not round-trip.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Renders `s` as a ClickHouse string literal. */
export function quoteString(s: string): string {
  if (LONE_SURROGATE.test(s)) throw bindError('string value holds a lone UTF-16 surrogate');
  const body = s.replace(/[\\'\u0000-\u001f\u007f]/g, (c) => {
    return NAMED_ESCAPES[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
  });
  return `'${body}'`;
}

function renderInt(type: string, value: unknown, name: string): string {
  const range = INT_RANGES[type];
  if (range === undefined) throw bindError(`unsupported parameter type ${type}`, name);
  let n: bigint;
  if (typeof value === 'bigint') n = value;
  else if (typeof value === 'number' && Number.isSafeInteger(value)) n = BigInt(value);
  else throw bindError(`parameter ${name}: expected an integer (${type}), got ${describe(value)}`, name);
  if (n < range[0] || n > range[1]) throw bindError(`parameter ${name}: ${n} is out of range for ${type}`, name);
  return n < 0n ? `(${n})` : `${n}`;
}

function renderFloat(value: unknown, name: string): string {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw bindError(`parameter ${name}: expected a finite number (Float64), got ${describe(value)}`, name);
  }
  const s = String(value);
  return value < 0 ? `(${s})` : s;
}

function renderDateTime(value: unknown, name: string): string {
  const ms = value instanceof Date ? value.getTime() : value;
  if (typeof ms !== 'number' || !Number.isFinite(ms)) {
    throw bindError(`parameter ${name}: expected epoch milliseconds or a Date (DateTime), got ${describe(value)}`, name);
  }
  const seconds = Math.floor(ms / 1000);
  if (seconds < 0 || seconds > MAX_DATETIME_S) throw bindError(`parameter ${name}: ${ms} is out of the DateTime range`, name);
  return `toDateTime(${seconds})`;
}

function renderStringArray(value: unknown, name: string): string {
  if (!Array.isArray(value) || !value.every((x): x is string => typeof x === 'string')) {
    throw bindError(`parameter ${name}: expected an array of strings (Array(String))`, name);
  }
  return value.length === 0 ? 'emptyArrayString()' : `[${value.map(quoteString).join(', ')}]`;
}

/** Renders one value as a literal of `type`. */
export function renderParam(type: string, value: unknown, name = '?'): string {
  switch (type) {
    case 'String':
      if (typeof value !== 'string') throw bindError(`parameter ${name}: expected a string, got ${describe(value)}`, name);
      return quoteString(value);
    case 'Float64':
      return renderFloat(value, name);
    case 'DateTime':
      return renderDateTime(value, name);
    case 'Array(String)':
      return renderStringArray(value, name);
    default:
      if (type in INT_RANGES) return renderInt(type, value, name);
      throw bindError(`parameter ${name}: unsupported type ${type} (supported: ${PARAM_TYPES.join(', ')})`, name);
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return `number ${value}`;
  return typeof value;
}

/** Index just past the token starting at `i` if it is a literal, quoted identifier or comment. */
function skipOpaque(sql: string, i: number): number {
  const c = sql[i];
  if (c === "'" || c === '"' || c === '`') {
    let j = i + 1;
    while (j < sql.length) {
      const d = sql[j];
      if (d === '\\') j += 2;
      else if (d === c && sql[j + 1] === c) j += 2; // doubled quote
      else if (d === c) return j + 1;
      else j += 1;
    }
    throw bindError('unterminated quoted literal in SQL');
  }
  if (c === '-' && sql[i + 1] === '-') {
    const end = sql.indexOf('\n', i);
    return end === -1 ? sql.length : end;
  }
  if (c === '/' && sql[i + 1] === '*') {
    const end = sql.indexOf('*/', i + 2);
    if (end === -1) throw bindError('unterminated comment in SQL');
    return end + 2;
  }
  return i;
}

const PLACEHOLDER = /^\{([A-Za-z_][A-Za-z0-9_]*):([^{}]+)\}/;

/** Replaces every `{name:Type}` placeholder in `sql` with the literal for `params[name]`. */
export function bindParams(sql: string, params: Record<string, unknown> = {}): string {
  const used = new Map<string, string>();
  let out = '';
  let i = 0;
  while (i < sql.length) {
    const skipped = skipOpaque(sql, i);
    if (skipped !== i) {
      out += sql.slice(i, skipped);
      i = skipped;
      continue;
    }
    const m = sql[i] === '{' ? PLACEHOLDER.exec(sql.slice(i, i + 200)) : null;
    if (m === null) {
      out += sql[i];
      i += 1;
      continue;
    }
    const name = m[1] ?? '';
    const type = (m[2] ?? '').trim();
    const previous = used.get(name);
    if (previous !== undefined && previous !== type) throw bindError(`parameter ${name} declared as ${previous} and ${type}`, name);
    if (!Object.hasOwn(params, name) || params[name] === undefined) throw bindError(`parameter ${name} has no value`, name);
    used.set(name, type);
    out += renderParam(type, params[name], name);
    i += m[0].length;
  }
  const extra = Object.keys(params).filter((k) => !used.has(k) && params[k] !== undefined);
  if (extra.length > 0) throw bindError(`parameters without a placeholder: ${extra.join(', ')}`, extra[0]);
  return out;
}
