/**
 * The distributed runtime (Kafka + ClickHouse server) against the embedded one (memory bus + chDB),
 * measured side by side in one run; each variant runs in its own process (bench/kafka-child.ts) and
 * reports events/s per core = events / CPU seconds (user + system) of that process.
 *
 *   npx tsx bench/kafka.ts [--part ingest,processor,freshness] [--rounds 2] [--seconds 10]
 *                          [--connections 32] [--events 150000] [--probes 30] [--cpu-prof-dir DIR]
 *                          [--period-ms 1800000] [--views N] [--window-dims all|<QOE_WINDOW_DIMENSIONS>]
 *                          [--compression lz4|gzip|none] [--alloc-prof-dir DIR] [--variants embedded,kafka]
 *                          [--scale K] [--scale-by events|views] [--node-flags=<V8 flags>] [--live]
 *
 * (a) ingest: the ingest app into the memory bus (drained by a consumer, bench/servers.ts) vs the
 *     ingest role on Kafka (lib/runtime.ts, acks=all, lz4 or --compression); 20-event POSTs from bench/loadgen.ts
 *     (pinned to CPU 1 with taskset). The broker's CPU is not in the figure (printed apart).
 * (b) processor: `--events` simulated events pre-filled on qoe.beacons.v1, then the processor and
 *     sink roles until the input is processed and stored: memory bus → chDB vs Kafka (transactions,
 *     changelog) → ClickHouse server. A fresh broker per Kafka run, filled by a process of its own
 *     (the measured one holds only the roles). With `--scale K`, each round also runs Kafka on K× the
 *     events and reports the marginal rate, the extra events over the extra CPU seconds: what a run
 *     pays once (start-up, JIT compilation, joining the group, closing the last windows) drops out.
 *     `--scale-by events` (default): the same population cut K× later, so the larger run holds about
 *     as many live sessions (its extra events are the audience's later ones: a different mix of
 *     event types, e.g. no view starts after a dense stream's kick-off); `views`: views and
 *     period × K (the same start rate), so the larger run holds K× the live sessions (the simulated
 *     views are all open at the cut), which weighs the other way.
 *     `--live` (Kafka): live instead of a backlog — the feed process sends each event at its
 *     simulated receive time (moved to the wall clock; the rate is the audience's: --views over
 *     --period-ms) while the measured process runs the roles, measured from the moment the feed
 *     starts (the roles up and waiting) until the last input event is processed (the rows are still
 *     waited for and counted): what a core does per event when a batch is what arrived since the
 *     last fetch.
 * (c) freshness: every role on Kafka + ClickHouse, default window/grace; beacon POSTed with ts=now →
 *     its window row visible in qoe_metrics; p50 / p99.
 * Needs java + the Kafka jars (scripts/kafka.sh) and clickhouse-server, as the tests do.
 */
import { spawn } from 'node:child_process';
import { NODE_FLAGS } from '../lib/node-flags.js';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generateView } from '../sim/model.js';
import { defaultModelOptions } from '../sim/options.js';
import { startClickHouseServer, type ClickHouseServer } from '../test/helpers/clickhouse-server.js';
import { startKafka, type KafkaCluster } from '../test/helpers/kafka.js';
import { defaultViews } from './events.js';
import type { ChildResult } from './kafka-child.js';
import { fmt, machineLine, median, siblingScript } from './machine.js';

