import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOPICS } from '../lib/bus/topics.js';
import type { Runtime } from '../lib/runtime.js';
import { kafkaSkipReason, startKafka, type KafkaCluster } from './helpers/kafka.js';
import { book, compareWithTopic, createLedger, merge, percentile, postBatch, postLoop, readBeaconKeys } from './helpers/kafka-ingest.js';
import { startTestRuntime, tempDataDir, waitUntil } from './helpers/runtime.js';

/**
 * ARCHITECTURE.md "Backpressure" and "Exactly-once effect", ingest side, on a real broker: a 202 means
 * Kafka acknowledged (acks=all) the events; with the broker down ingest answers 503 + Retry-After
 * within a bounded time and its memory stays bounded while clients keep posting; when the broker is
 * back ingest recovers by itself. Afterwards the topic holds every 202'd (sessionId, seq) exactly once.
 */
const skip = kafkaSkipReason();
if (skip !== undefined) console.warn(`skipping Kafka ingest durability test: Kafka unavailable: ${skip}`);

const PARTITIONS = 4;
/** Longest a POST may take with the broker down before it must have been answered 503. */
const REFUSE_WITHIN_MS = 15_000;
/**
 * Peak heap + external growth allowed under sustained load with the broker down. What ingest may
 * hold: the producer queue (≤ 100k records, each a ~100 B Avro buffer + key + wrapper) and the
 * requests waiting at most the send deadline (10 s); garbage between GCs comes on top.
 */
const MEMORY_GROWTH_BOUND_BYTES = 200 * 2 ** 20;

const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(1);

/** heapUsed + external of this process (ingest runs in it), sampled every 100 ms: first and peak. */
function sampleMemory(): { stop(): { before: number; peak: number } } {
  const read = (): number => {
    const m = process.memoryUsage();
    return m.heapUsed + m.external;
  };
  const before = read();
  let peak = before;
  const timer = setInterval(() => {
    peak = Math.max(peak, read());
  }, 100);
  return {
    stop() {
      clearInterval(timer);
      return { before, peak: Math.max(peak, read()) };
    },
  };
}

/** The pid of broker i of the cluster in `dir` (started by the helper; found by its config file). */
function brokerPid(dir: string, i: number): number {
  const config = join(dir, `broker-${i}.properties`);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (argv[0]?.endsWith('java') === true && argv.includes(config)) return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  throw new Error(`no java process runs ${config}`);
}

