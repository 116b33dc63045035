import { QoeError } from '../errors.js';
import type { Row } from './types.js';

/** Pieces shared by the chDB and the server adapters: both speak JSONEachRow both ways. */

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const TABLE = /^([A-Za-z_][A-Za-z0-9_]*\.)?[A-Za-z_][A-Za-z0-9_]*$/;

export function assertIdentifier(name: string, what: string): void {
  if (!IDENTIFIER.test(name)) throw new QoeError('QOE_ERR_CONFIG_INVALID', `${what} ${name}: not an identifier`);
}

export function assertTable(table: string): void {
  if (!TABLE.test(table)) throw new QoeError('QOE_ERR_STORE_QUERY', `table ${table}: not an identifier`);
}

/**
 * A Date becomes epoch seconds, which every ClickHouse version parses into DateTime from
 * JSONEachRow (18.16 has no best-effort parsing: it reads 'YYYY-MM-DD hh:mm:ss' or a number, not
 * the ISO string `JSON.stringify` makes of a Date).
 */
function jsonValue(value: unknown): unknown {
  if (value instanceof Date) return Math.floor(value.getTime() / 1000);
  if (typeof value === 'bigint') return value.toString();
  return value;
}

/**
 * A row with its values made JSON-ready for JSONEachRow (Date → epoch seconds, bigint → string): the
 * row itself when nothing needs it (the sink's rows), else a copy.
 */
export function toJsonRow(row: Row): Record<string, unknown> {
  let plainAlready = true;
  for (const k in row) {
    const v = row[k];
    if (v instanceof Date || typeof v === 'bigint') {
      plainAlready = false;
      break;
    }
  }
  if (plainAlready) return row;
  const plain: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) plain[k] = jsonValue(v);
  return plain;
}

/**
 * A row may come already encoded: its JSONEachRow line (bytes, ending in a newline) under this key,
 * beside the few columns its producer itself reads as plain fields. The line is what is inserted;
 * the plain fields only have to agree with it. The sink encodes qoe.metrics.v1 records straight from
 * their Avro bytes into such lines (processors/metrics-json.ts): decoding each record, a row object
 * per record and JSON.stringify of it were ~7 % of the processor + sink's CPU on the dense bench
 * (bench/README.md, fifteenth session).
 */
export const JSON_LINE: unique symbol = Symbol('qoe.jsonLine');

export type EncodedRow = Row & { [JSON_LINE]: Buffer };

export function encodedRow(line: Buffer, fields: Row): EncodedRow {
  return Object.assign(fields, { [JSON_LINE]: line });
}

/** Rows as the bytes of JSONEachRow: one object per line, keys are column names. */
export function toJsonEachRowBytes(rows: readonly Row[]): Buffer {
  const lines: Buffer[] = [];
  for (const row of rows) lines.push((row as Partial<EncodedRow>)[JSON_LINE] ?? Buffer.from(`${JSON.stringify(toJsonRow(row))}\n`, 'utf8'));
  return Buffer.concat(lines);
}

/** Rows as JSONEachRow text: one object per line, keys are column names. */
export function toJsonEachRow(rows: readonly Row[]): string {
  return toJsonEachRowBytes(rows).toString('utf8');
}

/** Parses JSONEachRow output. */
export function parseJsonEachRow<T>(text: string): T[] {
  const rows: T[] = [];
  for (const line of text.split('\n')) {
    if (line.length > 0) rows.push(JSON.parse(line) as T);
  }
  return rows;
}

/** Drops a trailing `;` so a FORMAT clause can follow. */
export function stripTerminator(sql: string): string {
  return sql.trimEnd().replace(/;\s*$/, '').trimEnd();
}

/**
 * Settings both adapters apply to every query. 64-bit integers are written as JSON numbers rather
 * than strings (18.16 quotes them by default; chDB 26.x already does not), so sums come back as
 * numbers. Values beyond Number.MAX_SAFE_INTEGER lose precision: cast to String in SQL where that
 * can happen.
 */
export const OUTPUT_SETTINGS = { output_format_json_quote_64bit_integers: 0 } as const;

/** Small helpers for bounded retry with exponential backoff and jitter. */
export function backoffMs(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const exp = Math.min(maxMs, baseMs * 2 ** attempt);
  return Math.round(exp / 2 + (random() * exp) / 2);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
