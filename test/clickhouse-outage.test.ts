import { describe, expect, it, onTestFinished } from 'vitest';
import { planRun, sendRun } from '../sim/simulate.js';
import { aggregateTruth } from '../sim/aggregate.js';
import type { FetchLike } from '../sim/send.js';
import type { MemoryBus } from '../lib/bus/memory.js';
import { TOPICS } from '../lib/bus/topics.js';
import type { Runtime } from '../lib/runtime.js';
import type { Store } from '../lib/store/types.js';
import { clickhouseServerSkipReason, randomDatabaseName, startClickHouseServer } from './helpers/clickhouse-server.js';
import { kafkaSkipReason, startKafka } from './helpers/kafka.js';
import { processorIsIdle, replayEnv, startTestRuntime, tempDataDir, waitUntil } from './helpers/runtime.js';

/**
 * A ClickHouse server outage in the middle of the traffic (real 18.16 server; the in-memory bus, and
 * a real Kafka broker when available): the server is stopped for ~30 s while simulated players keep
 * posting over HTTP, then started again on the same data directory and port. Ingest keeps answering
 * 2xx (the bus holds what the sink cannot store yet, up to its bound), the sink retries with
 * backoff and resumes, and the totals in ClickHouse, in both roll-ups and through GET /v1/metrics
 * (raw range and hour-aligned range, i.e. the roll-up) equal the simulator's ground truth exactly.
 */
const skip = clickhouseServerSkipReason();
if (skip !== undefined) console.warn(`skipping ClickHouse outage test: ${skip}`);
const kafkaSkip = skip ?? kafkaSkipReason();
if (kafkaSkip !== undefined) console.warn(`skipping the Kafka variant of the ClickHouse outage test: ${kafkaSkip}`);

const WINDOW_MS = 10_000;
/** How long the paced traffic lasts; the outage sits in its middle. */
const TRAFFIC_MS = 55_000;
const OUTAGE_AT_MS = 12_000;

interface Scenario {
  name: string;
  /** The in-memory bus, or a real Kafka broker (processor with its changelog transactions). */
  bus: 'memory' | 'kafka';
  outageMs: number;
  /** The in-memory bus's bound (uncommitted records per partition); ingest answers 503 beyond it. */
  maxBacklog: number;
  /** Whether the bound is meant to be reached (then ingest answers 503 + Retry-After for a while). */
  reachesBound: boolean;
}

const SCENARIOS: Scenario[] = [
  { name: 'memory bus: the bus absorbs a 30 s outage, ingest answers 2xx throughout', bus: 'memory', outageMs: 30_000, maxBacklog: 50_000, reachesBound: false },
  { name: 'Kafka: the sink waits out a 30 s outage, ingest answers 2xx throughout', bus: 'kafka', outageMs: 30_000, maxBacklog: 50_000, reachesBound: false },
];

/** truth field → qoe_metrics column. */
const COLUMNS = {
  attempts: 'attempts', plays: 'plays', vsf: 'vsf', ebvs: 'ebvs', vpf: 'vpf', ended: 'ended',
  startingMs: 'starting_ms', playingMs: 'playing_ms', pausedMs: 'paused_ms', seekMs: 'seek_ms',
  rebufferMs: 'rebuffer_ms', rebufferCount: 'rebuffer_count', seekCount: 'seek_count', activeMs: 'active_ms',
  bitsPlayed: 'bits_played', requests: 'requests', requestErrors: 'request_errors',
} as const;
type Field = keyof typeof COLUMNS;
type Totals = Record<Field, number>;

async function totals(store: Store, table: 'qoe_metrics' | 'qoe_metrics_1m' | 'qoe_metrics_1h'): Promise<Totals> {
  const sum = (c: string): string => (table === 'qoe_metrics' ? `sum(${c})` : `sumMerge(${c})`);
  const cols = Object.entries(COLUMNS).map(([f, c]) => `toString(${sum(c)}) AS ${f}`).join(', ');
  const [row] = await store.query<Record<Field, string>>(`SELECT ${cols} FROM ${table}`);
  const out = {} as Totals;
  for (const f of Object.keys(COLUMNS) as Field[]) out[f] = Number(row?.[f] ?? 0);
  return out;
}

/** fetch, with the requests spread evenly over `spanMs` so the traffic outlasts the outage. */
function pacedFetch(requests: number, concurrency: number, spanMs: number, statuses: number[], retryAfter: Set<string>): FetchLike {
  const gapMs = (spanMs * concurrency) / requests;
  return async (url, init) => {
    await new Promise((r) => setTimeout(r, gapMs));
    const res = await fetch(url, init);
    statuses.push(res.status);
    if (res.status === 503) retryAfter.add(res.headers.get('retry-after') ?? '');
    return res;
  };
}