const { values } = parseArgs({
  options: {
    part: { type: 'string', default: 'ingest,processor,freshness' },
    rounds: { type: 'string', default: '2' },
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '32' },
    events: { type: 'string', default: '150000' },
    probes: { type: 'string', default: '30' },
    'cpu-prof-dir': { type: 'string', default: '' },
    /** (b): attempts spread over this period (denser traffic: more events per window × dimension tuple). */
    'period-ms': { type: 'string', default: '1800000' },
    /** (b): simulated views (default: enough for --events at ~28 events per view, × 1.6). */
    views: { type: 'string', default: '' },
    /** (b): QOE_WINDOW_DIMENSIONS of the processor. */
    'window-dims': { type: 'string', default: 'all' },
    /** QOE_KAFKA_COMPRESSION of every Kafka producer (the roles and the feed). */
    compression: { type: 'string', default: 'lz4' },
    /** (b): write each variant's allocation profile (all allocations, bench/alloc-report.ts) into DIR. */
    'alloc-prof-dir': { type: 'string', default: '' },
    /** (a), (b): which variants to run (`kafka` alone: A/B runs and profiles of the Kafka path; no ratio then). */
    variants: { type: 'string', default: 'embedded,kafka' },
    /** (b), Kafka: also run K× the events (shaped by --scale-by); report the marginal events/s per core. */
    scale: { type: 'string', default: '' },
    /** (b), with --scale: `events` (the same views, cut K× later) or `views` (views and period × K). */
    'scale-by': { type: 'string', default: 'events' },
    /** The roles' V8 flags, space-separated, instead of `npm start`'s (lib/node-flags.ts): A/B runs of a flag. */
    'node-flags': { type: 'string', default: '' },
    /** (b), Kafka: feed the input as it would arrive, while the roles run (live), instead of before. */
    live: { type: 'boolean', default: false },
  },
});
const parts = new Set(values.part.split(','));
const variants = new Set(values.variants.split(','));
/** The variants of a round in order: alternating which goes first, as the machine's load drifts. */
const roundOrder = (round: number): Array<'embedded' | 'kafka'> =>
  (round % 2 === 0 ? (['embedded', 'kafka'] as const) : (['kafka', 'embedded'] as const)).filter((k) => variants.has(k));
const rounds = Number(values.rounds);
// The children write their profiles there: a directory that does not exist yet is made, not an error after the run.
for (const dir of [values['cpu-prof-dir'], values['alloc-prof-dir']]) if (dir !== '') mkdirSync(dir, { recursive: true });

/** The roles run with the V8 flags of `npm start` (lib/node-flags.ts), as they do in production, or `--node-flags`. */
const ROLE_FLAGS: readonly string[] = values['node-flags'] === '' ? NODE_FLAGS : values['node-flags'].split(' ').filter((f) => f !== '');

function child(variant: string, args: string[], profile = false, nodeFlags: readonly string[] = ROLE_FLAGS): Promise<ChildResult> {
  const prof = profile && values['cpu-prof-dir'] !== '' ? ['--cpu-prof', `--cpu-prof-dir=${values['cpu-prof-dir']}`] : [];
  const argv = [...nodeFlags, ...prof, ...siblingScript(import.meta.url, 'kafka-child'), variant, ...args, '--compression', values.compression,
    ...(values['alloc-prof-dir'] === '' ? [] : ['--alloc-prof-dir', values['alloc-prof-dir']])];
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (process.env.QOE_BENCH_LOG === '1') process.stderr.write(c);
    });
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop() ?? '{}') as ChildResult) : reject(new Error(`${variant} exited with ${code}`))));
  });
}

/** CPU seconds used so far by the broker JVMs of a cluster (from /proc, found by their config files). */
function brokerCpuSeconds(cluster: KafkaCluster): number {
  let ticks = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (!cmd.includes(cluster.dir)) continue;
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
    } catch {
      // gone
    }
  }
  return ticks / 100;
}

const perCore = (r: ChildResult): number => r.events / r.cpuSeconds;

/** The medians of both variants and their ratio, or what was not run. */
function result(rates: Record<'embedded' | 'kafka', number[]>, kafkaName: string, embeddedName: string): string {
  const figure = (xs: number[]): string => (xs.length === 0 ? 'not run' : `${fmt(median(xs))} events/s per core`);
  const ratio = rates.kafka.length > 0 && rates.embedded.length > 0 ? `; ratio ${(median(rates.kafka) / median(rates.embedded)).toFixed(2)}` : '';
  return `${kafkaName} ${figure(rates.kafka)}; ${embeddedName} ${figure(rates.embedded)}${ratio}`;
}
/** The child's garbage collections while measured: scavenges and full collections, count and seconds. */
const gcLine = (x: ChildResult['extra']): string =>
  `gc: ${x.minor} scavenges ${(Number(x.minorMs) / 1000).toFixed(2)} s, ${x.major} full ${(Number(x.majorMs) / 1000).toFixed(2)} s`;
const line = (r: ChildResult, extra = ''): string =>
  `${r.variant.padEnd(19)} ${fmt(r.events).padStart(9)} events in ${r.wallSeconds.toFixed(1)} s wall, ${r.cpuSeconds.toFixed(1)} s CPU: ` +
  `${fmt(r.events / r.wallSeconds).padStart(7)} events/s wall, ${fmt(perCore(r)).padStart(7)} events/s per core ${extra}`;

