/**
 * Pure: RFC 8941 (Structured Field Values) Dictionary parsing, the syntax of a CMCD record.
 *
 * RFC 8941 fails a whole field on any syntax error. CTA-5004-B asks receivers to ignore invalid
 * values instead, so a member that does not parse is skipped up to the next top-level comma and
 * reported in `skipped`; the other members are kept.
 */

export type BareItem =
  | { type: 'integer'; value: number }
  | { type: 'decimal'; value: number }
  | { type: 'string'; value: string }
  | { type: 'token'; value: string }
  | { type: 'boolean'; value: boolean }
  /** base64 text, as sent (not decoded: CMCD defines no byte-sequence key). */
  | { type: 'bytes'; value: string };

/** Ordered; a repeated name overwrites the earlier value in place (RFC 8941 §4.2.3.2). */
export type Params = Map<string, BareItem>;
export interface Item {
  kind: 'item';
  bare: BareItem;
  params: Params;
}
export interface InnerList {
  kind: 'list';
  items: Item[];
  params: Params;
}
export type Member = Item | InnerList;
export type Dictionary = Map<string, Member>;

export interface DictionaryParse {
  dict: Dictionary;
  /** One message per member that was skipped because it did not parse. */
  skipped: string[];
}

class SfSyntaxError extends Error {}