describe.skipIf(skip !== undefined)('ClickHouse server outage mid-run: the sink pauses and resumes, nothing lost or doubled', () => {
  // kafkaSkip is undefined in CI: QOE_REQUIRE_SERVICES=1 makes a missing broker throw instead.
  for (const sc of SCENARIOS) it.skipIf(sc.bus === 'kafka' && kafkaSkip !== undefined)(sc.name, () => outage(sc), 300_000);
});

async function outage({ bus: busKind, outageMs, maxBacklog, reachesBound }: Scenario): Promise<void> {
  const startMs = Math.floor((Date.now() - 3 * 3_600_000) / WINDOW_MS) * WINDOW_MS;
  const run = planRun({ seed: 31, views: 300, startMs, periodMs: 300_000, windowMs: WINDOW_MS, batchSize: 20, batchIntervalMs: 5000 });
  const server = await startClickHouseServer();
  onTestFinished(() => server.stop());
  const database = randomDatabaseName('qoe_outage');
  const env: Record<string, string> = {
    QOE_CLICKHOUSE_URL: server.url, QOE_CLICKHOUSE_DATABASE: database, QOE_ROLES: 'ingest,processor,sink', QOE_BUS_MAX_BACKLOG: String(maxBacklog),
  };
  if (busKind === 'kafka') {
    // Its own broker: the runtime's topic and group names are fixed.
    const kafka = await startKafka({ brokers: 1 });
    onTestFinished(() => kafka.stop());
    env.QOE_KAFKA_BROKERS = kafka.brokers.join(',');
  }
  const { runtime } = await startTestRuntime(replayEnv(tempDataDir(), env));
  const bus = runtime.bus.kind === 'memory' ? (runtime.bus as MemoryBus) : undefined;
  const statuses: number[] = [];
  const retryAfter = new Set<string>();
  const samples: Array<{ metricsBacklog: number; heapMb: number }> = [];
  try {
    const concurrency = 4;
    const sending = sendRun(run, {
      target: runtime.url, concurrency, fetch: pacedFetch(run.batches.length, concurrency, TRAFFIC_MS, statuses, retryAfter),
      // Players retry a 503 for as long as the outage may last.
      maxRetries: 200, maxRetryDelayMs: 2000,
    });

    await new Promise((r) => setTimeout(r, OUTAGE_AT_MS));
    // The outage must hit a pipeline that was already storing (slower on a loaded machine, on Kafka).
    await waitUntil('rows stored before the outage', async () => {
      const [before] = await runtime.store.query<{ n: number }>('SELECT count() AS n FROM qoe_metrics');
      return Number(before?.n) > 0;
    }, 60_000);
    await server.pause();
    const outageStart = Date.now();
    const answeredAtStop = statuses.length;
    // While the server is down: queries fail cleanly, ingest keeps accepting, memory stays bounded.
    const failed = await fetch(`${runtime.url}/v1/metrics?from=${startMs}&to=${startMs + 3_600_000}`);
    expect(failed.status).toBe(502);
    while (Date.now() - outageStart < outageMs) {
      samples.push(await sample(runtime, bus));
      await new Promise((r) => setTimeout(r, 1000));
    }
    const answeredDuringOutage = statuses.length - answeredAtStop;
    await server.resume();

    const stats = await sending;
    expect(stats.failedEvents).toBe(0);
    expect(stats.accepted).toBe(run.truth.events);
    const refused = statuses.filter((s) => s < 200 || s >= 300);
    if (reachesBound) {
      // Only 503 (+ Retry-After, which the simulator honours), and only while the bound held.
      expect(new Set(refused)).toEqual(new Set([503]));
      expect(retryAfter.size === 1 && retryAfter.has('1')).toBe(true);
    } else {
      // Ingest never refused: the outage is absorbed by the bus, well inside its bound.
      expect(refused).toEqual([]);
    }
    expect(answeredDuringOutage).toBeGreaterThan(100);
    // The sink did stop storing: the metrics topic's uncommitted backlog grew during the outage.
    expect(Math.max(...samples.map((s) => s.metricsBacklog))).toBeGreaterThan(0);

    await waitUntil('processor to close every window and expire every session', () => processorIsIdle(runtime), 120_000);
    await runtime.drain(120_000);
    const expected = {} as Totals;
    for (const f of Object.keys(COLUMNS) as Field[]) expected[f] = run.truth.windows.reduce((n, w) => n + w[f], 0);
    expect(expected.attempts).toBeGreaterThan(0);
    const same = async (): Promise<boolean> => JSON.stringify(await totals(runtime.store, 'qoe_metrics')) === JSON.stringify(expected);
    await waitUntil('ClickHouse totals to reach the ground truth', same, 120_000).catch(() => undefined);
    const stored = await totals(runtime.store, 'qoe_metrics');
    const minutes = await totals(runtime.store, 'qoe_metrics_1m');
    const hours = await totals(runtime.store, 'qoe_metrics_1h');
    for (const [table, got] of [['qoe_metrics', stored], ['qoe_metrics_1m', minutes], ['qoe_metrics_1h', hours]] as const) {
      if (JSON.stringify(got) !== JSON.stringify(expected)) console.error(`outage totals differ in ${table}`, JSON.stringify(await diagnose(runtime, got, expected)));
    }
    expect(stored).toEqual(expected);
    expect(minutes).toEqual(expected);
    expect(hours).toEqual(expected);
    await expectApiTotals(runtime, run.truth.startMs, run.truth.endMs, aggregateTruth(run.truth, ['cdn']));
  } finally {
    await runtime.stop();
  }
  // Bounded while the store was down: the bus's bound holds, the heap stays far from growing without limit.
  for (const s of samples) expect(s.metricsBacklog).toBeLessThanOrEqual(maxBacklog);
  expect(Math.max(...samples.map((s) => s.heapMb))).toBeLessThan(1024);
}