async function partIngest(): Promise<void> {
  const opts = defaultModelOptions();
  let events: unknown[] = [];
  for (let i = 0; events.length < 20; i++) events = generateView(i, opts).events.slice(0, 20);
  const body = join(mkdtempSync(join(tmpdir(), 'qoe-bench-')), 'batch.json');
  writeFileSync(body, JSON.stringify({ events }));
  const kafka = await startKafka({ brokers: 1 });
  try {
    const args = ['--body', body, '--seconds', values.seconds, '--connections', values.connections, '--brokers', kafka.brokers.join(',')];
    const rates: Record<'embedded' | 'kafka', number[]> = { embedded: [], kafka: [] };
    for (let round = 0; round < rounds; round++) {
      for (const kind of roundOrder(round)) {
        const b0 = brokerCpuSeconds(kafka);
        const r = await child(`ingest-${kind}`, args, kind === 'kafka' && round === 0);
        const broker = brokerCpuSeconds(kafka) - b0;
        rates[kind].push(perCore(r));
        console.log(`[ingest] round ${round + 1} ${line(r, `non2xx=${r.extra.non2xx} errors=${r.extra.errors}${kind === 'kafka' ? ` broker CPU ${broker.toFixed(1)} s` : ''}`)}`);
      }
    }
    console.log(`RESULT ingest (20 events/POST): ${result(rates, 'Kafka', 'embedded')}`);
  } finally {
    await kafka.stop();
  }
}

/**
 * One Kafka run of (b) on a fresh broker: a feed process puts the input on it (the simulated stream
 * is held whole: 2 M events outgrow Node's default heap, so 4 GB per million), then the measured
 * process runs the roles on it.
 */
async function processorOnKafka(clickhouse: ClickHouseServer, args: string[], events: number, profile: boolean): Promise<{ r: ChildResult; brokerCpu: number }> {
  const kafka = await startKafka({ brokers: 1 });
  try {
    const brokers = ['--brokers', kafka.brokers.join(',')];
    const heapMb = Math.max(4096, Math.ceil(events / 1e6) * 4096);
    const feedArgs = ['--events', String(events), ...args, ...brokers];
    const roleArgs = [...args, ...brokers, '--clickhouse', clickhouse.url];
    if (values.live) {
      // Live: the feed generates its input, then waits for the roles to start; both run at once.
      const go = join(mkdtempSync(join(tmpdir(), 'qoe-bench-go-')), 'go');
      const fed = child('feed-kafka', [...feedArgs, '--go-file', go], false, [`--max-old-space-size=${heapMb}`]);
      while (!existsSync(`${go}.ready`)) await new Promise((r) => setTimeout(r, 100));
      const b0 = brokerCpuSeconds(kafka);
      const r = await child('processor-kafka', ['--events', String(events), '--fed', readFileSync(`${go}.ready`, 'utf8'), '--go-file', go, ...roleArgs], profile);
      await fed;
      return { r, brokerCpu: brokerCpuSeconds(kafka) - b0 };
    }
    const fed = await child('feed-kafka', feedArgs, false, [`--max-old-space-size=${heapMb}`]);
    const b0 = brokerCpuSeconds(kafka);
    const r = await child('processor-kafka', ['--events', String(events), '--fed', String(fed.events), ...roleArgs], profile);
    return { r, brokerCpu: brokerCpuSeconds(kafka) - b0 };
  } finally {
    await kafka.stop();
  }
}