const TCHAR = /^[!#$%&'*+\-.^_`|~0-9A-Za-z:/]$/;
const KEY_FIRST = /^[a-z*]$/;
const KEY_CHAR = /^[a-z0-9_\-.*]$/;
const BASE64 = /^[A-Za-z0-9+/=]$/;

interface Cursor {
  s: string;
  i: number;
}

function fail(c: Cursor, what: string): never {
  throw new SfSyntaxError(`${what} at offset ${c.i}`);
}

function skipSp(c: Cursor): void {
  while (c.s[c.i] === ' ') c.i += 1;
}

function skipOws(c: Cursor): void {
  while (c.s[c.i] === ' ' || c.s[c.i] === '\t') c.i += 1;
}

function parseKey(c: Cursor): string {
  const first = c.s[c.i];
  if (first === undefined || !KEY_FIRST.test(first)) fail(c, 'expected a key');
  const start = c.i;
  c.i += 1;
  while (c.i < c.s.length && KEY_CHAR.test(c.s[c.i] ?? '')) c.i += 1;
  return c.s.slice(start, c.i);
}

function parseNumber(c: Cursor): BareItem {
  const start = c.i;
  if (c.s[c.i] === '-') c.i += 1;
  const intStart = c.i;
  while (c.i < c.s.length && /[0-9]/.test(c.s[c.i] ?? '')) c.i += 1;
  const intDigits = c.i - intStart;
  if (intDigits === 0) fail(c, 'expected a digit');
  if (c.s[c.i] !== '.') {
    if (intDigits > 15) fail(c, 'integer longer than 15 digits');
    return { type: 'integer', value: Number(c.s.slice(start, c.i)) };
  }
  if (intDigits > 12) fail(c, 'decimal integer part longer than 12 digits');
  c.i += 1;
  const fracStart = c.i;
  while (c.i < c.s.length && /[0-9]/.test(c.s[c.i] ?? '')) c.i += 1;
  const fracDigits = c.i - fracStart;
  if (fracDigits === 0 || fracDigits > 3) fail(c, 'decimal needs 1 to 3 fraction digits');
  return { type: 'decimal', value: Number(c.s.slice(start, c.i)) };
}

function parseString(c: Cursor): BareItem {
  c.i += 1; // opening DQUOTE
  let out = '';
  while (c.i < c.s.length) {
    const ch = c.s[c.i] ?? '';
    c.i += 1;
    if (ch === '\\') {
      const next = c.s[c.i];
      if (next !== '"' && next !== '\\') fail(c, 'invalid escape in string');
      out += next;
      c.i += 1;
    } else if (ch === '"') {
      return { type: 'string', value: out };
    } else {
      const code = ch.charCodeAt(0);
      if (code < 0x20 || code > 0x7e) fail(c, 'non-printable or non-ASCII character in string');
      out += ch;
    }
  }
  fail(c, 'unterminated string');
}

function parseToken(c: Cursor): BareItem {
  const start = c.i;
  c.i += 1;
  while (c.i < c.s.length && TCHAR.test(c.s[c.i] ?? '')) c.i += 1;
  return { type: 'token', value: c.s.slice(start, c.i) };
}

function parseBytes(c: Cursor): BareItem {
  c.i += 1;
  const start = c.i;
  while (c.i < c.s.length && BASE64.test(c.s[c.i] ?? '')) c.i += 1;
  if (c.s[c.i] !== ':') fail(c, 'unterminated byte sequence');
  const value = c.s.slice(start, c.i);
  c.i += 1;
  return { type: 'bytes', value };
}

function parseBareItem(c: Cursor): BareItem {
  const ch = c.s[c.i];
  if (ch === undefined) fail(c, 'expected a value');
  if (ch === '-' || (ch >= '0' && ch <= '9')) return parseNumber(c);
  if (ch === '"') return parseString(c);
  if (ch === ':') return parseBytes(c);
  if (ch === '?') {
    const v = c.s[c.i + 1];
    if (v !== '0' && v !== '1') fail(c, 'invalid boolean');
    c.i += 2;
    return { type: 'boolean', value: v === '1' };
  }
  if (ch === '*' || /[A-Za-z]/.test(ch)) return parseToken(c);
  fail(c, `unexpected character ${JSON.stringify(ch)}`);
}

function parseParams(c: Cursor): Params {
  const params: Params = new Map();
  while (c.s[c.i] === ';') {
    c.i += 1;
    skipSp(c);
    const key = parseKey(c);
    let value: BareItem = { type: 'boolean', value: true };
    if (c.s[c.i] === '=') {
      c.i += 1;
      value = parseBareItem(c);
    }
    params.set(key, value);
  }
  return params;
}

function parseItem(c: Cursor): Item {
  const bare = parseBareItem(c);
  return { kind: 'item', bare, params: parseParams(c) };
}

function parseInnerList(c: Cursor): InnerList {
  c.i += 1; // '('
  const items: Item[] = [];
  for (;;) {
    skipSp(c);
    if (c.s[c.i] === ')') {
      c.i += 1;
      return { kind: 'list', items, params: parseParams(c) };
    }
    items.push(parseItem(c));
    const next = c.s[c.i];
    if (next !== ' ' && next !== ')') fail(c, 'expected a space or ) in inner list');
  }
}

function parseMember(c: Cursor): [string, Member] {
  const key = parseKey(c);
  if (c.s[c.i] !== '=') return [key, { kind: 'item', bare: { type: 'boolean', value: true }, params: parseParams(c) }];
  c.i += 1;
  return [key, c.s[c.i] === '(' ? parseInnerList(c) : parseItem(c)];
}

/** Index of the next top-level comma at or after `from` (outside strings and inner lists), or the end. */
function nextTopLevelComma(s: string, from: number): number {
  let depth = 0;
  let inString = false;
  for (let i = from; i < s.length; i += 1) {
    const ch = s[i];
    if (inString) {
      if (ch === '\\') i += 1;
      else if (ch === '"') inString = false;
    } else if (ch === '"') inString = true;
    else if (ch === '(') depth += 1;
    else if (ch === ')') depth = Math.max(0, depth - 1);
    else if (ch === ',' && depth === 0) return i;
  }
  return s.length;
}

/** Parses one dictionary (one CMCD record). Never throws. */
export function parseDictionary(input: string): DictionaryParse {
  const dict: Dictionary = new Map();
  const skipped: string[] = [];
  const c: Cursor = { s: input, i: 0 };
  skipSp(c);
  while (c.i < c.s.length) {
    const memberStart = c.i;
    try {
      const [key, member] = parseMember(c);
      skipOws(c);
      if (c.i < c.s.length && c.s[c.i] !== ',') fail(c, 'expected a comma');
      dict.set(key, member);
    } catch (err) {
      if (!(err instanceof SfSyntaxError)) throw err;
      skipped.push(`${err.message} (member starting at offset ${memberStart})`);
      // Rescan from the member's start so that quotes and parentheses are matched from the outside.
      c.i = nextTopLevelComma(c.s, memberStart);
    }
    if (c.i >= c.s.length) break;
    c.i += 1; // ','
    skipOws(c);
    if (c.i >= c.s.length) skipped.push('trailing comma');
  }
  return { dict, skipped };
}
