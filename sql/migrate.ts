import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../lib/logger.js';
import { QoeError } from '../lib/errors.js';
import { projectPath } from '../lib/paths.js';
import type { Store } from '../lib/store/types.js';
import { bindParams } from './bind.js';

/**
 * Forward-only migrations: `sql/NNN_name.sql`, applied in version order, each recorded in
 * `schema_migrations` once all its statements have run. ClickHouse has no transactions, so a
 * migration that fails half-way is re-run from its first statement next time: write statements
 * that can run twice (`IF NOT EXISTS`). 18.16 has no `ADD COLUMN IF NOT EXISTS`; a plain
 * `ALTER TABLE t ADD COLUMN c …` whose column already exists is skipped here instead.
 *
 * Processes migrate one at a time: every role of a distributed deployment opens the store at start,
 * and a migration that redefines a view (004) is not safe to run twice concurrently (one process
 * could recreate the old view after another dropped it). The lock is a table only one CREATE can
 * make (DDL on one server is atomic); its holder records itself in it and drops it when done. A
 * process that finds it waits, then re-reads what is applied. The holder writes heartbeats; a lock
 * left by a process that died is taken over once it has none for `lockStaleMs`. Applied versions
 * are read with DISTINCT (a version recorded twice by an older release without the lock is harmless).
 */

export interface Migration {
  version: number;
  name: string;
  statements: string[];
}

export interface MigrateResult {
  applied: number[];
  skipped: number[];
}

const FILE = /^(\d{3})_([A-Za-z0-9_]+)\.sql$/;

