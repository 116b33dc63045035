import { ClickHouseError, ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import { Readable } from 'node:stream';
import type { Logger } from '../logger.js';
import { QoeError } from '../errors.js';
import { bindParams } from '../../sql/bind.js';
import { OUTPUT_SETTINGS, assertIdentifier, assertTable, backoffMs, sleep, stripTerminator, toJsonEachRowBytes } from './common.js';
import type { Row, Store } from './types.js';

/**
 * A ClickHouse server over HTTP (@clickhouse/client), from Debian's 18.16 to current versions.
 *
 * What 18.16 needs (checked against 18.16.1):
 * - No server-side query parameters: values are bound client-side (sql/bind.ts).
 * - Only the settings it knows: the client sends none by default besides ours
 *   (`output_format_json_quote_64bit_integers=0`, known to 18.16, so Int64 sums come back as
 *   numbers); never enable response compression or progress headers here without checking.
 * - JSONEachRow in and out works; JSONCompactEachRow does not exist there.
 * - Its errors read `Code: 62, e.displayText() = DB::Exception: ...`, which the client's parser
 *   (written for `Code: 62. DB::Exception: ... (SYNTAX_ERROR)`) does not recognise, so the code is
 *   taken from the message here.
 * - A database named in the request must exist, or every request fails (Code 81): the database is
 *   created through a connection bound to `default` first.
 *
 * Inserts are retried with backoff on connection errors (bounded). A retried insert can land twice
 * if the first attempt reached the server before the connection broke: at-least-once, rows carry
 * their source offsets. SQL errors are never retried.
 */

export interface ClickHouseStoreOptions {
  /** http(s)://[user:pass@]host:port */
  url: string;
  database: string;
  log?: Logger;
  /** Per-request timeout. Default 30000. */
  requestTimeoutMs?: number;
  /** Attempts per insert (and for the first contact) on connection errors. Default 5. */
  attempts?: number;
  /** First backoff; doubles per attempt up to retryMaxMs, with jitter. Default 100. */
  retryBaseMs?: number;
  /** Default 2000. */
  retryMaxMs?: number;
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ERR_SOCKET_CLOSED',
]);

// Server error codes that say "not now" rather than "not this statement": TIMEOUT_EXCEEDED,
// TOO_MANY_SIMULTANEOUS_QUERIES, SOCKET_TIMEOUT, NETWORK_ERROR, TOO_MANY_PARTS.
const RETRIABLE_SERVER_CODES = new Set([159, 202, 209, 210, 252]);

/** The server's numeric error code, from a ClickHouseError or an 18.16-style message. */
function serverCode(err: unknown): number | undefined {
  if (err instanceof ClickHouseError) {
    const code = Number(err.code);
    return Number.isInteger(code) ? code : undefined;
  }
  if (!(err instanceof Error)) return undefined;
  const m = /^\s*Code: (\d+)[.,]/.exec(err.message);
  return m === null ? undefined : Number(m[1]);
}

/** Maps a client error onto the catalogue: statement errors are final, the rest retriable. */
export function classifyClickHouseError(err: unknown, what: string): QoeError {
  if (err instanceof QoeError) return err;
  const message = err instanceof Error ? err.message : String(err);
  const code = serverCode(err);
  if (code !== undefined) {
    const kind = RETRIABLE_SERVER_CODES.has(code) ? 'QOE_ERR_STORE_UNAVAILABLE' : 'QOE_ERR_STORE_QUERY';
    return new QoeError(kind, `ClickHouse: ${message}`, { cause: err, details: { what, clickhouseCode: code } });
  }
  const sysCode = typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : '';
  // Not a server answer: refused, reset, timed out ('Timeout error.'), or a proxy's error page.
  return new QoeError('QOE_ERR_STORE_UNAVAILABLE', `ClickHouse unreachable: ${message}`, {
    cause: err,
    details: { what, errno: NETWORK_CODES.has(sysCode) ? sysCode : undefined },
  });
}

function makeClient(opts: ClickHouseStoreOptions, database: string): ClickHouseClient {
  return createClient({
    url: opts.url,
    database,
    request_timeout: opts.requestTimeoutMs ?? 30_000,
    application: 'qoe-stream',
    clickhouse_settings: { ...OUTPUT_SETTINGS },
    // Errors are wrapped and logged by this adapter; the client's own console logger stays quiet.
    log: { level: ClickHouseLogLevel.OFF },
  });
}

export async function createClickHouseStore(opts: ClickHouseStoreOptions): Promise<Store> {
  assertIdentifier(opts.database, 'database');
  const log = opts.log?.child({ component: 'store', kind: 'clickhouse' });
  const attempts = Math.max(1, opts.attempts ?? 5);
  const baseMs = opts.retryBaseMs ?? 100;
  const maxMs = opts.retryMaxMs ?? 2000;

  async function withRetry<T>(what: string, f: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await f();
      } catch (raw) {
        const err = classifyClickHouseError(raw, what);
        if (!err.retriable || attempt + 1 >= attempts) throw err;
        const delayMs = backoffMs(attempt, baseMs, maxMs);
        log?.warn({ err, what, attempt: attempt + 1, delayMs }, 'ClickHouse call failed, retrying');
        await sleep(delayMs);
      }
    }
  }

  // The request's database must exist before any request names it.
  const bootstrap = makeClient(opts, 'default');
  try {
    await withRetry('create database', () => bootstrap.command({ query: `CREATE DATABASE IF NOT EXISTS ${opts.database}` }));
  } finally {
    await bootstrap.close();
  }
  const client = makeClient(opts, opts.database);
  let closed = false;

  async function once<T>(what: string, f: () => Promise<T>): Promise<T> {
    if (closed) throw new QoeError('QOE_ERR_STORE_UNAVAILABLE', 'ClickHouse store is closed');
    try {
      return await f();
    } catch (err) {
      throw classifyClickHouseError(err, what);
    }
  }

  return {
    kind: 'clickhouse',
    async exec(sql) {
      await once('exec', () => client.command({ query: sql }));
    },
    async query<T extends Row = Row>(sql: string, params?: Record<string, unknown>): Promise<T[]> {
      const query = bindParams(stripTerminator(sql), params);
      return once('query', async () => {
        const rs = await client.query({ query, format: 'JSONEachRow' });
        return rs.json<T>();
      });
    },
    async insert(table, rows) {
      assertTable(table);
      if (rows.length === 0) return;
      if (closed) throw new QoeError('QOE_ERR_STORE_UNAVAILABLE', 'ClickHouse store is closed');
      // The body as bytes, sent as they are: client.insert takes objects (or an object stream) for
      // JSONEachRow and stringifies each itself; exec sends a byte stream as the INSERT's data.
      const body = toJsonEachRowBytes(rows);
      await withRetry(`insert ${table}`, async () => {
        const res = await client.exec({ query: `INSERT INTO ${table} FORMAT JSONEachRow`, values: Readable.from([body], { objectMode: false }) });
        // The (empty) answer read to its end, so that the connection goes back to the pool.
        for await (const _ of res.stream) void _;
      });
    },
    async version() {
      const rows = await once('version', async () => {
        const rs = await client.query({ query: 'SELECT version() AS v', format: 'JSONEachRow' });
        return rs.json<{ v: string }>();
      });
      return rows[0]?.v ?? '';
    },
    async close() {
      if (closed) return;
      closed = true;
      await client.close();
    },
  };
}
