/**
 * Memory of the processor core after 1M events of the simulator's population (sessions opening,
 * playing, ending, going silent and expiring after sessionTimeoutMs of event time): RSS and heap
 * before / after, live sessions, and what is left once every session has expired and every window
 * has closed — the difference divided by the live sessions is the memory per live session (its
 * Session object, its map entries and its share of the open window accumulators).
 *
 * `--changelog`: the processor as it runs on Kafka, with its state changelog (processors/changelog.ts):
 * every batch is diffed and committed, so the changelog tracker's memory is in the figures.
 *
 *   node --expose-gc --import tsx bench/memory.ts [--events 1000000] [--changelog]
 */
import { parseArgs } from 'node:util';
import { advanceTo, createCore, liveSessions, openWindowAccs, runEncoded, settings } from './core.js';
import { encodeStream, simulatedStream, type EncodedRecord } from './events.js';
import { fmt, machineLine } from './machine.js';

const { values } = parseArgs({ options: { events: { type: 'string', default: '1000000' }, changelog: { type: 'boolean', default: false } } });
const limit = Number(values.events);
const gc = globalThis.gc;
if (gc === undefined) throw new Error('run with node --expose-gc --import tsx bench/memory.ts');
const collect = gc;

interface Mem { rssMiB: number; heapUsedMiB: number; externalMiB: number }
function mem(): Mem {
  collect();
  collect();
  const m = process.memoryUsage();
  const mib = (b: number): number => Math.round((b / 2 ** 20) * 10) / 10;
  return { rssMiB: mib(m.rss), heapUsedMiB: mib(m.heapUsed), externalMiB: mib(m.external) };
}
const show = (m: Mem): string => `rss ${m.rssMiB} MiB, heapUsed ${m.heapUsedMiB} MiB, external ${m.externalMiB} MiB`;

console.log(machineLine());
function input(): EncodedRecord[] {
  // The decoded stream is dropped once encoded: only the Avro records stay, as on the bus.
  return encodeStream(simulatedStream({ views: Math.ceil((limit / 28) * 1.6), periodMs: 1_800_000, limit }));
}
const records = input();
const base = mem();
console.log(`input: ${fmt(records.length)} Avro records held in memory (the bus's share of the figures below)`);
console.log(`before:  ${show(base)}`);

const core = createCore('all', { changelog: values.changelog });
const t0 = performance.now();
runEncoded(core, records);
const seconds = (performance.now() - t0) / 1000;
const sessions = liveSessions(core);
const accs = openWindowAccs(core);
const after = mem();
console.log(`after ${fmt(records.length)} events (${fmt(records.length / seconds)} events/s): ${show(after)}`);
console.log(`live sessions ${fmt(sessions)}, open window accumulators ${fmt(accs)}, expired ${fmt([...core.states.values()].reduce((n, ps) => n + ps.counters.expired, 0))}`);

let maxTs = -Infinity;
for (const ps of core.states.values()) for (const s of ps.sessions.values()) maxTs = Math.max(maxTs, s.lastTsMs);
advanceTo(core, maxTs + settings.sessionTimeoutMs + settings.windowMs + settings.graceMs);
const drained = mem();
console.log(`drained (every session expired, every window closed; live sessions ${liveSessions(core)}): ${show(drained)}`);
const perSessionB = ((after.heapUsedMiB - drained.heapUsedMiB) * 2 ** 20) / Math.max(1, sessions);
const peakMiB = process.resourceUsage().maxRSS / 1024;
console.log(`peak RSS ${fmt(peakMiB)} MiB (includes generating the input)`);
console.log(`RESULT memory${values.changelog ? ' (with changelog)' : ''}: ${fmt(sessions)} live sessions hold ${(after.heapUsedMiB - drained.heapUsedMiB).toFixed(1)} MiB heap = ${fmt(perSessionB)} B per live session (incl. open window accumulators); rss ${base.rssMiB} → ${after.rssMiB} MiB, heapUsed ${base.heapUsedMiB} → ${after.heapUsedMiB} MiB`);
console.log(`bound: maxSessions ${fmt(settings.maxSessions)} per partition × ${fmt(perSessionB)} B ≈ ${fmt((settings.maxSessions * perSessionB) / 2 ** 20)} MiB per partition at the bound`);
