/**
 * The largest allocators of a V8 sampling heap profile (bench/kafka.ts --alloc-prof-dir): bytes by
 * allocating function (self) and by every function on the stack (inclusive).
 *
 *   npx tsx bench/alloc-report.ts <file.heapprofile> [--top 30]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '30' } } });
const file = positionals[0];
if (file === undefined) throw new Error('usage: npx tsx bench/alloc-report.ts <file.heapprofile> [--top 30]');
const head = (JSON.parse(readFileSync(file, 'utf8')) as { head: ProfileNode }).head;

const name = (n: ProfileNode): string => {
  const url = n.callFrame.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*?\/(?=(lib|processors|schemas|bench|sql|query|steering|ingest)\/)/, '');
  return `${n.callFrame.functionName || '(anonymous)'} ${url}${url === '' ? '' : `:${n.callFrame.lineNumber + 1}`}`;
};
const self = new Map<string, number>();
const inclusive = new Map<string, number>();
let total = 0;
/** Returns the bytes allocated under `n`; adds them to every distinct function on the stack once. */
function walk(n: ProfileNode, stack: Set<string>): number {
  const k = name(n);
  self.set(k, (self.get(k) ?? 0) + n.selfSize);
  total += n.selfSize;
  const added = !stack.has(k);
  if (added) stack.add(k);
  let bytes = n.selfSize;
  for (const c of n.children) bytes += walk(c, stack);
  if (added) {
    stack.delete(k);
    inclusive.set(k, (inclusive.get(k) ?? 0) + bytes);
  }
  return bytes;
}
walk(head, new Set());

const top = Number(values.top);
const mb = (b: number): string => (b / 1e6).toFixed(1).padStart(8);
console.log(`${mb(total)} MB allocated in all (sampled)`);
for (const [title, m] of [['self', self], ['inclusive', inclusive]] as const) {
  console.log(`\n--- ${title}`);
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${mb(v)} MB  ${k}`);
}