// 18.16-compatible: no `IF NOT EXISTS` on columns, no DateTime64, plain MergeTree.
const CREATE_MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS schema_migrations
(
    version UInt32,
    name String,
    applied_at DateTime
)
ENGINE = MergeTree()
ORDER BY version`;

/**
 * Splits a migration file into statements: a statement ends at a `;` that ends a line (trailing
 * whitespace aside). Lines whose first non-blank characters are `--` are comments and dropped.
 */
export function splitStatements(text: string): string[] {
  const statements: string[] = [];
  let current: string[] = [];
  const flush = (): void => {
    const stmt = current.join('\n').trim();
    if (stmt.length > 0) statements.push(stmt);
    current = [];
  };
  for (const line of text.split(/\r?\n/)) {
    if (line.trimStart().startsWith('--')) continue;
    const trimmed = line.trimEnd();
    if (trimmed.endsWith(';')) {
      current.push(trimmed.slice(0, -1));
      flush();
    } else {
      current.push(line);
    }
  }
  flush();
  return statements;
}

/** Reads `dir` (default: the package's sql/) for NNN_name.sql files, sorted by version. */
export async function loadMigrations(dir: string = projectPath('sql')): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort();
  const migrations: Migration[] = [];
  const seen = new Set<number>();
  for (const file of files) {
    const m = FILE.exec(file);
    if (m === null) {
      throw new QoeError('QOE_ERR_CONFIG_INVALID', `migration file ${file}: expected NNN_name.sql`);
    }
    const version = Number(m[1]);
    if (seen.has(version)) throw new QoeError('QOE_ERR_CONFIG_INVALID', `migration version ${version} appears twice`);
    seen.add(version);
    const statements = splitStatements(await readFile(join(dir, file), 'utf8'));
    migrations.push({ version, name: m[2] ?? '', statements });
  }
  return migrations;
}

export interface MigrateOptions {
  /** Database the store is bound to; created if absent. */
  database: string;
  /** Where the NNN_name.sql files are (default: the package's sql/). */
  dir?: string;
  /** Migrations to apply instead of reading `dir` (tests). */
  migrations?: Migration[];
  log?: Logger;
  /** Clock for applied_at (default Date.now). */
  now?: () => number;
  /** How long to wait for another process's migrations before giving up (default 15 min). */
  lockWaitMs?: number;
  /** A lock whose holder has not written for this long (it writes every quarter of it) is taken over (default 60 s). */
  lockStaleMs?: number;
}

const LOCK_TABLE = 'schema_migrations_lock';
const TABLE_ALREADY_EXISTS = 57;

function clickhouseCode(err: unknown): number | undefined {
  const details = (err as { details?: { clickhouseCode?: unknown } }).details;
  return details?.clickhouseCode === undefined ? undefined : Number(details.clickhouseCode);
}

/**
 * Runs `fn` holding the migration lock. The holder adds a row every lockStaleMs / 4 while it works;
 * a waiter takes the lock over when the newest row is older than lockStaleMs, or when the table has
 * had no row for that long (its maker died between the CREATE and the INSERT). chDB needs no lock:
 * its data directory belongs to one process.
 */
async function withMigrationLock<T>(store: Store, opts: MigrateOptions, fn: () => Promise<T>): Promise<T> {
  if (store.kind === 'chdb') return fn();
  const owner = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  const staleMs = opts.lockStaleMs ?? 60_000;
  const deadline = Date.now() + (opts.lockWaitMs ?? 900_000);
  let holderlessSince: number | undefined;
  for (let attempt = 0; ; attempt++) {
    try {
      await store.exec(`CREATE TABLE ${LOCK_TABLE} (owner String, locked_at DateTime) ENGINE = Log`);
    } catch (err) {
      if (clickhouseCode(err) !== TABLE_ALREADY_EXISTS) throw err;
      // The holder may be writing or dropping the table while this reads it: an error says nothing.
      // Ages by the server's clock (the holder writes now() too): hosts' clocks may disagree.
      const read = await store.query<{ owner: string; age: number }>(
        `SELECT owner, toUInt32(now()) - toUInt32(locked_at) AS age FROM ${LOCK_TABLE} ORDER BY locked_at DESC LIMIT 1`).catch(() => undefined);
      const holder = read?.[0];
      if (read !== undefined && holder === undefined) holderlessSince ??= Date.now();
      else if (holder !== undefined) holderlessSince = undefined;
      // locked_at has whole seconds: a heartbeat can look up to 1 s older than it is.
      const stale = holder !== undefined ? Number(holder.age) * 1000 > staleMs + 1000 : Date.now() - (holderlessSince ?? Date.now()) > staleMs;
      if (stale) {
        opts.log?.warn({ holder: holder?.owner ?? null }, 'taking over a stale migration lock');
        await store.exec(`DROP TABLE IF EXISTS ${LOCK_TABLE}`);
        holderlessSince = undefined;
        continue;
      }
      if (Date.now() > deadline) {
        throw new QoeError('QOE_ERR_STORE_UNAVAILABLE', `migrations are locked by ${holder?.owner ?? 'a process that has not recorded itself'}; gave up waiting`);
      }
      if (attempt === 0) opts.log?.info({ holder: holder?.owner ?? null }, 'another process is migrating; waiting');
      await new Promise((r) => setTimeout(r, 250));
      continue;
    }
    const beat = (): Promise<void> => store.exec(bindParams(`INSERT INTO ${LOCK_TABLE} SELECT {owner:String}, now()`, { owner }));
    await beat();
    // Still alive: a long backfill must not look like a dead holder.
    const heartbeat = setInterval(() => void beat().catch(() => undefined), staleMs / 4);
    heartbeat.unref();
    try {
      return await fn();
    } finally {
      clearInterval(heartbeat);
      await store.exec(`DROP TABLE IF EXISTS ${LOCK_TABLE}`);
    }
  }
}

const ADD_COLUMN = /^ALTER\s+TABLE\s+([A-Za-z_][A-Za-z0-9_]*)\s+ADD\s+COLUMN\s+([A-Za-z_][A-Za-z0-9_]*)\s/i;

/** True for `ALTER TABLE t ADD COLUMN c …` when t already has c (a re-run of a half-applied migration). */
async function addsExistingColumn(store: Store, stmt: string): Promise<boolean> {
  const m = ADD_COLUMN.exec(stmt);
  if (m === null) return false;
  const rows = await store.query<{ n: number | string }>(
    'SELECT count() AS n FROM system.columns WHERE database = currentDatabase() AND table = {t:String} AND name = {c:String}',
    { t: m[1], c: m[2] },
  );
  return Number(rows[0]?.n ?? 0) > 0;
}

/** Applies the migrations not yet recorded in `schema_migrations`, in order. */
export async function migrate(store: Store, opts: MigrateOptions): Promise<MigrateResult> {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(opts.database)) {
    throw new QoeError('QOE_ERR_CONFIG_INVALID', `database ${opts.database}: not an identifier`);
  }
  const migrations = opts.migrations ?? (await loadMigrations(opts.dir));
  await store.exec(`CREATE DATABASE IF NOT EXISTS ${opts.database}`);
  await store.exec(CREATE_MIGRATIONS_TABLE);
  const applied = async (): Promise<Set<number>> =>
    new Set((await store.query<{ version: number }>('SELECT DISTINCT version FROM schema_migrations')).map((r) => Number(r.version)));
  // Nothing to do (every restart of an up-to-date deployment): no lock.
  const done = await applied();
  if (migrations.every((m) => done.has(m.version))) return { applied: [], skipped: migrations.map((m) => m.version) };
  return withMigrationLock(store, opts, async () => apply(store, migrations, await applied(), opts));
}

async function apply(store: Store, migrations: Migration[], done: Set<number>, opts: MigrateOptions): Promise<MigrateResult> {
  const now = opts.now ?? Date.now;
  const result: MigrateResult = { applied: [], skipped: [] };
  for (const m of migrations) {
    if (done.has(m.version)) {
      result.skipped.push(m.version);
      continue;
    }
    for (const stmt of m.statements) {
      if (await addsExistingColumn(store, stmt)) continue;
      await store.exec(stmt);
    }
    await store.insert('schema_migrations', [{ version: m.version, name: m.name, applied_at: new Date(now()) }]);
    opts.log?.info({ version: m.version, name: m.name, statements: m.statements.length }, 'migration applied');
    result.applied.push(m.version);
  }
  return result;
}
