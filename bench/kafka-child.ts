/**
 * One measured variant of bench/kafka.ts, in its own process (chDB binds one data directory per
 * process; each variant gets a clean heap). Prints one JSON line (the last line of stdout).
 *
 *   npx tsx bench/kafka-child.ts <variant> [--brokers h:p,…] [--clickhouse URL] [--events N]
 *                                [--seconds S] [--connections C] [--probes P] [--body FILE]
 * variants: ingest-embedded | ingest-kafka | processor-embedded | processor-kafka | feed-kafka | freshness
 *
 * feed-kafka puts (b)'s input on Kafka and exits; processor-kafka `--fed N` then measures the roles
 * on those N records, in a process that never held the input (see feed()).
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { createKafkaBus } from '../lib/bus/kafka.js';
import { createMemoryBus } from '../lib/bus/memory.js';
import { TOPICS } from '../lib/bus/topics.js';
import type { Bus } from '../lib/bus/types.js';
import { loadConfig } from '../lib/config.js';
import { createLogger, silentLogger } from '../lib/logger.js';
import { startRuntime, type Runtime } from '../lib/runtime.js';
import { decodeMetricsRecord } from '../processors/metrics-record.js';
import { encodeSessionEvent } from '../schemas/codec.js';
import { defaultViews, encodeStream, simulatedStream, withFlushEvents } from './events.js';
import type { LoadResult } from './loadgen.js';
import { siblingScript } from './machine.js';
import { startIngest } from './servers.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    brokers: { type: 'string', default: '' },
    clickhouse: { type: 'string', default: '' },
    events: { type: 'string', default: '150000' },
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '32' },
    probes: { type: 'string', default: '30' },
    body: { type: 'string', default: '' },
    'period-ms': { type: 'string', default: '1800000' },
    views: { type: 'string', default: '' },
    'window-dims': { type: 'string', default: 'all' },
    compression: { type: 'string', default: 'lz4' },
    'alloc-prof-dir': { type: 'string', default: '' },
    /** processor-kafka: the input is already on Kafka (a feed-kafka process put N records there). */
    fed: { type: 'string', default: '' },
    /**
     * Live runs (bench/kafka.ts --live): feed-kafka writes `<go-file>.ready` (holding its record
     * count) once its input is generated, waits for `<go-file>`, then sends each event at its
     * receive time (feedLive); processor-kafka writes `<go-file>` once its roles have started, and
     * measures from there.
     */
    'go-file': { type: 'string', default: '' },
  },
});
const hasTaskset = spawnSync('taskset', ['-V']).status === 0;
const PARTITIONS = 8;

export interface ChildResult {
  variant: string;
  events: number;
  wallSeconds: number;
  cpuSeconds: number;
  extra: Record<string, number | string>;
}

const fmtInt = (n: number): string => n.toLocaleString('en-US');

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

function loadgen(url: string, bodyFile: string): Promise<LoadResult> {
  const args = [...siblingScript(import.meta.url, 'loadgen'), url, bodyFile, values.connections, String(Number(values.seconds) * 1000), '2000'];
  const [cmd, argv] = hasTaskset ? ['taskset', ['-c', '1', process.execPath, ...args]] : [process.execPath, args];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop() ?? '{}') as LoadResult) : reject(new Error(`loadgen exited ${code}`))));
  });
}

