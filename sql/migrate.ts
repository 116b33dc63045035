import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../lib/logger.js';
import { QoeError } from '../lib/errors.js';
import { projectPath } from '../lib/paths.js';
import type { Store } from '../lib/store/types.js';

/**
 * Forward-only migrations: `sql/NNN_name.sql`, applied in version order, each recorded in
 * `schema_migrations` once all its statements have run. ClickHouse has no transactions, so a
 * migration that fails half-way is re-run from its first statement next time: write statements
 * that can run twice (`IF NOT EXISTS`). 18.16 has no `ADD COLUMN IF NOT EXISTS`; a plain
 * `ALTER TABLE t ADD COLUMN c …` whose column already exists is skipped here instead.
 *
 * Two processes migrating at once may both apply a version (and record it twice); statements that
 * can run twice make that harmless, and applied versions are read with DISTINCT.
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
  const now = opts.now ?? Date.now;
  await store.exec(`CREATE DATABASE IF NOT EXISTS ${opts.database}`);
  await store.exec(CREATE_MIGRATIONS_TABLE);
  const rows = await store.query<{ version: number }>('SELECT DISTINCT version FROM schema_migrations');
  const done = new Set(rows.map((r) => Number(r.version)));
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