/** What a failed comparison needs to be explained: the fields that differ, the processor's counters, the dead letters. */
async function diagnose(runtime: Runtime, stored: Totals, expected: Totals): Promise<unknown> {
  const diff = Object.fromEntries((Object.keys(expected) as Field[]).filter((f) => stored[f] !== expected[f]).map((f) => [f, stored[f] - expected[f]]));
  const counters: Record<string, number> = {};
  for (const ps of runtime.processor?.partitions().values() ?? []) {
    for (const [k, v] of Object.entries(ps.counters)) counters[k] = (counters[k] ?? 0) + v;
  }
  const dead = await runtime.store.query<{ reason: string; n: string }>('SELECT reason, toString(count()) AS n FROM qoe_dead_letters GROUP BY reason');
  const perPartition = await runtime.store.query<{ p: number; n: string; m: string }>(
    'SELECT src_partition AS p, toString(count()) AS n, toString(max(src_offset)) AS m FROM qoe_metrics GROUP BY src_partition ORDER BY p');
  return { diff, counters, dead, perPartition };
}

/** The largest uncommitted backlog of a metrics partition (memory bus), or the sink's whole lag (Kafka). */
async function sample(runtime: Runtime, bus: MemoryBus | undefined): Promise<{ metricsBacklog: number; heapMb: number }> {
  const metricsBacklog = bus !== undefined
    ? bus.stats().filter((s) => s.topic === TOPICS.metrics).reduce((m, s) => Math.max(m, s.backlog), 0)
    : ((await runtime.sink?.lag()) ?? 0);
  return { metricsBacklog, heapMb: Math.round(process.memoryUsage().heapUsed / 1e6) };
}

interface Point {
  group: Record<string, string>;
  metrics: Record<string, number>;
}

const API_FIELDS = ['attempts', 'plays', 'vsf', 'ebvs', 'vpf', 'ended', 'startingMs', 'playingMs', 'pausedMs', 'rebufferMs', 'rebufferCount', 'seekMs', 'seekCount'] as const;

/** Per CDN through GET /v1/metrics: once over the exact range (raw table), once hour-aligned (roll-up). */
async function expectApiTotals(runtime: Runtime, startMs: number, endMs: number, truth: ReturnType<typeof aggregateTruth>): Promise<void> {
  const hour = 3_600_000;
  const ranges = [[startMs, endMs], [Math.floor(startMs / hour) * hour, Math.ceil(endMs / hour) * hour]] as const;
  for (const [from, to] of ranges) {
    const params = new URLSearchParams({ from: String(from), to: String(to), step: `${to - from}ms`, group_by: 'cdn', metrics: API_FIELDS.join(',') });
    const res = await fetch(`${runtime.url}/v1/metrics?${params}`);
    expect(res.status).toBe(200);
    const points = ((await res.json()) as { points: Point[] }).points;
    expect(points.length).toBe(truth.length);
    for (const t of truth) {
      const p = points.find((x) => x.group.cdn === t.group.cdn);
      for (const f of API_FIELDS) expect(p?.metrics[f], `${f} ${t.group.cdn ?? ''} [${from}, ${to})`).toBe(t[f]);
    }
  }
}