/** (a) The ingest app into the memory bus (bench/servers.ts) or into Kafka (as lib/runtime.ts wires it). */
async function ingest(kind: 'embedded' | 'kafka'): Promise<ChildResult> {
  const dataDir = mkdtempSync(join(tmpdir(), 'qoe-bench-kafka-'));
  let runtime: Runtime | undefined;
  let url: string;
  let accepted: () => number;
  let close: () => Promise<void>;
  if (kind === 'embedded') {
    const server = await startIngest();
    url = server.url;
    accepted = server.events;
    close = server.close;
  } else {
    runtime = await startRuntime(
      loadConfig({ PORT: '0', QOE_HOST: '127.0.0.1', QOE_DATA_DIR: dataDir, QOE_ROLES: 'ingest', QOE_KAFKA_BROKERS: values.brokers, QOE_KAFKA_COMPRESSION: values.compression, QOE_PARTITIONS: String(PARTITIONS), QOE_LOG_LEVEL: 'warn' }),
      silentLogger(),
    );
    const rt = runtime;
    url = `${rt.url}/v1/beacons`;
    const counter = rt.telemetry.ingestEvents;
    const read = async (): Promise<number> => (await counter.get()).values.find((v) => v.labels.outcome === 'accepted')?.value ?? 0;
    let last = 0;
    accepted = () => last;
    const poll = setInterval(() => void read().then((n) => (last = n)), 200);
    close = async () => {
      clearInterval(poll);
      last = await read();
      await rt.stop();
    };
  }
  const t0 = performance.now();
  const c0 = cpuSeconds();
  const load = await loadgen(url, values.body);
  const cpu = cpuSeconds() - c0;
  const wall = (performance.now() - t0) / 1000;
  await close();
  rmSync(dataDir, { recursive: true, force: true });
  const events = accepted();
  return { variant: `ingest-${kind}`, events, wallSeconds: wall, cpuSeconds: cpu, extra: { okRequestsPerSecond: load.ok / load.seconds, non2xx: load.non2xx, errors: load.errors, loadgenCpu: load.cpuShare } };
}

/**
 * V8's sampling heap profiler counting every allocation, also of objects garbage collection freed
 * since (`--heap-prof` keeps only what is alive at the end). Returns the stop function, which gives
 * the profile (a .heapprofile: open in Chrome DevTools, or bench/alloc-report.ts).
 */
async function startAllocationSampling(): Promise<() => Promise<unknown>> {
  const session = new Session();
  session.connect();
  const post = (method: string, params?: object): Promise<{ profile?: unknown }> =>
    new Promise((resolve, reject) => session.post(method, params ?? {}, (err, r) => (err ? reject(err) : resolve(r as { profile?: unknown }))));
  await post('HeapProfiler.startSampling', { samplingInterval: 32_768, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  return async () => {
    const { profile } = await post('HeapProfiler.stopSampling');
    session.disconnect();
    return profile;
  };
}

interface GcTally {
  minor: number;
  minorMs: number;
  major: number;
  majorMs: number;
}

/**
 * The garbage collections of this process from now on (perf_hooks 'gc' entries): scavenges of the
 * young generation and full collections, counts and milliseconds. Steadier than CPU seconds on a
 * shared machine: how many scavenges follows what was allocated, their time what survived them.
 * `read()` is what has been reported so far (entries arrive a little after each collection).
 */
function gcTally(): { read(): GcTally; stop(): void } {
  const t: GcTally = { minor: 0, minorMs: 0, major: 0, majorMs: 0 };
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = (e as { detail?: { kind?: number } }).detail?.kind;
      if (kind === perfConstants.NODE_PERFORMANCE_GC_MINOR) {
        t.minor += 1;
        t.minorMs += e.duration;
      } else if (kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR) {
        t.major += 1;
        t.majorMs += e.duration;
      }
    }
  });
  obs.observe({ entryTypes: ['gc'] });
  return { read: () => ({ ...t }), stop: () => obs.disconnect() };
}

/** (b)'s simulated views: `--views`, else enough for `limit` events at ~28 events per view, × 1.6. */
const viewsFor = (limit: number): number => (values.views === '' ? defaultViews(limit) : Number(values.views));

/** Puts the simulated input on the bus (Kafka: through a producer of its own); returns how many records. */
async function feed(kind: 'embedded' | 'kafka', views: number, limit: number, memoryBus: Bus | undefined): Promise<number> {
  const simulated = simulatedStream({ views, periodMs: Number(values['period-ms']), limit, partitions: PARTITIONS });
  const feeder = memoryBus ?? createKafkaBus({ brokers: values.brokers.split(','), clientId: 'qoe-bench-feed', log: silentLogger(), compression: loadConfig({ QOE_KAFKA_COMPRESSION: values.compression }).bus.compression });
  await feeder.createTopics([{ topic: TOPICS.beacons, partitions: PARTITIONS }]);
  const producer = feeder.producer();
  if (values['go-file'] !== '') {
    await feedLive(simulated, producer);
  } else {
    const stream = withFlushEvents(simulated, PARTITIONS, 19_000);
    const records = encodeStream(stream);
    for (let i = 0; i < records.length; i += 5000) {
      await producer.send(TOPICS.beacons, records.slice(i, i + 5000).map((r, j) => ({ key: stream.events[i + j]?.sessionId ?? '', value: r.value, partition: r.partition })));
    }
  }
  if (kind === 'kafka') await feeder.close();
  return values['go-file'] !== '' ? simulated.events.length : simulated.events.length + PARTITIONS;
}

