import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Session, drainPending } from 'chdb';
import type { Logger } from '../logger.js';
import { QoeError } from '../errors.js';
import { bindParams } from '../../sql/bind.js';
import { assertIdentifier, assertTable, parseJsonEachRow, stripTerminator, toJsonEachRow } from './common.js';
import type { Row, Store } from './types.js';

/**
 * The embedded store: chDB (ClickHouse 26.x in-process) on a data directory that survives restarts.
 *
 * - One chDB data directory per process: close this store before opening another.
 * - Every call goes through queryAsync/insert, which run on libuv threads, not the event loop.
 * - The session is opened with `--session_timezone=UTC`, so DateTime is read, written and
 *   partitioned in UTC whatever TZ the process has (the server config sets `<timezone>UTC`).
 * - 64-bit integers come back as JSON numbers (`output_format_json_quote_64bit_integers=0`, also
 *   chDB's default), see OUTPUT_SETTINGS.
 */

export interface ChdbStoreOptions {
  /** The process data directory; chDB keeps its files in `<dataDir>/chdb`. */
  dataDir: string;
  database: string;
  log?: Logger;
}

const CONNECTION_ARGS = ['--session_timezone=UTC', '--output_format_json_quote_64bit_integers=0'] as const;

// Codes the chdb package gives errors that are about the connection, not the statement.
const UNAVAILABLE_CODES = new Set(['CHDB_CLOSED', 'CHDB_CONNECTION', 'CHDB_TIMEOUT', 'CHDB_ABORT', 'CHDB_INTERNAL']);

function wrap(err: unknown, sql: string): QoeError {
  if (err instanceof QoeError) return err;
  const code = typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : '';
  const clickhouseCode =
    typeof err === 'object' && err !== null && 'clickhouseCode' in err ? Number(err.clickhouseCode) : undefined;
  const message = err instanceof Error ? err.message : String(err);
  const details = { sql: sql.slice(0, 200), clickhouseCode };
  if (UNAVAILABLE_CODES.has(code)) return new QoeError('QOE_ERR_STORE_UNAVAILABLE', `chDB: ${message}`, { cause: err, details });
  return new QoeError('QOE_ERR_STORE_QUERY', `chDB: ${message}`, { cause: err, details });
}

export async function createChdbStore(opts: ChdbStoreOptions): Promise<Store> {
  assertIdentifier(opts.database, 'database');
  const path = join(opts.dataDir, 'chdb');
  await mkdir(path, { recursive: true });
  let session: Session;
  try {
    session = new Session(path, { connectionArgs: CONNECTION_ARGS });
  } catch (err) {
    throw new QoeError('QOE_ERR_STORE_UNAVAILABLE', `chDB: cannot open ${path}`, { cause: err });
  }
  const log = opts.log?.child({ component: 'store', kind: 'chdb' });
  let closed = false;

  async function run(sql: string, format?: string): Promise<string> {
    if (closed) throw new QoeError('QOE_ERR_STORE_UNAVAILABLE', 'chDB store is closed');
    try {
      const result = await session.queryAsync(sql, format === undefined ? {} : { format });
      return result.text();
    } catch (err) {
      throw wrap(err, sql);
    }
  }

  try {
    await run(`CREATE DATABASE IF NOT EXISTS ${opts.database}`);
    // `USE` persists for the session: unqualified table names resolve in this database.
    await run(`USE ${opts.database}`);
  } catch (err) {
    session.close();
    throw err;
  }
  log?.debug({ path, database: opts.database }, 'chDB store open');

  return {
    kind: 'chdb',
    async exec(sql) {
      await run(sql);
    },
    async query<T extends Row = Row>(sql: string, params?: Record<string, unknown>): Promise<T[]> {
      const bound = bindParams(stripTerminator(sql), params);
      return parseJsonEachRow<T>(await run(bound, 'JSONEachRow'));
    },
    async insert(table, rows) {
      assertTable(table);
      if (rows.length === 0) return;
      if (closed) throw new QoeError('QOE_ERR_STORE_UNAVAILABLE', 'chDB store is closed');
      try {
        await session.insert({ table, values: toJsonEachRow(rows), format: 'JSONEachRow' });
      } catch (err) {
        throw wrap(err, `INSERT INTO ${table}`);
      }
    },
    async version() {
      const rows = parseJsonEachRow<{ v: string }>(await run('SELECT version() AS v', 'JSONEachRow'));
      return rows[0]?.v ?? '';
    },
    async close() {
      if (closed) return;
      closed = true;
      session.close();
      // close() defers while a query still runs on a libuv thread; wait so that a new store on
      // the same directory can open in this process.
      await drainPending();
      log?.debug({ path }, 'chDB store closed');
    },
  };
}
