/**
 * Summarises a V8 .cpuprofile (node --cpu-prof) as the top functions by self time, and by inclusive
 * time for functions under a path filter.
 *
 *   npx tsx bench/hotspots.ts <file.cpuprofile> [--top 25] [--filter /work/main/]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface CallFrame { functionName: string; url: string; lineNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame; children?: number[] }
interface CpuProfile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '25' }, filter: { type: 'string', default: '' } },
});
const file = positionals[0];
if (file === undefined) throw new Error('usage: hotspots.ts <file.cpuprofile>');
const prof = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
const top = Number(values.top);

const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const selfUs = new Map<number, number>();
prof.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0)));
const total = [...selfUs.values()].reduce((a, b) => a + b, 0);

const label = (f: CallFrame): string => `${f.functionName || '(anonymous)'} ${f.url.replace(/^file:\/\//, '').replace(process.cwd() + '/', '')}:${f.lineNumber + 1}`;
const self = new Map<string, number>();
const incl = new Map<string, number>();
for (const [id, us] of selfUs) {
  const n = byId.get(id);
  if (!n) continue;
  self.set(label(n.callFrame), (self.get(label(n.callFrame)) ?? 0) + us);
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const node = byId.get(cur);
    if (!node) break;
    const l = label(node.callFrame);
    if (seen.has(l)) continue;
    seen.add(l);
    incl.set(l, (incl.get(l) ?? 0) + us);
  }
}
const pct = (us: number): string => `${((us / total) * 100).toFixed(1).padStart(5)}%`;
console.log(`total sampled ${(total / 1000).toFixed(0)} ms`);
console.log('\nself time:');
for (const [l, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(us)}  ${l}`);
console.log(`\ninclusive time${values.filter ? ` (${values.filter})` : ''}:`);
const inclRows = [...incl].filter(([l]) => l.includes(values.filter)).sort((a, b) => b[1] - a[1]).slice(0, top);
for (const [l, us] of inclRows) console.log(`${pct(us)}  ${l}`);
