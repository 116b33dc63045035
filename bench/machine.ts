/** The machine a benchmark ran on, printed next to every figure (bench/README.md records it). */
import { readFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface MachineInfo {
  nproc: number;
  cpuModel: string;
  memGiB: number;
  node: string;
  date: string;
}

function cpuModel(): string {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('model name'));
    return line?.split(':')[1]?.trim() ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export function machineInfo(): MachineInfo {
  return {
    nproc: cpus().length,
    cpuModel: cpuModel(),
    memGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    date: new Date().toISOString(),
  };
}

export function machineLine(m: MachineInfo = machineInfo()): string {
  const load = loadavg().map((x) => x.toFixed(1)).join(' ');
  return `machine: nproc=${m.nproc} cpu="${m.cpuModel}" mem=${m.memGiB}GiB node=${m.node} date=${m.date} loadavg=${load}`;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const hi = s[mid] ?? NaN;
  return s.length % 2 === 1 ? hi : ((s[mid - 1] ?? NaN) + hi) / 2;
}

/** 1234567.8 → "1,234,568". */
export function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/**
 * Node arguments that run the bench script `name` beside the module `from` (its import.meta.url):
 * through tsx from source, or the compiled .js when `from` is compiled itself (tsc --outDir: CPU
 * profiles with line numbers).
 */
export function siblingScript(from: string, name: string): string[] {
  const here = dirname(fileURLToPath(from));
  return from.endsWith('.js') ? [join(here, `${name}.js`)] : ['--import', 'tsx', join(here, `${name}.ts`)];
}
