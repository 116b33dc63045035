import { describe, expect, it } from 'vitest';
import { loadMigrations } from './migrate.js';
import { ROLLUPS, rollupInsertSql, STATE_INSERT_SETTINGS } from './rollups.js';

/**
 * Every statement that writes aggregate states from a SELECT aggregates on one thread: ClickHouse
 * 18.16 sometimes stores corrupt states from a multi-threaded one (sql/rollups.ts). The corruption
 * is rare (about 1 insert in 60 in test/rollups.test.ts's data), so the roll-up tests alone would
 * catch a statement without the setting only by chance.
 */
const writesStates = (stmt: string): boolean => /^\s*INSERT\s+INTO\b/i.test(stmt) && /\bSELECT\b/i.test(stmt) && /\w+State\s*\(/.test(stmt);

describe('INSERT … SELECT of aggregate states', () => {
  it('the migrations\' backfills end in the one-thread setting', async () => {
    const stmts = (await loadMigrations()).flatMap((m) => m.statements.map((s) => ({ version: m.version, s })));
    const found = stmts.filter((x) => writesStates(x.s));
    expect(found.length).toBe(4);
    for (const { version, s } of found) expect(s.trimEnd(), `migration ${version}: ${s.slice(0, 60)}`).toMatch(/SETTINGS max_threads = 1$/);
  });

  it('the sink\'s repair statement ends in it too', () => {
    expect(STATE_INSERT_SETTINGS).toBe('SETTINGS max_threads = 1');
    for (const r of ROLLUPS) {
      const sql = rollupInsertSql(r, 'src_partition = 1');
      expect(writesStates(sql)).toBe(true);
      expect(sql.endsWith(` ${STATE_INSERT_SETTINGS}`)).toBe(true);
    }
  });
});
