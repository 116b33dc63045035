/**
 * Pure: CMCD records (CTA-5004-B, wire version v=2; v1 request-mode records too) from text.
 *
 * A record is an RFC 8941 dictionary (see sf.ts). Keys are typed here against the spec:
 * "Unknown keys and invalid values are ignored; a record whose `v` is higher than understood is
 * ignored whole." Custom keys (`com.example-name`: a key containing a hyphen) are kept untyped.
 * A body is one record per line (split on \r?\n, each line trimmed, empty lines skipped).
 * Nothing here throws: every record becomes a value, parsed or not.
 */
import { parseDictionary, type BareItem, type Member } from './sf.js';

/** The highest CMCD version this receiver understands. */
export const CMCD_MAX_VERSION = 2;
/** Longest record line accepted (characters); longer lines are rejected without being parsed. */
export const MAX_RECORD_CHARS = 16 * 1024;

export const OBJECT_TYPES = ['m', 'a', 'v', 'av', 'i', 'c', 'tt', 'k', 'o'] as const;
export type CmcdObjectType = (typeof OBJECT_TYPES)[number];
export const PLAYER_STATES = ['s', 'p', 'k', 'r', 'a', 'w', 'e', 'f', 'q', 'd'] as const;
export type CmcdPlayerState = (typeof PLAYER_STATES)[number];

/** One entry of a v2 "inner list of integers with token identifiers", e.g. `br=(5000;v 320;a)`. */
export interface TypedNumber {
  value: number;
  /** The object type the value is tagged with (`;v`), null when untagged. */
  ot: CmcdObjectType | null;
}

export interface CmcdRecord {
  /** `v`, 1 when absent (CTA-5004-B: "If this key is omitted, … interpret the values as defined by version 1"). */
  v: number;
  // tokens
  e?: string;
  sta?: CmcdPlayerState;
  st?: 'v' | 'l' | 'll';
  sf?: string;
  ot?: CmcdObjectType;
  // strings
  sid?: string;
  cid?: string;
  cdn?: string;
  h?: string;
  url?: string;
  cen?: string;
  cs?: string;
  // non-negative integers
  ts?: number;
  sn?: number;
  msd?: number;
  rc?: number;
  ttfb?: number;
  ttfbb?: number;
  ttlb?: number;
  dfa?: number;
  pt?: number;
  d?: number;
  dl?: number;
  ltc?: number;
  rtp?: number;
  /** Playback rate (decimal). */
  pr?: number;
  // booleans (bare key = true)
  bs?: boolean;
  su?: boolean;
  bg?: boolean;
  nr?: boolean;
  // inner lists of strings
  ec?: string[];
  nor?: string[];
  // inner lists of integers tagged by object type (v1: a bare integer)
  br?: TypedNumber[];
  pb?: TypedNumber[];
  tb?: TypedNumber[];
  bl?: TypedNumber[];
  mtp?: TypedNumber[];
  bsa?: TypedNumber[];
  bsd?: TypedNumber[];
  bsda?: TypedNumber[];
  ab?: TypedNumber[];
  lb?: TypedNumber[];
  tab?: TypedNumber[];
  lab?: TypedNumber[];
  tpb?: TypedNumber[];
  tbl?: TypedNumber[];
  /** Custom keys (containing '-'), as parsed. */
  custom: Map<string, Member>;
}

export type CmcdParseErrorCode = 'syntax' | 'unsupported_version' | 'too_long';

export type CmcdParseResult =
  | {
      ok: true;
      record: CmcdRecord;
      /** Keys ignored because their value was invalid, and members skipped because they did not parse. */
      ignored: string[];
    }
  | { ok: false; code: CmcdParseErrorCode; message: string };

/** A parsed line of a body; `line` is 1-based, counting every line of the body (empty ones too). */
export type CmcdLineResult = CmcdParseResult & { line: number };

type Key<T> = { [K in keyof CmcdRecord]-?: CmcdRecord[K] extends T | undefined ? (T extends CmcdRecord[K] ? K : never) : never }[keyof CmcdRecord];

/** Maximum lengths the spec sets (CTA-5004-B: sid 64, cid/cdn/h 128, cen 64). */
const STRING_MAX: Readonly<Record<string, number>> = { sid: 64, cid: 128, cdn: 128, h: 128, cen: 64 };
const STRING_KEYS = ['sid', 'cid', 'cdn', 'h', 'url', 'cen', 'cs'] as const satisfies readonly Key<string>[];
const INTEGER_KEYS = ['ts', 'sn', 'msd', 'rc', 'ttfb', 'ttfbb', 'ttlb', 'dfa', 'pt', 'd', 'dl', 'ltc', 'rtp'] as const satisfies readonly Key<number>[];
const BOOLEAN_KEYS = ['bs', 'su', 'bg', 'nr'] as const satisfies readonly Key<boolean>[];
const STRING_LIST_KEYS = ['ec', 'nor'] as const satisfies readonly Key<string[]>[];
const TYPED_LIST_KEYS = ['br', 'pb', 'tb', 'bl', 'mtp', 'bsa', 'bsd', 'bsda', 'ab', 'lb', 'tab', 'lab', 'tpb', 'tbl'] as const satisfies readonly Key<TypedNumber[]>[];

function isOneOf<T extends string>(values: readonly T[], v: string): v is T {
  return (values as readonly string[]).includes(v);
}