/**
 * Live (bench/kafka.ts --live): once the roles are up (`--go-file` appears), each event is sent when
 * the wall clock reaches its receive time, its times moved so that the first is received now — the
 * players' batches arrive as they were sent, the event times follow the clock. No flush events: as
 * live, the last windows fire when the partitions fall quiet (QOE_IDLE_PARTITION_MS).
 */
async function feedLive(stream: ReturnType<typeof simulatedStream>, producer: ReturnType<Bus['producer']>): Promise<void> {
  const go = values['go-file'];
  writeFileSync(`${go}.ready`, String(stream.events.length));
  while (!existsSync(go)) await new Promise((r) => setTimeout(r, 20));
  const events = stream.events;
  const shift = Date.now() - (events[0]?.receivedAtMs ?? 0);
  for (let i = 0; i < events.length; ) {
    const reached = Date.now() - shift;
    let j = i;
    while (j < events.length && (events[j]?.receivedAtMs ?? 0) <= reached) j++;
    if (j === i) {
      await new Promise((r) => setTimeout(r, 10));
      continue;
    }
    const messages = events.slice(i, j).map((e, k) => ({
      key: e.sessionId, partition: stream.partitions[i + k] ?? 0,
      value: encodeSessionEvent({ ...e, tsMs: e.tsMs + shift, receivedAtMs: e.receivedAtMs + shift }),
    }));
    await producer.send(TOPICS.beacons, messages);
    i = j;
  }
}

/** (b): how long the stored rows must stay unchanged for a run to be over (6 s before 2026-12-01, sixteenth session). */
const STABLE_MS = 15_000;

