/**
 * `npm run bench [-- <name>…] [-- --flag value…]`: runs the named benchmarks (default: all), each in
 * its own process with the flags it needs. Names: ingest, processor, memory. Flags starting with --
 * are passed to every benchmark run (e.g. `npm run bench -- processor --events 200000`).
 * Benchmarks print figures; they assert nothing.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const BENCHES: Record<string, { file: string; nodeFlags: string[] }> = {
  ingest: { file: 'ingest.ts', nodeFlags: [] },
  processor: { file: 'processor.ts', nodeFlags: [] },
  memory: { file: 'memory.ts', nodeFlags: ['--expose-gc'] },
};

const argv = process.argv.slice(2);
const firstFlag = argv.findIndex((a) => a.startsWith('--'));
const names = firstFlag === -1 ? argv : argv.slice(0, firstFlag);
const flags = firstFlag === -1 ? [] : argv.slice(firstFlag);
const selected = names.length === 0 ? Object.keys(BENCHES) : names;

let failed = 0;
for (const name of selected) {
  const bench = BENCHES[name];
  if (bench === undefined) {
    console.error(`unknown benchmark '${name}' (expected one of ${Object.keys(BENCHES).join(', ')})`);
    process.exit(2);
  }
  console.log(`\n=== ${name} ===`);
  const res = spawnSync(process.execPath, [...bench.nodeFlags, '--import', 'tsx', join(here, bench.file), ...flags], { stdio: 'inherit' });
  if (res.status !== 0) failed += 1;
}
process.exit(failed === 0 ? 0 : 1);