describe.skipIf(skip !== undefined)('ingest on Kafka: 2xx only when durable, 503 when down, recovers', () => {
  let cluster: KafkaCluster | undefined;
  let runtime: Runtime | undefined;
  const dataDir = tempDataDir('qoe-kafka-ingest-');
  const ledger = createLedger();
  const url = (): string => runtime?.url ?? '';

  beforeAll(async () => {
    cluster = await startKafka({ brokers: 1 });
    ({ runtime } = await startTestRuntime({
      PORT: '0',
      QOE_HOST: '127.0.0.1',
      QOE_DATA_DIR: dataDir,
      QOE_ROLES: 'ingest',
      QOE_KAFKA_BROKERS: cluster.brokers.join(','),
      QOE_PARTITIONS: String(PARTITIONS),
      QOE_LOG_LEVEL: 'warn',
    }));
  }, 120_000);

  afterAll(async () => {
    await runtime?.stop().catch(() => undefined);
    await cluster?.stop();
  });

  it('answers 202 while the broker is up', async () => {
    const t0 = Date.now();
    const posts = await postLoop(url(), ledger, { clients: 16, eventsPerPost: 10, prefix: 'up', until: () => Date.now() - t0 > 3000 });
    console.log(`broker up: ${posts} POSTs, p99 ${percentile(ledger.latencies.accepted, 0.99).toFixed(0)} ms`);
    expect(ledger.refused.size + ledger.failed.size).toBe(0);
    expect(ledger.accepted.size).toBeGreaterThan(100);
  });

  it('answers 503 + Retry-After within a bounded time with the broker stopped, memory bounded', async () => {
    await cluster?.stopBroker(0);
    const t0 = Date.now();
    const first = await postBatch(url(), { sessionId: 'down-first', firstSeq: 0, n: 5 }, { timeoutMs: 120_000 });
    book(ledger, first);
    console.log(`first POST with the broker down: ${first.status} after ${first.ms.toFixed(0)} ms`);
    expect(first.status).toBe(503);
    expect(first.retryAfter).toBeDefined();
    expect(first.ms).toBeLessThan(REFUSE_WITHIN_MS);

    const memory = sampleMemory();
    const down = createLedger();
    const posts = await postLoop(url(), down, { clients: 64, eventsPerPost: 20, prefix: 'down', until: () => Date.now() - t0 > 15_000, timeoutMs: 60_000 });
    const mem = memory.stop();
    merge(ledger, down);
    console.log(
      `broker down: ${posts} POSTs; refused ${down.latencies.refused.length} (p50 ${percentile(down.latencies.refused, 0.5).toFixed(0)} ms, ` +
        `max ${Math.max(...down.latencies.refused).toFixed(0)} ms), failed ${down.latencies.failed.length}, accepted ${down.latencies.accepted.length}; ` +
        `heap+external ${mib(mem.before)} → peak ${mib(mem.peak)} MiB`,
    );
    expect(down.latencies.failed.length).toBe(0);
    expect(down.latencies.refused.length).toBeGreaterThan(0);
    expect(Math.max(...down.latencies.refused)).toBeLessThan(REFUSE_WITHIN_MS);
    expect(mem.peak - mem.before).toBeLessThan(MEMORY_GROWTH_BOUND_BYTES);
  }, 90_000);

  it('recovers by itself when the broker is back', async () => {
    await cluster?.startBroker(0);
    const t0 = Date.now();
    let n = 0;
    await waitUntil('a POST to be accepted again', async () => {
      const r = await postBatch(url(), { sessionId: `back-probe-${n++}`, firstSeq: 0, n: 1 }, { timeoutMs: 60_000 });
      book(ledger, r);
      return r.status === 202;
    }, 60_000);
    console.log(`accepted again ${Date.now() - t0} ms after the broker started serving`);
    const back = createLedger();
    const t1 = Date.now();
    await postLoop(url(), back, { clients: 16, eventsPerPost: 10, prefix: 'back', until: () => Date.now() - t1 > 3000 });
    merge(ledger, back);
    expect(back.refused.size + back.failed.size).toBe(0);
    expect(back.accepted.size).toBeGreaterThan(0);
  }, 90_000);

  it('answers 503 within a bounded time while the broker is unresponsive (SIGSTOP), then recovers', async () => {
    const pid = brokerPid(cluster?.dir ?? '', 0);
    process.kill(pid, 'SIGSTOP');
    let resumed = false;
    try {
      const frozen = createLedger();
      const impatient = createLedger();
      const t0 = Date.now();
      const until = (): boolean => Date.now() - t0 > 15_000;
      const memory = sampleMemory();
      // Patient clients wait for the answer; impatient ones give up after 500 ms and post again, so
      // ingest keeps accumulating requests whose clients are gone.
      const [posts] = await Promise.all([
        postLoop(url(), frozen, { clients: 16, eventsPerPost: 10, prefix: 'frozen', until, timeoutMs: 120_000 }),
        postLoop(url(), impatient, { clients: 32, eventsPerPost: 20, prefix: 'impatient', until, timeoutMs: 500 }),
      ]);
      const mem = memory.stop();
      merge(ledger, frozen);
      merge(ledger, impatient);
      const all = [...frozen.latencies.refused, ...frozen.latencies.failed, ...frozen.latencies.accepted];
      console.log(
        `broker frozen: ${posts} patient POSTs; refused ${frozen.latencies.refused.length} (p50 ${percentile(frozen.latencies.refused, 0.5).toFixed(0)} ms), ` +
          `accepted ${frozen.latencies.accepted.length}, failed ${frozen.latencies.failed.length}; slowest answer ${Math.max(...all).toFixed(0)} ms; ` +
          `${impatient.latencies.failed.length} impatient POSTs abandoned; heap+external ${mib(mem.before)} → peak ${mib(mem.peak)} MiB`,
      );
      expect(frozen.latencies.failed.length).toBe(0);
      expect(frozen.latencies.refused.length).toBeGreaterThan(0);
      expect(Math.max(...all)).toBeLessThan(REFUSE_WITHIN_MS);
      expect(mem.peak - mem.before).toBeLessThan(MEMORY_GROWTH_BOUND_BYTES);
      process.kill(pid, 'SIGCONT');
      resumed = true;
      expect(frozen.latencies.failed.length).toBe(0);
      expect(frozen.latencies.refused.length).toBeGreaterThan(0);
      expect(Math.max(...all)).toBeLessThan(REFUSE_WITHIN_MS);
      await waitUntil('ingest to accept after SIGCONT', async () => {
        const r = await postBatch(url(), { sessionId: `thawed-${randomUUID()}`, firstSeq: 0, n: 1 }, { timeoutMs: 60_000 });
        book(ledger, r);
        return r.status === 202;
      }, 60_000);
    } finally {
      if (!resumed) process.kill(pid, 'SIGCONT');
    }
  }, 120_000);

  it('has exactly the accepted events on the topic', async () => {
    const onTopic = await readBeaconKeys(cluster?.brokers ?? [], TOPICS.beacons);
    const cmp = compareWithTopic(ledger, onTopic);
    console.log(`topic: ${onTopic.size} distinct events; accepted ${ledger.accepted.size}, refused ${ledger.refused.size}, abandoned by the client ${ledger.failed.size} (of these two, written anyway: ${cmp.refusedButWritten})`);
    expect(cmp.missing).toEqual([]);
    expect(cmp.duplicated).toEqual([]);
    expect(cmp.unexplained).toEqual([]);
  }, 60_000);
});
