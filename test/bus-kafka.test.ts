import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { lz4Codec } from '../lib/bus/kafka-codecs.js';
import { createKafkaBus } from '../lib/bus/kafka.js';
import { partitionForKey } from '../lib/bus/partitioner.js';
import { KAFKA_COMPRESSIONS, type Bus, type BusConsumer, type BusRecord, type TopicPartition } from '../lib/bus/types.js';
import { isQoeError } from '../lib/errors.js';
import { silentLogger } from '../lib/logger.js';
import { kafkaSkipReason, startKafka, type KafkaCluster } from './helpers/kafka.js';

const skip = kafkaSkipReason();
if (skip !== undefined) console.warn(`skipping Kafka bus tests: ${skip}`);

const uid = (prefix: string): string => `${prefix}-${randomBytes(5).toString('hex')}`;

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const value = (s: string): Buffer => Buffer.from(s, 'utf8');

/** The record batch header lines of a DumpLogSegments output (offsets, compresscodec, isControl…). */
const batchHeaders = (dump: string): string[] => dump.split('\n').filter((l) => l.startsWith('baseOffset:'));

describe.skipIf(skip !== undefined)('kafka bus (real broker)', () => {
  let cluster: KafkaCluster | undefined;
  let bus: Bus;
  const consumers: BusConsumer[] = [];

  const brokers = (): string[] => cluster?.brokers ?? [];

  /** A consumer that collects what it reads, closed after the file. */
  function collect(topics: string[], groupId = uid('g'), extra: { autoCommit?: boolean; maxBatchSize?: number } = {}) {
    const records: BusRecord[] = [];
    const batchSizes: number[] = [];
    const consumer = bus.consumer({ groupId, topics, ...extra });
    consumers.push(consumer);
    return { consumer, records, batchSizes, groupId };
  }

  beforeAll(async () => {
    cluster = await startKafka({ brokers: 1 });
    console.log(`kafka: 1 broker ready in ${cluster.startupMs} ms (${cluster.dir})`);
    bus = createKafkaBus({
      brokers: cluster.brokers,
      clientId: uid('qoe-test'),
      log: silentLogger(),
      sessionTimeoutMs: 6000,
      heartbeatIntervalMs: 300,
      maxWaitMs: 200,
    });
  });

  afterAll(async () => {
    await Promise.allSettled(consumers.map((c) => c.close()));
    await bus?.close();
    await cluster?.stop();
  });

  it('creates topics idempotently', async () => {
    const topic = uid('t');
    await bus.createTopics([{ topic, partitions: 3 }]);
    await bus.createTopics([{ topic, partitions: 3 }, { topic: uid('t'), partitions: 1, config: { 'cleanup.policy': 'compact' } }]);
  });

  it('puts keys where murmur2 says and keeps order per partition', async () => {
    const topic = uid('t');
    const partitions = 4;
    await bus.createTopics([{ topic, partitions }]);
    const producer = bus.producer();
    const keys = Array.from({ length: 20 }, (_, i) => `session-${i}`);
    // Concurrent sends: the adapter queues them behind the in-flight request, order kept.
    await Promise.all(
      Array.from({ length: 10 }, (_, round) => producer.send(topic, keys.map((key) => ({ key, value: value(`${key}#${round}`) })))),
    );
    const { consumer, records, batchSizes } = collect([topic], uid('g'), { maxBatchSize: 7 });
    await consumer.run({
      async eachBatch(b) {
        batchSizes.push(b.records.length);
        for (const r of b.records) expect(r.partition).toBe(b.partition);
        records.push(...b.records);
      },
    });
    await waitFor('200 records', () => records.length >= 200);
    expect(records).toHaveLength(200);
    expect(Math.max(...batchSizes)).toBeLessThanOrEqual(7);
    for (const r of records) expect(r.partition).toBe(partitionForKey(r.key, partitions));
    for (let p = 0; p < partitions; p++) {
      const inP = records.filter((r) => r.partition === p);
      expect(inP.map((r) => r.offset)).toEqual(inP.map((_, i) => i));
    }
    for (const key of keys) {
      const rounds = records.filter((r) => r.key === key).map((r) => Number(r.value.toString().split('#')[1]));
      expect(rounds).toEqual([...Array(10).keys()]);
    }
    await producer.close();
  });

  it('sends more than one record batch may hold (max.message.bytes) as several batches: all arrive, in order', async () => {
    // 3.2 MB of incompressible values to one partition: kafkajs puts a partition's records of one
    // send into one record batch, which the broker refuses (MESSAGE_TOO_LARGE) over its default 1 MiB.
    const topic = uid('big');
    await bus.createTopics([{ topic, partitions: 2 }]);
    const payloads = Array.from({ length: 3200 }, () => randomBytes(1000));
    const tx = bus.producer({ transactionalId: uid('tx') });
    await tx.sendWithOffsets([{ topic, messages: payloads.map((v, i) => ({ key: `t${i}`, value: v, partition: 0 })) }], uid('g'), []);
    await tx.close();
    const plain = bus.producer();
    await plain.send(topic, payloads.map((v, i) => ({ key: `p${i}`, value: v, partition: 1 })));
    await plain.close();
    const { consumer, records } = collect([topic]);
    await consumer.run({ eachBatch: async (b) => void records.push(...b.records) });
    await waitFor('6400 records', () => records.length >= 6400, 60_000);
    for (const [p, prefix] of [[0, 't'], [1, 'p']] as const) {
      const got = records.filter((r) => r.partition === p);
      expect(got.map((r) => r.key)).toEqual(payloads.map((_, i) => `${prefix}${i}`));
      expect(got.every((r, i) => r.value.equals(payloads[i] as Buffer))).toBe(true);
    }
  });

  it.each(KAFKA_COMPRESSIONS)('compression %s: the broker stores the codec, Kafka\'s own reader and ours get every record back', async (compression) => {
    const topic = uid(`codec-${compression}`);
    await bus.createTopics([{ topic, partitions: 1 }]);
    const writer = createKafkaBus({ brokers: brokers(), clientId: uid('qoe-test-codec'), log: silentLogger(), compression });
    const spy = vi.spyOn(lz4Codec, 'compress');
    // Compressible text, non-ASCII bytes, and a 300 kB record (several 64 kB LZ4 blocks in one frame).
    const values = [
      ...Array.from({ length: 400 }, (_, i) => `{"sessionId":"s-${i % 37}","cdn":"cdn-${i % 3}","country":"DE","n":${i},"note":"Grüße ✓"}`),
      `big:${'abcdefgh'.repeat(20_000)}${randomBytes(140_000).toString('hex')}`,
    ];
    try {
      const p = writer.producer();
      await p.send(topic, values.slice(0, 200).map((v, i) => ({ key: `k${i}`, value: value(v), partition: 0 })));
      await p.send(topic, values.slice(200).map((v, i) => ({ key: `k${200 + i}`, value: value(v), partition: 0 })));
      await p.close();
      const tx = writer.producer({ transactionalId: uid('tx') });
      await tx.sendWithOffsets([{ topic, messages: [{ key: 'tx', value: value('in a transaction'), partition: 0 }] }], uid('g'), []);
      await tx.close();
    } finally {
      await writer.close();
    }
    expect(spy.mock.calls.length > 0).toBe(compression === 'lz4');
    spy.mockRestore();
    const expected = [...values, 'in a transaction'];

    const { consumer, records } = collect([topic]);
    await consumer.run({ eachBatch: async (b) => void records.push(...b.records) });
    await waitFor(`${expected.length} records`, () => records.length >= expected.length);
    expect(records.map((r) => r.value.toString('utf8'))).toEqual(expected);

    const dump = await (cluster as KafkaCluster).dumpLog(0, topic, 0);
    const batches = batchHeaders(dump);
    expect(batches.length).toBeGreaterThanOrEqual(3);
    for (const b of batches) {
      // The commit marker of the transaction is a control batch, never compressed.
      const codec = / isControl: true /.test(b) ? 'none' : compression;
      expect(b).toContain(`compresscodec: ${codec}`);
      expect(b).toContain('isvalid: true');
    }
    const payloads = dump.split('\n').filter((l) => l.startsWith('| offset:') && !l.includes('endTxnMarker')).map((l) => l.replace(/^.* payload: /, ''));
    expect(payloads).toEqual(expected);
  });

  it.each(['lz4', 'gzip'] as const)('reads %s batches Kafka\'s Java producer wrote', async (codec) => {
    const topic = uid(`java-${codec}`);
    await bus.createTopics([{ topic, partitions: 1 }]);
    const lines = Array.from({ length: 3000 }, (_, i) => `{"n":${i},"cdn":"cdn-${i % 3}","note":"Grüße ✓ ${'x'.repeat(i % 200)}"}`);
    await (cluster as KafkaCluster).produceWithJava(topic, lines, codec);
    const dump = await (cluster as KafkaCluster).dumpLog(0, topic, 0);
    const batches = batchHeaders(dump);
    expect(batches.length).toBeGreaterThan(0);
    expect(batches.every((b) => b.includes(`compresscodec: ${codec}`))).toBe(true);
    const { consumer, records } = collect([topic]);
    await consumer.run({ eachBatch: async (b) => void records.push(...b.records) });
    await waitFor(`${lines.length} records`, () => records.length >= lines.length);
    expect(records.map((r) => r.value.toString('utf8'))).toEqual(lines);
  });

  it('sendWithOffsets is atomic: an aborted transaction leaves nothing for read_committed readers', async () => {
    const out = uid('out');
    const small = uid('small');
    const input = uid('in');
    const group = uid('g');
    await bus.createTopics([
      { topic: out, partitions: 1 },
      { topic: input, partitions: 1 },
      // A record batch larger than this is refused by the broker (random bytes: gzip cannot shrink them): the transaction's other writes must vanish.
      { topic: small, partitions: 1, config: { 'max.message.bytes': '1024' } },
    ]);
    const tx = bus.producer({ transactionalId: uid('tx') });
    await tx.sendWithOffsets([{ topic: out, messages: [{ key: 'a', value: value('committed') }] }], group, [
      { topic: input, partition: 0, offset: 5 },
    ]);
    const failed = tx.sendWithOffsets(
      [
        { topic: out, messages: [{ key: 'a', value: value('aborted') }] },
        { topic: small, messages: [{ key: 'b', value: randomBytes(4096) }] },
      ],
      group,
      [{ topic: input, partition: 0, offset: 9 }],
    );
    await expect(failed).rejects.toSatisfy((e: unknown) => isQoeError(e, 'QOE_ERR_BUS_UNAVAILABLE') && e.retriable);
    // After the abort the same producer works again.
    await tx.sendWithOffsets([{ topic: out, messages: [{ key: 'a', value: value('after') }] }], group, []);

    const { consumer, records } = collect([out]);
    await consumer.run({ eachBatch: async (b) => void records.push(...b.records) });
    await waitFor('the record after the abort', () => records.some((r) => r.value.toString() === 'after'));
    expect(records.map((r) => r.value.toString())).toEqual(['committed', 'after']);

    // The group's input offset is the committed transaction's (5), not the aborted one's (9).
    // A plain producer: a transactional one would add a commit marker, which lag() counts as a record.
    const plain = bus.producer();
    await plain.send(input, Array.from({ length: 12 }, (_, i) => ({ key: `k${i}`, value: value(String(i)) })));
    await plain.close();
    const probe = bus.consumer({ groupId: group, topics: [input] });
    consumers.push(probe);
    await waitFor('input lag 7', async () => (await probe.lag())[0]?.lag === 7);
    await tx.close();
  });

  it('hands partitions over to a second member and back', async () => {
    const topic = uid('t');
    const groupId = uid('g');
    await bus.createTopics([{ topic, partitions: 4 }]);
    const held = (list: TopicPartition[]): number[] => list.map((tp) => tp.partition).sort();
    const member = (name: string) => {
      const state = { name, assigned: [] as TopicPartition[], revoked: 0, seen: new Set<string>() };
      const consumer = bus.consumer({ groupId, topics: [topic] });
      consumers.push(consumer);
      const run = consumer.run({
        async onAssign(tps) {
          state.assigned = tps;
        },
        async onRevoke(tps) {
          state.revoked += tps.length;
          state.assigned = [];
        },
        async eachBatch(b) {
          for (const r of b.records) state.seen.add(r.key);
        },
      });
      return { state, consumer, run };
    };
    const a = member('a');
    await a.run;
    await waitFor('a holds all 4', () => a.state.assigned.length === 4);
    const b = member('b');
    await b.run;
    await waitFor('a and b split 4', () => a.state.assigned.length > 0 && b.state.assigned.length > 0 && a.state.assigned.length + b.state.assigned.length === 4);
    expect(a.state.revoked).toBeGreaterThanOrEqual(4);
    const ap = held(a.state.assigned);
    expect(held(b.state.assigned).filter((p) => ap.includes(p))).toEqual([]);

    const producer = bus.producer();
    const keys = Array.from({ length: 40 }, (_, i) => `s${i}`);
    await producer.send(topic, keys.map((key) => ({ key, value: value(key) })));
    await waitFor('every key seen once', () => a.state.seen.size + b.state.seen.size === 40);
    for (const key of a.state.seen) expect(ap).toContain(partitionForKey(key, 4));

    await b.consumer.close();
    expect(b.state.revoked).toBeGreaterThan(0);
    await waitFor('a holds all 4 again', () => a.state.assigned.length === 4);
    await producer.close();
  });

  it('reports lag from committed offsets; commits explicitly when autoCommit is off', async () => {
    const topic = uid('t');
    await bus.createTopics([{ topic, partitions: 2 }]);
    const producer = bus.producer();
    const keys = Array.from({ length: 30 }, (_, i) => `k${i}`);
    await producer.send(topic, keys.map((key) => ({ key, value: value(key) })));
    const perPartition = [0, 1].map((p) => keys.filter((k) => partitionForKey(k, 2) === p).length);

    const { consumer, records } = collect([topic], uid('g'), { autoCommit: false });
    expect((await consumer.lag()).map((l) => l.lag)).toEqual(perPartition);
    await consumer.run({ eachBatch: async (b) => void records.push(...b.records) });
    await waitFor('30 records', () => records.length === 30);
    expect((await consumer.lag()).map((l) => l.lag)).toEqual(perPartition);
    await consumer.commit([{ topic, partition: 0, offset: 3 }]);
    expect(await consumer.lag()).toEqual([
      { topic, partition: 0, lag: (perPartition[0] ?? 0) - 3 },
      { topic, partition: 1, lag: perPartition[1] },
    ]);

    const auto = collect([topic]);
    await auto.consumer.run({ eachBatch: async (b) => void auto.records.push(...b.records) });
    await waitFor('auto-commit to catch up', async () => (await auto.consumer.lag()).every((l) => l.lag === 0));
    await producer.close();
  });

  it('a manual-commit consumer of a transactional topic reaches lag 0 by committing nextOffset (past the markers)', async () => {
    const topic = uid('t');
    await bus.createTopics([{ topic, partitions: 1 }]);
    const tx = bus.producer({ transactionalId: uid('tx') });
    for (let i = 0; i < 3; i++) await tx.sendWithOffsets([{ topic, messages: [{ key: `k${i}`, value: value(`k${i}`) }] }], uid('g'), []);
    const { consumer, records } = collect([topic], uid('g'), { autoCommit: false });
    let next = -1;
    await consumer.run({
      eachBatch: async (b) => {
        records.push(...b.records);
        next = b.nextOffset ?? -1;
        await consumer.commit([{ topic, partition: 0, offset: next }]);
      },
    });
    await waitFor('3 records', () => records.length === 3);
    // Each transaction left a commit marker after its record: the last record is at 4, the marker at 5.
    expect(records.at(-1)?.offset).toBe(4);
    expect(next).toBe(6);
    await waitFor('lag 0', async () => (await consumer.lag()).every((l) => l.lag === 0));
    await tx.close();
  });

  it('pause holds a partition back until resume', async () => {
    const topic = uid('t');
    await bus.createTopics([{ topic, partitions: 1 }]);
    const producer = bus.producer();
    const { consumer, records } = collect([topic]);
    consumer.pause([{ topic, partition: 0 }]);
    await consumer.run({ eachBatch: async (b) => void records.push(...b.records) });
    await producer.send(topic, [{ key: 'x', value: value('1') }]);
    await new Promise((r) => setTimeout(r, 1000)); // asserting an absence: a bounded look
    expect(records).toHaveLength(0);
    consumer.resume([{ topic, partition: 0 }]);
    await waitFor('the record after resume', () => records.length === 1);
    await producer.close();
  });

  it('a fetch with minBytes waits up to maxWaitMs for more: a trickle of records comes in a few large batches', async () => {
    const topic = uid('t');
    await bus.createTopics([{ topic, partitions: 1 }]);
    const producer = bus.producer();
    const batches: number[] = [];
    const consumer = bus.consumer({ groupId: uid('g'), topics: [topic], minBytes: 1024 * 1024, maxWaitMs: 1000 });
    consumers.push(consumer);
    await consumer.run({ eachBatch: async (b) => void batches.push(b.records.length) });
    // 40 records, one every 50 ms: each fetch waits its full second (1 MiB never comes), so about 20 per batch.
    for (let i = 0; i < 40; i++) {
      await producer.send(topic, [{ key: 'k', value: value(String(i)) }]);
      await new Promise((r) => setTimeout(r, 50));
    }
    await waitFor('every record', () => batches.reduce((a, b) => a + b, 0) === 40);
    expect(batches.length).toBeLessThanOrEqual(5);
    expect(Math.max(...batches)).toBeGreaterThanOrEqual(10);
    await producer.close();
  });

  it('wraps an unreachable cluster as a retriable QOE_ERR_BUS_UNAVAILABLE', async () => {
    const dead = createKafkaBus({ brokers: ['127.0.0.1:1'], clientId: 'dead', log: silentLogger(), retries: 0, connectionTimeoutMs: 300 });
    const err = await dead.createTopics([{ topic: uid('t'), partitions: 1 }]).catch((e: unknown) => e);
    expect(isQoeError(err, 'QOE_ERR_BUS_UNAVAILABLE')).toBe(true);
    expect(isQoeError(err) && err.retriable && err.cause !== undefined).toBe(true);
    await dead.close();
  });

  it('uses the given brokers', () => {
    expect(brokers()).toHaveLength(1);
  });
});
