import { createRequire } from 'node:module';
import fc from 'fast-check';
import { Partitioners, type PartitionMetadata } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { murmur2, pinningPartitioner, takeWithin, unacknowledged } from './kafka-producer.js';

const kafkajsMurmur2 = createRequire(import.meta.url)('kafkajs/src/producer/partitioners/default/murmur2.js') as (key: Buffer | string) => number;

const meta = (n: number): PartitionMetadata[] =>
  Array.from({ length: n }, (_, i) => ({ partitionId: i, leader: 1, replicas: [1], isr: [1], partitionErrorCode: 0, offlineReplicas: [] }));

describe('pinningPartitioner', () => {
  it('chooses what kafkajs DefaultPartitioner chooses and writes it into the message', () => {
    const pin = pinningPartitioner();
    const base = Partitioners.DefaultPartitioner();
    for (let i = 0; i < 200; i++) {
      const message = { key: `session-${i}`, value: Buffer.from('x') } as { key: string; value: Buffer; partition?: number };
      const expected = base({ topic: 't', partitionMetadata: meta(8), message: { ...message } });
      expect(pin({ topic: 't', partitionMetadata: meta(8), message })).toBe(expected);
      expect(message.partition).toBe(expected);
    }
  });

  it('chooses it for any key and partition count (Buffer or string keys)', () => {
    const key = fc.oneof(fc.uint8Array({ maxLength: 80 }).map((a) => Buffer.from(a)), fc.string({ maxLength: 40, unit: 'binary' }));
    fc.assert(fc.property(key, fc.integer({ min: 1, max: 64 }), (k, n) => {
      const message = { key: k, value: null } as { key: Buffer | string; value: null; partition?: number };
      const expected = Partitioners.DefaultPartitioner()({ topic: 't', partitionMetadata: meta(n), message: { ...message } });
      expect(pinningPartitioner()({ topic: 't', partitionMetadata: meta(n), message })).toBe(expected);
    }), { numRuns: 2000 });
  });

  it('keeps an explicit partition', () => {
    const message = { key: 'k', value: Buffer.from('x'), partition: 5 };
    expect(pinningPartitioner()({ topic: 't', partitionMetadata: meta(8), message })).toBe(5);
  });
});

describe('murmur2', () => {
  it("gives the Java client's values (Kafka's UtilsTest.testMurmur2)", () => {
    const cases: Array<[string, number]> = [
      ['21', -973932308], ['foobar', -790332482], ['a-little-bit-long-string', -985981536],
      ['a-little-bit-longer-string', -1486304829], ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971], ['abc', 479470107],
    ];
    for (const [key, hash] of cases) {
      expect(murmur2(Buffer.from(key))).toBe(hash);
      expect(murmur2(key)).toBe(hash);
    }
  });

  it("equals kafkajs's Long-based port for any bytes", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (a) => {
      const b = Buffer.from(a);
      expect(murmur2(b)).toBe(kafkajsMurmur2(b));
    }), { numRuns: 5000 });
  });
});

describe('unacknowledged', () => {
  const m = (partition: number | undefined, v: string) => ({ key: v, value: Buffer.from(v), ...(partition === undefined ? {} : { partition }) });
  const sent = [
    { topic: 'a', messages: [m(0, 'a0'), m(1, 'a1'), m(1, 'a1b'), m(2, 'a2')] },
    { topic: 'b', messages: [m(0, 'b0')] },
  ];

  it('is empty when every partition sent to answered without error', () => {
    const answered = [
      { topicName: 'a', partition: 0, errorCode: 0 }, { topicName: 'a', partition: 1, errorCode: 0 },
      { topicName: 'a', partition: 2, errorCode: 0 }, { topicName: 'b', partition: 0, errorCode: 0 },
    ];
    expect(unacknowledged(sent, answered)).toEqual([]);
  });

  it('returns the messages of partitions missing from the answer (kafkajs dropped them on a leader change)', () => {
    // The broker that led a/1 and b/0 died; the retry found them led by a broker that had answered.
    const answered = [{ topicName: 'a', partition: 0, errorCode: 0 }, { topicName: 'a', partition: 2, errorCode: 0 }];
    expect(unacknowledged(sent, answered).map((t) => [t.topic, t.messages.map((x) => x.key)])).toEqual([
      ['a', ['a1', 'a1b']],
      ['b', ['b0']],
    ]);
  });

  it('counts an answer with an error code, or a message never partitioned, as not acknowledged', () => {
    const answered = [
      { topicName: 'a', partition: 0, errorCode: 6 }, { topicName: 'a', partition: 1, errorCode: 0 },
      { topicName: 'a', partition: 2, errorCode: 0 }, { topicName: 'b', partition: 0, errorCode: 0 },
    ];
    expect(unacknowledged(sent, answered).map((t) => t.messages.map((x) => x.key))).toEqual([['a0']]);
    expect(unacknowledged([{ topic: 'b', messages: [m(undefined, 'z')] }], answered)[0]?.messages[0]?.key).toBe('z');
  });
});

describe('takeWithin', () => {
  it('takes queued sends in order while they fit together, and at least one', () => {
    expect(takeWithin([], 100)).toBe(0);
    expect(takeWithin([40, 40, 20, 1], 100)).toBe(3);
    expect(takeWithin([40, 61, 1], 100)).toBe(1);
    // A send larger than the bound goes alone (splitIntoRequests cuts it).
    expect(takeWithin([500, 1], 100)).toBe(1);
    expect(takeWithin([1, 500], 100)).toBe(1);
    expect(takeWithin([100], 100)).toBe(1);
  });
});