/** (b) Pre-filled qoe.beacons.v1, then the processor and sink roles until the input is processed and stored. */
async function processor(kind: 'embedded' | 'kafka'): Promise<ChildResult> {
  const limit = Number(values.events);
  const views = viewsFor(limit);
  // Default watermark settings (out-of-order 0.5 s, grace 7.5 s), as live: a partition's batches
  // arrive in send order, up to 5 s behind its newest event (delta rows within the grace), and a
  // partition waiting for its turn holds the watermark back (lag-aware idleness). At the end, one
  // heartbeat per partition past out-of-order + window + grace fires and closes every window of the
  // data (live sessions' state is extrapolated into the windows up to it, as live traffic would fill them).
  const dataDir = mkdtempSync(join(tmpdir(), 'qoe-bench-kafka-'));
  const env: Record<string, string> = {
    PORT: '0', QOE_HOST: '127.0.0.1', QOE_DATA_DIR: dataDir, QOE_ROLES: 'processor,sink', QOE_PARTITIONS: String(PARTITIONS), QOE_LOG_LEVEL: 'warn',
    // Replayed (historic) traffic: old timestamps are not clock skew (as test/helpers/runtime.ts replayEnv).
    QOE_MAX_CLOCK_SKEW_MS: String(365 * 86_400_000),
    QOE_WINDOW_DIMENSIONS: values['window-dims'],
  };
  Object.assign(env, processorSettingsFromEnv());
  if (kind === 'kafka') {
    Object.assign(env, { QOE_KAFKA_BROKERS: values.brokers, QOE_KAFKA_COMPRESSION: values.compression, QOE_CLICKHOUSE_URL: values.clickhouse, QOE_CLICKHOUSE_DATABASE: `qoe_bench_${randomBytes(4).toString('hex')}` });
  }
  const bus = kind === 'kafka' ? undefined : createMemoryBus({ maxBacklog: 10_000_000 });
  // The feed's events and records are dropped before the measurement starts (only their count is
  // kept): held, a million of them made every full GC of the measured process mark them too.
  const inputs = values.fed !== '' ? Number(values.fed) : await feed(kind, views, limit, bus);
  const live = values['go-file'] !== '';
  console.error(live ? `${kind}: ${fmtInt(inputs)} input events to come live` : `${kind}: ${fmtInt(inputs)} input events on the bus`);
  let t0 = performance.now();
  let c0 = cpuSeconds();
  let gc = gcTally();
  const allocations = values['alloc-prof-dir'] === '' ? undefined : await startAllocationSampling();
  const runtime = await startRuntime(loadConfig(env), process.env.QOE_BENCH_LOG === '1' ? createLogger('info') : silentLogger(), bus === undefined ? {} : { bus });
  if (live) {
    // Measured from the moment the input starts to flow: the roles are up and waiting for it.
    gc.stop();
    gc = gcTally();
    t0 = performance.now();
    c0 = cpuSeconds();
    writeFileSync(values['go-file'], '');
  }
  // lag() is 0 before the group has its assignment: wait until every input record had an outcome.
  const processed = async (): Promise<number> => (await runtime.telemetry.processorEvents.get()).values.reduce((n, v) => n + v.value, 0);
  let lastReport = performance.now();
  for (let n = await processed(); n < inputs; n = await processed()) {
    if (performance.now() - lastReport > 5000) {
      lastReport = performance.now();
      console.error(`${kind}: ${fmtInt(n)} of ${fmtInt(inputs)} input events processed after ${((lastReport - t0) / 1000).toFixed(0)} s`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  // Done = every input event processed and the sink has stored what the processor emitted: rows
  // stop changing for STABLE_MS; the time and CPU of the last change are taken, so a longer wait
  // only costs time. Runtime.drain() is not used: on Kafka it did not return (see bench/README.md).
  // The rows stored vary between runs of the same input (~52,000 or ~104,000 at 1 M events,
  // --period-ms 10000) whatever the wait: a window's row is written once, or twice (a first row,
  // then a delta) when it fired while another partition still held some of its events.
  const rowsInserted = async (): Promise<number> => (await runtime.telemetry.sinkRows.get()).values.reduce((n, v) => n + v.value, 0);
  const sum = async (metric: { get(): Promise<{ values: Array<{ value: number; metricName?: string }> }> }, name?: string): Promise<number> =>
    (await metric.get()).values.filter((v) => name === undefined || v.metricName === name).reduce((n, v) => n + v.value, 0);
  // Transactions (or sends, embedded) and changelog records: what a larger batch amortises. Read
  // with the time and CPU (live: what the tail writes after the input ended is not counted).
  const outputs = async (): Promise<{ commits: number; changelogRecords: number }> => ({
    commits: await sum(runtime.telemetry.processorCommitSeconds, 'qoe_processor_commit_seconds_count'),
    changelogRecords: await sum(runtime.telemetry.processorChangelogRecords),
  });
  let rows = await rowsInserted();
  let wall = (performance.now() - t0) / 1000;
  let cpu = cpuSeconds() - c0;
  let gcs = gc.read();
  let written = await outputs();
  // Live, the measure ends here: the input's last event is processed, the roles kept up with it,
  // and what follows is the tail of live sessions extrapolated into each new window until they
  // expire (sessionTimeoutMs), not work per event. The rows are still waited for (reported).
  for (let stableSince = performance.now(); performance.now() - stableSince < STABLE_MS; ) {
    await new Promise((r) => setTimeout(r, 50));
    const now = await rowsInserted();
    if (now !== rows) {
      rows = now;
      stableSince = performance.now();
      if (live) continue;
      wall = (performance.now() - t0) / 1000;
      cpu = cpuSeconds() - c0;
      gcs = gc.read();
      written = await outputs();
    }
  }
  gc.stop();
  if (allocations !== undefined) writeFileSync(join(values['alloc-prof-dir'], `processor-${kind}.heapprofile`), JSON.stringify(await allocations()));
  // Late events (applied at the close boundary, dead-lettered): a window fired before the events of a
  // partition still to be read would show here (lag-aware idleness, processors/watermark.ts).
  const late = (await runtime.telemetry.processorEvents.get()).values.filter((v) => v.labels.outcome === 'late').reduce((n, v) => n + v.value, 0);
  const [row] = await runtime.store.query<{ n: string }>('SELECT toString(count()) AS n FROM qoe_metrics');
  await runtime.stop();
  rmSync(dataDir, { recursive: true, force: true });
  return { variant: `processor-${kind}`, events: inputs, wallSeconds: wall, cpuSeconds: cpu, extra: { rowsStored: Number(row?.n ?? 0), late, ...written, ...gcs } };
}

/**
 * (c) Every role in one process on Kafka + ClickHouse server, default window/grace/out-of-order.
 * Background players post ts=now heartbeats (so event time, hence the watermark, follows the
 * clock); probes post one play_request each with their own contentId at random moments; freshness =
 * from the POST to the first qoe_metrics row of that contentId.
 */
/** p50 and max of one part of the after-window-end time, as extra fields. */
function parts(name: string, values: number[], q: (x: number, list?: number[]) => number): Record<string, number> {
  const sorted = [...values].sort((a, b) => a - b);
  return { [`${name}P50Ms`]: q(0.5, sorted), [`${name}MaxMs`]: sorted[sorted.length - 1] ?? NaN };
}

/** The processor's settings from the bench's own environment (A/B runs of one, e.g. QOE_PROCESSOR_FETCH_MIN_BYTES=1). */
function processorSettingsFromEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (k.startsWith('QOE_PROCESSOR_') && v !== undefined) out[k] = v;
  return out;
}

async function freshness(): Promise<ChildResult> {
  const dataDir = mkdtempSync(join(tmpdir(), 'qoe-bench-kafka-'));
  const database = `qoe_bench_${randomBytes(4).toString('hex')}`;
  const config = loadConfig({
    PORT: '0', QOE_HOST: '127.0.0.1', QOE_DATA_DIR: dataDir, QOE_ROLES: 'ingest,processor,sink', QOE_PARTITIONS: String(PARTITIONS), QOE_LOG_LEVEL: 'warn',
    QOE_KAFKA_BROKERS: values.brokers, QOE_KAFKA_COMPRESSION: values.compression, QOE_CLICKHOUSE_URL: values.clickhouse, QOE_CLICKHOUSE_DATABASE: database,
    ...processorSettingsFromEnv(),
  });
  const runtime = await startRuntime(config, silentLogger());
  const post = (events: unknown[], contentId: string): Promise<number> =>
    fetch(`${runtime.url}/v1/beacons`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ dims: { cdn: 'cdn-a', country: 'FR', contentId }, events }) }).then(async (r) => {
      await r.arrayBuffer();
      return r.status;
    });
  let stop = false;
  const background = Array.from({ length: 16 }, async (_, c) => {
    const sessionId = `bg-${c}-${randomBytes(3).toString('hex')}`;
    for (let seq = 0; !stop; seq++) {
      await post([seq === 0 ? { sessionId, seq, ts: Date.now(), type: 'play_request' } : { sessionId, seq, ts: Date.now(), type: 'heartbeat', playheadMs: seq * 250 }], 'background');
      await new Promise((r) => setTimeout(r, 250));
    }
  });
  const pending = new Map<string, number>();
  const sentAt = new Map<string, number>();
  const afterEnd: number[] = [];
  // Where the time after the window's end goes: until the metrics record is readable on Kafka
  // (committed: the processor's part), and from there until the row is in ClickHouse (the sink's).
  const onKafkaAt = new Map<string, number>();
  const processorPart: number[] = [];
  const sinkPart: number[] = [];
  const windowEnd = (sent: number): number => sent - (sent % config.processor.windowMs) + config.processor.windowMs;
  const observer = runtime.bus.consumer({ groupId: `bench-freshness-${randomBytes(3).toString('hex')}`, topics: [TOPICS.metrics], fromBeginning: false });
  await observer.run({
    eachBatch: async (batch) => {
      const at = Date.now();
      for (const r of batch.records) {
        const c = String(decodeMetricsRecord(r.value).content_id);
        const sent = sentAt.get(c);
        if (sent === undefined || onKafkaAt.has(c)) continue;
        onKafkaAt.set(c, at);
        processorPart.push(at - windowEnd(sent));
      }
    },
  });
  const latencies: number[] = [];
  const probes = Number(values.probes);
  const poller = setInterval(() => {
    if (pending.size === 0) return;
    const ids = [...pending.keys()].map((k) => `'${k}'`).join(',');
    void runtime.store.query<{ c: string }>(`SELECT DISTINCT content_id AS c FROM qoe_metrics WHERE content_id IN (${ids})`).then((rows) => {
      const seenAt = performance.now();
      for (const { c } of rows) {
        const t = pending.get(c);
        if (t === undefined) continue;
        pending.delete(c);
        latencies.push(seenAt - t);
        // What the pipeline added after the probe's window ended (the part a design can shrink).
        const sent = sentAt.get(c);
        if (sent !== undefined) afterEnd.push(Date.now() - windowEnd(sent));
        const onKafka = onKafkaAt.get(c);
        if (onKafka !== undefined) sinkPart.push(Date.now() - onKafka);
      }
    }, () => undefined);
  }, 100);
  // Let the pipeline settle (group joins, first windows) before the first probe.
  await new Promise((r) => setTimeout(r, 5000));
  for (let i = 0; i < probes; i++) {
    const contentId = `probe-${i}-${randomBytes(3).toString('hex')}`;
    const t = performance.now();
    const status = await post([{ sessionId: `probe-${contentId}`, seq: 0, ts: Date.now(), type: 'play_request' }], contentId);
    if (status === 202) pending.set(contentId, t);
    sentAt.set(contentId, Date.now());
    await new Promise((r) => setTimeout(r, 1000 + Math.random() * 1500));
  }
  const deadline = Date.now() + 60_000;
  while (pending.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  stop = true;
  clearInterval(poller);
  await observer.close();
  await Promise.all(background);
  await runtime.stop();
  rmSync(dataDir, { recursive: true, force: true });
  const sorted = [...latencies].sort((a, b) => a - b);
  const q = (x: number, list = sorted): number => list[Math.min(list.length - 1, Math.floor(x * list.length))] ?? NaN;
  const after = [...afterEnd].sort((a, b) => a - b);
  return {
    variant: 'freshness', events: latencies.length, wallSeconds: 0, cpuSeconds: 0,
    extra: { probes, seen: latencies.length, p50Ms: q(0.5), p99Ms: q(0.99), maxMs: sorted[sorted.length - 1] ?? NaN, minMs: sorted[0] ?? NaN, afterEndP50Ms: q(0.5, after), afterEndMaxMs: after[after.length - 1] ?? NaN,
      ...parts('processor', processorPart, q), ...parts('sink', sinkPart, q), windowMs: config.processor.windowMs, graceMs: config.processor.graceMs, maxOutOfOrderMs: config.processor.maxOutOfOrderMs },
  };
}

const variant = positionals[0] ?? '';
const runs: Record<string, () => Promise<ChildResult>> = {
  'ingest-embedded': () => ingest('embedded'),
  'ingest-kafka': () => ingest('kafka'),
  'processor-embedded': () => processor('embedded'),
  'processor-kafka': () => processor('kafka'),
  'feed-kafka': async () => {
    const limit = Number(values.events);
    const views = viewsFor(limit);
    const t0 = performance.now();
    const c0 = cpuSeconds();
    const events = await feed('kafka', views, limit, undefined);
    return { variant: 'feed-kafka', events, wallSeconds: (performance.now() - t0) / 1000, cpuSeconds: cpuSeconds() - c0, extra: {} };
  },
  freshness,
};
const run = runs[variant];
if (run === undefined) throw new Error(`unknown variant '${variant}' (${Object.keys(runs).join(', ')})`);
console.log(JSON.stringify(await run()));
process.exit(0);