function bareOf(m: Member): BareItem | undefined {
  return m.kind === 'item' ? m.bare : undefined;
}

function token(m: Member): string | undefined {
  const b = bareOf(m);
  return b?.type === 'token' ? b.value : undefined;
}

function nonNegativeInteger(b: BareItem | undefined): number | undefined {
  return b?.type === 'integer' && b.value >= 0 ? b.value : undefined;
}

function typedNumber(item: { bare: BareItem; params: Map<string, BareItem> }): TypedNumber | undefined {
  const value = nonNegativeInteger(item.bare);
  if (value === undefined) return undefined;
  let ot: CmcdObjectType | null = null;
  for (const [name, p] of item.params) {
    if (p.type === 'boolean' && p.value && isOneOf(OBJECT_TYPES, name)) {
      ot = name;
      break;
    }
  }
  return { value, ot };
}

function typedList(m: Member): TypedNumber[] | undefined {
  if (m.kind === 'item') {
    // CMCD v1 sends `br=3200`: a bare integer, untagged.
    const one = typedNumber(m);
    return one === undefined ? undefined : [one];
  }
  const out: TypedNumber[] = [];
  for (const item of m.items) {
    const n = typedNumber(item);
    if (n === undefined) return undefined;
    out.push(n);
  }
  return out;
}

function stringList(m: Member): string[] | undefined {
  if (m.kind !== 'list') return undefined;
  const out: string[] = [];
  for (const item of m.items) {
    if (item.bare.type !== 'string') return undefined;
    out.push(item.bare.value);
  }
  return out;
}

/** Sets `key` from `m` if valid; returns false when the value is invalid for the key. */
function assign(r: CmcdRecord, key: string, m: Member): boolean {
  if (isOneOf(STRING_KEYS, key)) {
    const b = bareOf(m);
    if (b?.type !== 'string' || b.value.length > (STRING_MAX[key] ?? Infinity)) return false;
    r[key] = b.value;
    return true;
  }
  if (isOneOf(INTEGER_KEYS, key)) {
    const n = nonNegativeInteger(bareOf(m));
    if (n === undefined) return false;
    r[key] = n;
    return true;
  }
  if (isOneOf(BOOLEAN_KEYS, key)) {
    const b = bareOf(m);
    if (b?.type !== 'boolean') return false;
    r[key] = b.value;
    return true;
  }
  if (isOneOf(STRING_LIST_KEYS, key)) {
    const l = stringList(m);
    if (l === undefined) return false;
    r[key] = l;
    return true;
  }
  if (isOneOf(TYPED_LIST_KEYS, key)) {
    const l = typedList(m);
    if (l === undefined) return false;
    r[key] = l;
    return true;
  }
  return assignOther(r, key, m);
}

function assignOther(r: CmcdRecord, key: string, m: Member): boolean {
  const t = token(m);
  switch (key) {
    case 'e':
      // Unknown event tokens are kept: a newer event type is still an event of this session.
      if (t === undefined) return false;
      r.e = t;
      return true;
    case 'sta':
      if (t === undefined || !isOneOf(PLAYER_STATES, t)) return false;
      r.sta = t;
      return true;
    case 'st':
      if (t !== 'v' && t !== 'l' && t !== 'll') return false;
      r.st = t;
      return true;
    case 'sf':
      if (t === undefined) return false;
      r.sf = t;
      return true;
    case 'ot':
      if (t === undefined || !isOneOf(OBJECT_TYPES, t)) return false;
      r.ot = t;
      return true;
    case 'pr': {
      const b = bareOf(m);
      if ((b?.type !== 'decimal' && b?.type !== 'integer') || b.value < 0) return false;
      r.pr = b.value;
      return true;
    }
    default:
      if (key.includes('-')) r.custom.set(key, m);
      // Unknown keys (e.g. v1's nrr, or keys of a later revision) are ignored, not errors.
      return true;
  }
}

/** Parses one record (one line, already trimmed). */
export function parseCmcdRecord(text: string): CmcdParseResult {
  if (text.length > MAX_RECORD_CHARS) return { ok: false, code: 'too_long', message: `record longer than ${MAX_RECORD_CHARS} characters` };
  const { dict, skipped } = parseDictionary(text);
  if (dict.size === 0) return { ok: false, code: 'syntax', message: skipped[0] ?? 'empty record' };
  const vMember = dict.get('v');
  const v = vMember === undefined ? undefined : nonNegativeInteger(bareOf(vMember));
  if (v !== undefined && v > CMCD_MAX_VERSION) {
    return { ok: false, code: 'unsupported_version', message: `v=${v} is higher than ${CMCD_MAX_VERSION}` };
  }
  const ignored = [...skipped];
  const record: CmcdRecord = { v: v !== undefined && v >= 1 ? v : 1, custom: new Map() };
  if (vMember !== undefined && (v === undefined || v < 1)) ignored.push('v');
  for (const [key, m] of dict) {
    if (key !== 'v' && !assign(record, key, m)) ignored.push(key);
  }
  return { ok: true, record, ignored };
}

/** Parses a body: one record per line. Empty lines are skipped (the SVTA library ends bodies with LF). */
export function parseCmcdBody(body: string): CmcdLineResult[] {
  const out: CmcdLineResult[] = [];
  body.split(/\r?\n/).forEach((raw, index) => {
    const text = raw.trim();
    if (text !== '') out.push({ ...parseCmcdRecord(text), line: index + 1 });
  });
  return out;
}