async function partProcessor(clickhouse: ClickHouseServer): Promise<void> {
  const events = Number(values.events);
  const scale = values.scale === '' ? undefined : Number(values.scale);
  if (scale !== undefined && !(Number.isInteger(scale) && scale >= 2)) throw new Error('--scale: an integer ≥ 2');
  const byViews = values['scale-by'] === 'views';
  if (!byViews && values['scale-by'] !== 'events') throw new Error('--scale-by: events or views');
  const views = values.views === '' ? defaultViews(events) : Number(values.views);
  const shape = (k: number): string[] => {
    const m = byViews ? k : 1;
    return ['--period-ms', String(Number(values['period-ms']) * m), '--window-dims', values['window-dims'], '--views', String(views * m)];
  };
  const rates: Record<'embedded' | 'kafka', number[]> = { embedded: [], kafka: [] };
  const marginal: number[] = [];
  const report = (round: number, r: ChildResult, brokerCpu?: number): void => {
    const x = r.extra;
    const broker = brokerCpu === undefined ? '' : ` broker CPU ${brokerCpu.toFixed(1)} s`;
    console.log(`[processor] round ${round + 1} ${line(r, `rows=${x.rowsStored} late=${x.late} commits=${x.commits} changelog=${x.changelogRecords} ${gcLine(x)}${broker}`)}`);
  };
  for (let round = 0; round < rounds; round++) {
    for (const kind of roundOrder(round)) {
      if (kind === 'embedded') {
        const r = await child('processor-embedded', ['--events', values.events, ...shape(1)]);
        rates.embedded.push(perCore(r));
        report(round, r);
        continue;
      }
      // With --scale, the larger run goes first in every other round (the machine's drift cancels).
      const sizes = scale === undefined ? [1] : round % 2 === 0 ? [1, scale] : [scale, 1];
      const runs = new Map<number, ChildResult>();
      for (const k of sizes) {
        const { r, brokerCpu } = await processorOnKafka(clickhouse, shape(k), events * k, round === 0 && k === 1);
        runs.set(k, r);
        if (k === 1) rates.kafka.push(perCore(r));
        report(round, r, brokerCpu);
      }
      const [small, large] = [runs.get(1), scale === undefined ? undefined : runs.get(scale)];
      if (small !== undefined && large !== undefined) {
        const m = (large.events - small.events) / (large.cpuSeconds - small.cpuSeconds);
        marginal.push(m);
        console.log(`[processor] round ${round + 1} marginal (${fmt(large.events)} − ${fmt(small.events)} events): ${fmt(m)} events/s per core`);
      }
    }
  }
  console.log(`RESULT processor+sink: ${result(rates, 'Kafka → ClickHouse', 'memory → chDB')} (target ≥ 100,000 on Kafka)`);
  if (marginal.length > 0) console.log(`RESULT processor+sink on Kafka, marginal (×${scale} ${values['scale-by']}): ${fmt(median(marginal))} events/s per core (runs: ${marginal.map(fmt).join(' · ')})`);
}

async function partFreshness(clickhouse: ClickHouseServer): Promise<void> {
  const kafka = await startKafka({ brokers: 1 });
  try {
    const r = await child('freshness', ['--probes', values.probes, '--brokers', kafka.brokers.join(','), '--clickhouse', clickhouse.url]);
    const x = r.extra;
    console.log(`RESULT freshness (window ${x.windowMs} ms, grace ${x.graceMs} ms, out-of-order ${x.maxOutOfOrderMs} ms): ${x.seen}/${x.probes} probes seen; ` +
      `p50 ${fmt(Number(x.p50Ms))} ms, p99 ${fmt(Number(x.p99Ms))} ms, min ${fmt(Number(x.minMs))} ms, max ${fmt(Number(x.maxMs))} ms (target p99 ≤ window + 2 s = ${fmt(Number(x.windowMs) + 2000)} ms); ` +
      `row visible after the probe's window ended: p50 ${fmt(Number(x.afterEndP50Ms))} ms, max ${fmt(Number(x.afterEndMaxMs))} ms ` +
      `(of which: window end → metrics record readable on Kafka p50 ${fmt(Number(x.processorP50Ms))} ms, max ${fmt(Number(x.processorMaxMs))} ms; ` +
      `Kafka → row in ClickHouse p50 ${fmt(Number(x.sinkP50Ms))} ms, max ${fmt(Number(x.sinkMaxMs))} ms)`);
  } finally {
    await kafka.stop();
  }
}

console.log(machineLine());
console.log(`parts=${values.part} rounds=${rounds} seconds=${values.seconds} connections=${values.connections} events=${values.events} probes=${values.probes}`);
if (parts.has('ingest')) await partIngest();
if (parts.has('processor') || parts.has('freshness')) {
  const clickhouse = await startClickHouseServer();
  try {
    if (parts.has('processor')) await partProcessor(clickhouse);
    if (parts.has('freshness')) await partFreshness(clickhouse);
  } finally {
    await clickhouse.stop();
  }
}
process.exit(0);
