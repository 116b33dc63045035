/**
 * Ingest req/s and events/s: the real ingest app (buildApp → Avro → memory bus drained by a consumer)
 * against a bare node:http server (read body + JSON.parse), same payload, same load generator, same
 * run, interleaved rounds (median reported).
 *
 * Cores (2-core machine): this process — the server — is pinned to CPU 0 and the load generator
 * (a separate process) to CPU 1 with taskset, so they do not take each other's core.
 *
 *   npx tsx bench/ingest.ts [--mode single|batch|both] [--loadgen node|wrk] [--rounds 3]
 *                           [--seconds 10] [--connections 32] [--cpu-prof-dir DIR]
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { generateView } from '../sim/model.js';
import { defaultModelOptions } from '../sim/options.js';
import { fmt, machineLine, median } from './machine.js';
import type { LoadResult } from './loadgen.js';
import { startBare, startIngest, type BenchServer } from './servers.js';

const { values } = parseArgs({
  options: {
    mode: { type: 'string', default: 'both' },
    loadgen: { type: 'string', default: 'node' },
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '32' },
    pinned: { type: 'boolean', default: false },
    /** Write a V8 CPU profile of the server process into this directory (read it with bench/hotspots.ts). */
    'cpu-prof-dir': { type: 'string', default: '' },
  },
});
const here = fileURLToPath(new URL('.', import.meta.url));
const hasTaskset = spawnSync('taskset', ['-V']).status === 0;

// Re-run this script pinned to CPU 0 (the server's core); the load generator gets CPU 1.
if (!values.pinned && hasTaskset) {
  const prof = values['cpu-prof-dir'] === '' ? [] : ['--cpu-prof', `--cpu-prof-dir=${values['cpu-prof-dir']}`];
  const args = ['-c', '0', process.execPath, ...prof, '--import', 'tsx', join(here, 'ingest.ts'), '--pinned', ...process.argv.slice(2)];
  const child = spawn('taskset', args, { stdio: 'inherit' });
  child.on('exit', (code) => process.exit(code ?? 1));
} else {
  await main();
}

function payloads(dir: string): Record<'single' | 'batch', { file: string; events: number; bytes: number }> {
  const fixture = JSON.parse(readFileSync(join(here, '..', 'schemas', 'fixtures', 'native-batch.json'), 'utf8')) as { dims: unknown; events: unknown[] };
  // One beacon: a heartbeat with the batch-level dims, as a player sending every event on its own would.
  const single = JSON.stringify({ dims: fixture.dims, events: [fixture.events[5]] });
  // Twenty events of one simulated view (play_request with its dims, first_frame, heartbeats, switches…).
  const opts = defaultModelOptions();
  let events: unknown[] = [];
  for (let i = 0; events.length < 20; i++) events = generateView(i, opts).events.slice(0, 20);
  const batch = JSON.stringify({ events });
  const out = { single: { file: join(dir, 'single.json'), events: 1, bytes: single.length }, batch: { file: join(dir, 'batch.json'), events: 20, bytes: batch.length } };
  writeFileSync(out.single.file, single);
  writeFileSync(out.batch.file, batch);
  return out;
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const pin = hasTaskset ? ['-c', '1', cmd, ...args] : args;
    const child = spawn(hasTaskset ? 'taskset' : cmd, pin, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} exited with ${code}`))));
  });
}

async function loadNode(url: string, bodyFile: string, seconds: number, connections: number): Promise<LoadResult> {
  const out = await run(process.execPath, ['--import', 'tsx', join(here, 'loadgen.ts'), url, bodyFile, String(connections), String(seconds * 1000), '2000']);
  return JSON.parse(out.trim().split('\n').pop() ?? '{}') as LoadResult;
}

async function loadWrk(url: string, bodyFile: string, seconds: number, connections: number): Promise<LoadResult> {
  const lua = `${bodyFile}.lua`;
  writeFileSync(lua, `wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = ${JSON.stringify(readFileSync(bodyFile, 'utf8'))}\n`);
  await run('wrk', ['-t1', `-c${connections}`, '-d2s', '-s', lua, url]); // warm-up, discarded
  const out = await run('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '-s', lua, url]);
  const num = (re: RegExp): number => Number(re.exec(out)?.[1] ?? 0);
  const requests = num(/(\d+) requests in/);
  const non2xx = num(/Non-2xx or 3xx responses: (\d+)/);
  const errors = num(/Socket errors: connect (\d+)/) + num(/read (\d+), write/);
  return { requests, ok: requests - non2xx, non2xx, errors, seconds: requests / num(/Requests\/sec:\s+([\d.]+)/), cpuShare: NaN };
}

async function measure(mode: 'single' | 'batch', file: string, events: number): Promise<void> {
  const seconds = Number(values.seconds);
  const connections = Number(values.connections);
  const load = values.loadgen === 'wrk' ? loadWrk : loadNode;
  const servers: Record<'bare' | 'ingest', BenchServer> = { bare: await startBare(), ingest: await startIngest() };
  const check = await fetch(servers.ingest.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: readFileSync(file) });
  console.log(`[${mode}] sanity POST to ingest: ${check.status} ${await check.text()}`);
  const rates: Record<'bare' | 'ingest', number[]> = { bare: [], ingest: [] };
  for (let round = 0; round < Number(values.rounds); round++) {
    const order: ('bare' | 'ingest')[] = round % 2 === 0 ? ['bare', 'ingest'] : ['ingest', 'bare'];
    for (const name of order) {
      const r = await load(servers[name].url, file, seconds, connections);
      const rps = r.ok / r.seconds;
      rates[name].push(rps);
      console.log(`[${mode}] round ${round + 1} ${name.padEnd(6)} ${fmt(rps).padStart(7)} req/s  ${fmt(rps * events).padStart(8)} events/s  non2xx=${r.non2xx} errors=${r.errors} loadgen-cpu=${r.cpuShare.toFixed(2)}`);
    }
  }
  const bare = median(rates.bare);
  const ingest = median(rates.ingest);
  console.log(`[${mode}] events drained from the bus by its consumer: ${fmt(servers.ingest.events())}`);
  console.log(`RESULT ingest ${mode} (${events} event/request): ingest ${fmt(ingest)} req/s = ${fmt(ingest * events)} events/s; bare node:http ${fmt(bare)} req/s; ratio ${(ingest / bare).toFixed(2)}`);
  await servers.ingest.close();
  await servers.bare.close();
}

async function main(): Promise<void> {
  console.log(machineLine());
  console.log(`loadgen=${values.loadgen} connections=${values.connections} seconds=${values.seconds} rounds=${values.rounds} pinned=${hasTaskset ? 'server cpu0, loadgen cpu1' : 'no (taskset missing)'}`);
  const p = payloads(mkdtempSync(join(tmpdir(), 'qoe-bench-')));
  console.log(`payloads: single ${p.single.bytes} B (1 event), batch ${p.batch.bytes} B (20 events)`);
  if (values.mode !== 'batch') await measure('single', p.single.file, 1);
  if (values.mode !== 'single') await measure('batch', p.batch.file, 20);
}
