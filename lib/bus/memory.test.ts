import { randomUUID } from 'node:crypto';
import { setImmediate as nextTurn } from 'node:timers/promises';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { isQoeError } from '../errors.js';
import { createMemoryBus, type BusErrorContext, type MemoryBus, type MemoryBusOptions } from './memory.js';
import { partitionForKey } from './partitioner.js';
import type { BusConsumer, BusRecord, ConsumerBatch, ConsumerHandlers, TopicPartition } from './types.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function setup(opts: Partial<MemoryBusOptions> = {}): { bus: MemoryBus; errors: Array<{ err: unknown; context: BusErrorContext }> } {
  const errors: Array<{ err: unknown; context: BusErrorContext }> = [];
  const bus = createMemoryBus({
    maxBacklog: 100_000,
    retryBackoffMs: 1,
    onError: (err, context) => errors.push({ err, context }),
    ...opts,
  });
  cleanups.push(() => bus.close());
  return { bus, errors };
}

async function topicWith(bus: MemoryBus, partitions: number): Promise<string> {
  const topic = `t-${randomUUID()}`;
  await bus.createTopics([{ topic, partitions }]);
  return topic;
}

const group = (): string => `g-${randomUUID()}`;

/** Wait for a condition with a deadline (never a fixed sleep). */
async function waitFor(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

/** `count` distinct keys that murmur2 puts on `partition`. */
function keysOn(partition: number, partitions: number, count: number, prefix = 'k'): string[] {
  const keys: string[] = [];
  for (let i = 0; keys.length < count; i++) {
    const key = `${prefix}-${i}`;
    if (partitionForKey(key, partitions) === partition) keys.push(key);
  }
  return keys;
}

const msg = (key: string, value = key): { key: string; value: Buffer } => ({ key, value: Buffer.from(value) });
const values = (records: BusRecord[]): string[] => records.map((r) => r.value.toString());
const tp = (topic: string, partition: number): TopicPartition => ({ topic, partition });

function recorder(extra: Partial<ConsumerHandlers> = {}): { seen: BusRecord[]; batches: ConsumerBatch[]; handlers: ConsumerHandlers } {
  const seen: BusRecord[] = [];
  const batches: ConsumerBatch[] = [];
  return {
    seen,
    batches,
    handlers: {
      eachBatch: async (batch) => {
        batches.push(batch);
        seen.push(...batch.records);
      },
      ...extra,
    },
  };
}

async function expectCode(promise: Promise<unknown>, code: 'QOE_ERR_BUS_FULL' | 'QOE_ERR_BUS_CLOSED' | 'QOE_ERR_INTERNAL' | 'QOE_ERR_CONFIG_INVALID'): Promise<void> {
  const err: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isQoeError(err, code), `expected ${code}, got ${String(err)}`).toBe(true);
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = (): void => undefined;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('topics', () => {
  it('createTopics is idempotent and refuses a different partition count', async () => {
    const { bus } = setup();
    const topic = await topicWith(bus, 3);
    await bus.createTopics([{ topic, partitions: 3 }]);
    await expectCode(bus.createTopics([{ topic, partitions: 4 }]), 'QOE_ERR_CONFIG_INVALID');
    expect(bus.stats().filter((s) => s.topic === topic)).toHaveLength(3);
  });

  it('sending to an unknown topic rejects with a QoeError', async () => {
    const { bus } = setup();
    await expectCode(bus.producer().send('nope', [msg('a')]), 'QOE_ERR_INTERNAL');
  });
});

describe('partitioning and ordering', () => {
  it('puts each key on its murmur2 partition with dense offsets and send order kept per partition', async () => {
    const { bus } = setup();
    const topic = await topicWith(bus, 4);
    const producer = bus.producer();
    const sent: Array<{ key: string; value: string }> = [];
    for (let s = 0; s < 50; s++) {
      const batch = Array.from({ length: 20 }, (_, i) => ({ key: `session-${(s * 7 + i) % 31}`, value: `${s}:${i}` }));
      sent.push(...batch);
      await producer.send(topic, batch.map((m) => msg(m.key, m.value)));
    }
    const { seen, handlers } = recorder();
    await bus.consumer({ groupId: group(), topics: [topic], maxBatchSize: 7 }).run(handlers);
    await waitFor(() => seen.length === sent.length, 'all records');
    for (let p = 0; p < 4; p++) {
      const got = seen.filter((r) => r.partition === p);
      const expected = sent.filter((m) => partitionForKey(m.key, 4) === p);
      expect(got.map((r) => r.offset)).toEqual(expected.map((_, i) => i));
      expect(values(got)).toEqual(expected.map((m) => m.value));
      expect(got.every((r) => r.topic === topic && partitionForKey(r.key, 4) === p)).toBe(true);
    }
  });

  // Java DefaultPartitioner results (SOHU-Co/kafka-node test/test.partitioner.js): keys land where Kafka puts them.
  it.each([
    ['\u263a tlw61or', 101],
    ['\u263a ww50w20ggb9', 26],
    ['\u263a b9', 8],
  ])('key %j lands on partition %i of 120', async (key, partition) => {
    const { bus } = setup();
    const topic = await topicWith(bus, 120);
    await bus.producer().send(topic, [msg(key)]);
    expect(bus.stats().find((s) => s.topic === topic && s.highWatermark === 1)?.partition).toBe(partition);
  });

  it('stamps records with the injected clock unless the message carries a timestamp', async () => {
    const { bus } = setup({ now: () => 42 });
    const topic = await topicWith(bus, 1);
    await bus.producer().send(topic, [msg('a'), { key: 'b', value: Buffer.from('b'), timestampMs: 7 }]);
    const { seen, handlers } = recorder();
    await bus.consumer({ groupId: group(), topics: [topic] }).run(handlers);
    await waitFor(() => seen.length === 2, 'records');
    expect(seen.map((r) => r.timestampMs)).toEqual([42, 7]);
  });
});

describe('backlog bound', () => {
  it('rejects a send that would exceed maxBacklog, appending nothing of it, and frees room on commit', async () => {
    const { bus } = setup({ maxBacklog: 5 });
    const topic = await topicWith(bus, 1);
    const producer = bus.producer();
    const stat = () => bus.stats().find((s) => s.topic === topic);

    await producer.send(topic, [msg('a'), msg('b'), msg('c')]);
    // 3 + 3 > 5: the whole call is refused, not its first two messages.
    await expectCode(producer.send(topic, [msg('d'), msg('e'), msg('f')]), 'QOE_ERR_BUS_FULL');
    expect(stat()).toMatchObject({ highWatermark: 3, retained: 3, backlog: 3 });
    await producer.send(topic, [msg('d'), msg('e')]); // exactly at the bound
    const full = await producer.send(topic, [msg('f')]).catch((e: unknown) => e);
    expect(isQoeError(full, 'QOE_ERR_BUS_FULL') && full.retriable).toBe(true);

    // A group that has committed 2 of the 5 releases them: memory and bound both.
    const consumer = bus.consumer({ groupId: group(), topics: [topic], autoCommit: false });
    const { seen, handlers } = recorder();
    await consumer.run(handlers);
    await waitFor(() => seen.length === 5, 'delivery');
    expect(stat()).toMatchObject({ backlog: 5, retained: 5 });
    await consumer.commit([{ topic, partition: 0, offset: 2 }]);
    expect(stat()).toMatchObject({ logStartOffset: 2, highWatermark: 5, retained: 3, backlog: 3 });
    await producer.send(topic, [msg('f'), msg('g')]);
    await expectCode(producer.send(topic, [msg('h')]), 'QOE_ERR_BUS_FULL');
    expect(stat()).toMatchObject({ logStartOffset: 2, highWatermark: 7, backlog: 5 });
  });

  it('counts from the slowest subscribing group', async () => {
    const { bus } = setup({ maxBacklog: 4 });
    const topic = await topicWith(bus, 1);
    const producer = bus.producer();
    await producer.send(topic, [msg('a'), msg('b'), msg('c'), msg('d')]);
    const fast = recorder();
    const gate = deferred();
    cleanups.push(async () => gate.resolve()); // runs before bus.close(), which waits for the batch
    const slow = recorder({ eachBatch: () => gate.promise });
    // The slow group joins first: a group that joins later starts from what is still retained.
    await bus.consumer({ groupId: group(), topics: [topic] }).run(slow.handlers);
    await bus.consumer({ groupId: group(), topics: [topic] }).run(fast.handlers);
    await waitFor(() => fast.seen.length === 4, 'fast group');
    expect(bus.stats().find((s) => s.topic === topic)).toMatchObject({ backlog: 4, retained: 4 });
    await expectCode(producer.send(topic, [msg('e')]), 'QOE_ERR_BUS_FULL');
  });

  it('is all-or-nothing across partitions', async () => {
    const { bus } = setup({ maxBacklog: 2 });
    const topic = await topicWith(bus, 2);
    const [p0a, p0b] = keysOn(0, 2, 2);
    const [p1a, p1b, p1c] = keysOn(1, 2, 3);
    const producer = bus.producer();
    await producer.send(topic, [msg(p1a!), msg(p1b!)]);
    await expectCode(producer.send(topic, [msg(p0a!), msg(p0b!), msg(p1c!)]), 'QOE_ERR_BUS_FULL');
    expect(bus.stats().map((s) => s.highWatermark)).toEqual([0, 2]);
  });
});

describe('sendWithOffsets', () => {
  it('appends the outputs and commits the inputs together', async () => {
    const { bus } = setup();
    const input = await topicWith(bus, 1);
    const output = await topicWith(bus, 2);
    const producer = bus.producer();
    await producer.send(input, [msg('a'), msg('b'), msg('c')]);
    const groupId = group();
    await producer.sendWithOffsets([{ topic: output, messages: [msg('x'), msg('y')] }], groupId, [{ topic: input, partition: 0, offset: 2 }]);
    const lag = await bus.consumer({ groupId, topics: [input] }).lag();
    expect(lag).toEqual([{ topic: input, partition: 0, lag: 1 }]);
    expect(bus.stats().filter((s) => s.topic === output).reduce((n, s) => n + s.highWatermark, 0)).toBe(2);
  });

  it.each([
    { name: 'an output partition is full', outputsFit: false, offset: 2 },
    { name: 'an offset is out of range', outputsFit: true, offset: 99 },
  ])('does nothing when $name', async ({ outputsFit, offset }) => {
    const { bus } = setup({ maxBacklog: 3 });
    const input = await topicWith(bus, 1);
    const output = await topicWith(bus, 1);
    const producer = bus.producer();
    await producer.send(input, [msg('a'), msg('b'), msg('c')]);
    const outputs = outputsFit ? [msg('x')] : [msg('x'), msg('y'), msg('z'), msg('w')];
    const groupId = group();
    const err: unknown = await producer
      .sendWithOffsets([{ topic: output, messages: outputs }], groupId, [{ topic: input, partition: 0, offset }])
      .catch((e: unknown) => e);
    expect(isQoeError(err)).toBe(true);
    expect(bus.stats().find((s) => s.topic === output)?.highWatermark).toBe(0);
    expect(await bus.consumer({ groupId, topics: [input] }).lag()).toEqual([{ topic: input, partition: 0, lag: 3 }]);
  });
});

describe('delivery', () => {
  it('redelivers a failed batch from the committed offset after a backoff and reports the error', async () => {
    const { bus, errors } = setup();
    const topic = await topicWith(bus, 1);
    await bus.producer().send(topic, ['a', 'b', 'c', 'd', 'e'].map((k) => msg(k)));
    const attempts: string[][] = [];
    const handlers: ConsumerHandlers = {
      eachBatch: async (batch) => {
        attempts.push(values(batch.records));
        if (batch.records.some((r) => r.offset === 2) && attempts.length < 4) throw new Error('boom');
      },
    };
    await bus.consumer({ groupId: group(), topics: [topic], maxBatchSize: 2 }).run(handlers);
    await waitFor(() => attempts.flat().includes('e'), 'last record');
    expect(attempts).toEqual([['a', 'b'], ['c', 'd'], ['c', 'd'], ['c', 'd'], ['e']]);
    expect(errors.map((e) => [e.context.phase, e.context.partition, (e.err as Error).message])).toEqual([
      ['eachBatch', 0, 'boom'],
      ['eachBatch', 0, 'boom'],
    ]);
  });

  it('wakes up on append without polling and yields to the event loop between batches', async () => {
    const { bus } = setup();
    const topic = await topicWith(bus, 1);
    const { seen, handlers } = recorder();
    await bus.consumer({ groupId: group(), topics: [topic], maxBatchSize: 1 }).run(handlers);
    await bus.producer().send(topic, [msg('a')]);
    await nextTurn();
    expect(values(seen)).toEqual(['a']);

    await bus.producer().send(topic, Array.from({ length: 500 }, (_, i) => msg(`k${i}`)));
    let timerFiredAt = -1;
    setTimeout(() => (timerFiredAt = seen.length), 0);
    await waitFor(() => seen.length === 501, 'drain');
    expect(timerFiredAt).toBeGreaterThan(0);
    expect(timerFiredAt).toBeLessThan(501);
  });

  it('pauses and resumes single partitions', async () => {
    const { bus } = setup();
    const topic = await topicWith(bus, 2);
    const consumer = bus.consumer({ groupId: group(), topics: [topic] });
    const { seen, handlers } = recorder();
    await consumer.run(handlers);
    consumer.pause([tp(topic, 0)]);
    const producer = bus.producer();
    await producer.send(topic, keysOn(0, 2, 3).map((k) => msg(k)));
    await producer.send(topic, keysOn(1, 2, 3).map((k) => msg(k)));
    // Round-robin would have served partition 0 first had it not been paused.
    await waitFor(() => seen.length === 3, 'partition 1');
    expect(seen.every((r) => r.partition === 1)).toBe(true);
    consumer.resume([tp(topic, 0)]);
    await waitFor(() => seen.length === 6, 'partition 0 after resume');
    expect(seen.slice(3).every((r) => r.partition === 0)).toBe(true);
  });

  it('reports lag per partition as highWatermark − committed', async () => {
    const { bus } = setup();
    const topic = await topicWith(bus, 2);
    const producer = bus.producer();
    await producer.send(topic, [...keysOn(0, 2, 3), ...keysOn(1, 2, 1)].map((k) => msg(k)));
    const groupId = group();
    const consumer = bus.consumer({ groupId, topics: [topic], autoCommit: false });
    expect(await consumer.lag()).toEqual([
      { topic, partition: 0, lag: 3 },
      { topic, partition: 1, lag: 1 },
    ]);
    const { seen, handlers } = recorder();
    await consumer.run(handlers);
    await waitFor(() => seen.length === 4, 'delivery');
    expect((await consumer.lag()).map((l) => l.lag)).toEqual([3, 1]); // delivered is not committed
    await consumer.commit([{ topic, partition: 0, offset: 2 }]);
    expect((await consumer.lag()).map((l) => l.lag)).toEqual([1, 1]);
    const late = bus.consumer({ groupId: group(), topics: [topic], fromBeginning: false });
    await late.run(recorder().handlers);
    expect((await late.lag()).map((l) => l.lag)).toEqual([0, 0]);
  });

  it('starts a latest (fromBeginning: false) group at the end', async () => {
    const { bus } = setup();
    const topic = await topicWith(bus, 1);
    const producer = bus.producer();
    await producer.send(topic, [msg('old')]);
    const { seen, handlers } = recorder();
    await bus.consumer({ groupId: group(), topics: [topic], fromBeginning: false }).run(handlers);
    await producer.send(topic, [msg('new')]);
    await waitFor(() => seen.length === 1, 'new record');
    expect(values(seen)).toEqual(['new']);
  });
});

describe('consumer groups', () => {
  it('splits partitions between two members and hands them over on leave without loss or duplicates', async () => {
    const { bus } = setup();
    const topic = await topicWith(bus, 4);
    const groupId = group();
    const producer = bus.producer();
    const processed: BusRecord[] = [];
    const events: string[] = [];
    function member(name: string): { consumer: BusConsumer; owned: Set<number> } {
      const consumer = bus.consumer({ groupId, topics: [topic], autoCommit: false, maxBatchSize: 3 });
      const owned = new Set<number>();
      void consumer
        .run({
          eachBatch: async (batch) => {
            processed.push(...batch.records);
            const last = batch.records[batch.records.length - 1];
            if (last) await consumer.commit([{ topic, partition: batch.partition, offset: last.offset + 1 }]);
          },
          onAssign: async (tps) => {
            for (const t of tps) owned.add(t.partition);
            events.push(`${name}+${tps.map((t) => t.partition).join(',')}`);
          },
          onRevoke: async (tps) => {
            for (const t of tps) owned.delete(t.partition);
            events.push(`${name}-${tps.map((t) => t.partition).join(',')}`);
          },
        })
        .catch((err: unknown) => events.push(`${name} run failed: ${String(err)}`));
      return { consumer, owned };
    }
    let n = 0;
    const sendSome = (count: number) =>
      producer.send(topic, Array.from({ length: count }, () => msg(`s-${n % 13}`, `v${n++}`)));

    await sendSome(40);
    const a = member('a');
    await waitFor(() => a.owned.size === 4, 'a owns all');
    await sendSome(40);
    const b = member('b');
    await waitFor(() => b.owned.size === 2, 'b joined');
    expect([...a.owned].sort()).toEqual([0, 1]);
    expect([...b.owned].sort()).toEqual([2, 3]);
    await sendSome(40);
    await a.consumer.close();
    await waitFor(() => b.owned.size === 4, 'b took over');
    await sendSome(40);
    await waitFor(() => processed.length >= n, 'everything processed');
    expect(events.slice(0, 4)).toEqual(['a+0,1,2,3', 'a-2,3', 'b+2,3', 'a-0,1']);
    expect(events[4]).toBe('b+0,1');
    for (let p = 0; p < 4; p++) {
      const offsets = processed.filter((r) => r.partition === p).map((r) => r.offset);
      const hw = bus.stats().find((s) => s.topic === topic && s.partition === p)?.highWatermark ?? -1;
      expect(offsets).toEqual(Array.from({ length: hw }, (_, i) => i));
    }
  });

  it('revokes only after the in-flight batch, and the new owner is assigned only after onRevoke', async () => {
    const { bus } = setup();
    const topic = await topicWith(bus, 2);
    const groupId = group();
    await bus.producer().send(topic, keysOn(1, 2, 2).map((k) => msg(k)));
    const gate = deferred();
    const log: string[] = [];
    const first = bus.consumer({ groupId, topics: [topic], maxBatchSize: 1 });
    await first.run({
      eachBatch: async (batch) => {
        log.push(`a batch ${batch.partition}@${batch.records[0]?.offset} start`);
        await gate.promise;
        log.push(`a batch ${batch.partition}@${batch.records[0]?.offset} end`);
      },
      onRevoke: async (tps) => {
        log.push(`a revoke ${tps.map((t) => t.partition).join(',')}`);
      },
    });
    await waitFor(() => log.length === 1, 'in-flight batch');
    const second = bus.consumer({ groupId, topics: [topic] });
    const joined = second.run({
      eachBatch: async (batch) => {
        log.push(`b batch ${batch.partition}@${batch.records[0]?.offset}`);
      },
      onAssign: async (tps) => {
        log.push(`b assign ${tps.map((t) => t.partition).join(',')}`);
      },
    });
    await nextTurn();
    expect(log).toEqual(['a batch 1@0 start']);
    gate.resolve();
    await joined;
    await waitFor(() => log.length === 5, 'handover');
    expect(log).toEqual(['a batch 1@0 start', 'a batch 1@0 end', 'a revoke 1', 'b assign 1', 'b batch 1@1']);
  });

  it('refuses commits for partitions the member does not own', async () => {
    const { bus } = setup();
    const topic = await topicWith(bus, 2);
    const groupId = group();
    await bus.producer().send(topic, [msg('a')]);
    const a = bus.consumer({ groupId, topics: [topic] });
    await a.run(recorder().handlers);
    const b = bus.consumer({ groupId, topics: [topic] });
    await b.run(recorder().handlers);
    await expectCode(a.commit([{ topic, partition: 1, offset: 0 }]), 'QOE_ERR_INTERNAL');
    const outsider = bus.consumer({ groupId, topics: [topic] });
    await expectCode(outsider.commit([{ topic, partition: 0, offset: 0 }]), 'QOE_ERR_INTERNAL');
  });
});

describe('close', () => {
  it('stops after the in-flight batch, calls onRevoke, and leaves the group', async () => {
    const { bus } = setup();
    const topic = await topicWith(bus, 1);
    const producer = bus.producer();
    await producer.send(topic, [msg('a'), msg('b')]);
    const gate = deferred();
    const log: string[] = [];
    const consumer = bus.consumer({ groupId: group(), topics: [topic], maxBatchSize: 1 });
    await consumer.run({
      eachBatch: async (batch) => {
        log.push(`batch ${batch.records[0]?.offset}`);
        await gate.promise;
        log.push(`done ${batch.records[0]?.offset}`);
      },
      onRevoke: async (tps) => {
        log.push(`revoke ${tps.length}`);
      },
    });
    await waitFor(() => log.length === 1, 'first batch');
    const closed = consumer.close();
    gate.resolve();
    await closed;
    await producer.send(topic, [msg('c')]);
    await nextTurn();
    expect(log).toEqual(['batch 0', 'done 0', 'revoke 1']);
    await expectCode(consumer.commit([{ topic, partition: 0, offset: 1 }]), 'QOE_ERR_BUS_CLOSED');
    await expectCode(consumer.run(recorder().handlers), 'QOE_ERR_BUS_CLOSED');
  });

  it('rejects sends after producer.close() and after bus.close(), which also closes consumers', async () => {
    const { bus } = setup();
    const topic = await topicWith(bus, 1);
    const closedProducer = bus.producer();
    await closedProducer.close();
    await expectCode(closedProducer.send(topic, [msg('a')]), 'QOE_ERR_BUS_CLOSED');
    const producer = bus.producer();
    const revoked: TopicPartition[] = [];
    await bus.consumer({ groupId: group(), topics: [topic] }).run(recorder({ onRevoke: async (tps) => void revoked.push(...tps) }).handlers);
    await bus.close();
    expect(revoked).toEqual([tp(topic, 0)]);
    await expectCode(producer.send(topic, [msg('a')]), 'QOE_ERR_BUS_CLOSED');
    await expectCode(producer.sendWithOffsets([], group(), []), 'QOE_ERR_BUS_CLOSED');
    await expectCode(bus.consumer({ groupId: group(), topics: [topic] }).run(recorder().handlers), 'QOE_ERR_BUS_CLOSED');
  });
});

describe('property: exactly-once, in-order delivery to one autoCommit consumer', () => {
  type Op = { kind: 'send'; keys: number[] } | { kind: 'turns'; n: number };
  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ kind: fc.constant('send' as const), keys: fc.array(fc.nat(9), { minLength: 1, maxLength: 6 }) }),
    fc.record({ kind: fc.constant('turns' as const), n: fc.integer({ min: 1, max: 4 }) }),
  );

  it('holds for random interleavings of sends, deliveries, commits, failures and backpressure', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(op, { minLength: 1, maxLength: 40 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 5 }),
        async (ops, failPattern, partitions, maxBatchSize) => {
          const bus = createMemoryBus({ maxBacklog: 8, retryBackoffMs: 1, onError: () => undefined });
          try {
            const topic = `t-${randomUUID()}`;
            await bus.createTopics([{ topic, partitions }]);
            const processed: BusRecord[] = [];
            let calls = 0;
            await bus.consumer({ groupId: 'g', topics: [topic], maxBatchSize }).run({
              eachBatch: async (batch) => {
                // Fail some attempts (never the same call index forever): those must be redelivered.
                if (failPattern[calls++ % failPattern.length] === true && calls % 3 !== 0) throw new Error('flaky');
                processed.push(...batch.records);
              },
            });
            const producer = bus.producer();
            const accepted: Array<{ key: string; value: string }> = [];
            let seq = 0;
            for (const step of ops) {
              if (step.kind === 'turns') {
                for (let i = 0; i < step.n; i++) await nextTurn();
                continue;
              }
              const messages = step.keys.map((k) => ({ key: `key-${k}`, value: `v${seq++}` }));
              const ok = await producer.send(topic, messages.map((m) => msg(m.key, m.value))).then(
                () => true,
                (err: unknown) => {
                  if (!isQoeError(err, 'QOE_ERR_BUS_FULL')) throw err;
                  return false;
                },
              );
              if (ok) accepted.push(...messages);
            }
            await waitFor(() => processed.length >= accepted.length && bus.stats().every((s) => s.backlog === 0), 'drain');
            for (let p = 0; p < partitions; p++) {
              const got = processed.filter((r) => r.partition === p);
              const want = accepted.filter((m) => partitionForKey(m.key, partitions) === p);
              expect(got.map((r) => r.offset)).toEqual(want.map((_, i) => i));
              expect(values(got)).toEqual(want.map((m) => m.value));
            }
          } finally {
            await bus.close();
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});
