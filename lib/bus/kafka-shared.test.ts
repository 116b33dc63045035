import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RECORD_OVERHEAD_BYTES, mergeByTopic, splitIntoRequests, toBusRecord, type KafkaMessageOut } from './kafka-shared.js';
import { FetchedBatchBase, FetchedRecord } from './kafkajs-patches.js';
import type { KafkaMessage } from 'kafkajs';

type Out = Array<{ topic: string; messages: KafkaMessageOut[] }>;

const size = (m: KafkaMessageOut): number => Buffer.byteLength(m.key) + m.value.length + RECORD_OVERHEAD_BYTES;

/** Per partition of the topic, the records that may share its batch in one request: those pinned there and the unpinned. */
function batches(messages: KafkaMessageOut[]): KafkaMessageOut[][] {
  const pinned = [...new Set(messages.flatMap((m) => (m.partition === undefined ? [] : [m.partition])))];
  const unpinned = messages.filter((m) => m.partition === undefined);
  return pinned.length === 0 ? [unpinned] : pinned.map((p) => [...messages.filter((m) => m.partition === p), ...unpinned]);
}

const fits = (batch: KafkaMessageOut[], max: number): boolean => batch.length <= 1 || batch.reduce((n, m) => n + size(m), 0) <= max;

const arbMessage = fc.record({
  key: fc.string({ maxLength: 6 }),
  value: fc.integer({ min: 0, max: 300 }).map((n) => Buffer.alloc(n, 1)),
  partition: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
}).map(({ key, value, partition }) => (partition === undefined ? { key, value } : { key, value, partition }));

const arbSend = fc.uniqueArray(fc.constantFrom('a', 'b', 'c'), { minLength: 1 }).chain((topics) =>
  fc.tuple(...topics.map((topic) => fc.array(arbMessage, { minLength: 1, maxLength: 40 }).map((messages) => ({ topic, messages })))),
);

describe('splitIntoRequests', () => {
  it('keeps every message once, each topic in order, every partition batch within the bound, and splits only where it must', () => {
    fc.assert(fc.property(arbSend, fc.integer({ min: 50, max: 2000 }), (send: Out, max) => {
      const requests = splitIntoRequests(send, max);
      for (const { topic, messages } of send) {
        const parts = requests.map((r) => r.filter((t) => t.topic === topic).flatMap((t) => t.messages));
        // Every message once, in order (the same objects: kafkajs writes the chosen partition into them).
        expect(parts.flat()).toEqual(messages);
        parts.flat().forEach((m, i) => expect(m).toBe(messages[i]));
        for (const part of parts) for (const batch of batches(part)) expect(fits(batch, max)).toBe(true);
        // Minimal: the first message of each further request would not have fitted into the one before.
        const used = parts.filter((p) => p.length > 0);
        for (let i = 1; i < used.length; i++) {
          const merged = [...(used[i - 1] ?? []), used[i]?.[0] as KafkaMessageOut];
          expect(batches(merged).every((b) => fits(b, max))).toBe(false);
        }
      }
    }));
  });

  it('sends a small send as one request, and a record larger than the bound alone', () => {
    const m = (partition: number, bytes: number): KafkaMessageOut => ({ key: 'k', value: Buffer.alloc(bytes), partition });
    const small = [{ topic: 't', messages: [m(0, 10), m(1, 10), m(0, 10)] }];
    expect(splitIntoRequests(small, 1000)).toEqual([small]);
    const big = [{ topic: 't', messages: [m(0, 10), m(0, 5000), m(0, 10)] }];
    expect(splitIntoRequests(big, 1000).map((r) => r.map((t) => t.messages.map((x) => x.value.length)))).toEqual([[[10]], [[5000]], [[10]]]);
  });
});

describe('mergeByTopic', () => {
  const m = (key: string, extra: object = {}): { key: string; value: Buffer } => ({ key, value: Buffer.from(key), ...extra });

  it("hands a topic given once on as the caller's array, and leaves the caller's arrays as they were when it merges", () => {
    const changelog = [m('a', { partition: 2 }), m('b', { partition: 2 })];
    const metricsA = [m('x')];
    const metricsB = [m('y'), m('z')];
    const merged = mergeByTopic([{ topic: 'c', messages: changelog }, { topic: 'm', messages: metricsA }, { topic: 'm', messages: metricsB }]);
    expect(merged.map((t) => t.topic)).toEqual(['c', 'm']);
    expect(merged[0]?.messages).toBe(changelog);
    expect(merged[1]?.messages.map((x) => x.key)).toEqual(['x', 'y', 'z']);
    merged[1]?.messages.forEach((x, i) => expect(x).toBe([...metricsA, ...metricsB][i]));
    expect(metricsA.map((x) => x.key)).toEqual(['x']);
    expect(metricsB.map((x) => x.key)).toEqual(['y', 'z']);
  });

  it('gives kafkajs a timestamp as its decimal string, in a message of its own', () => {
    const given = [m('a', { timestampMs: 1_767_225_600_000, partition: 1 }), m('b')];
    const [t] = mergeByTopic([{ topic: 't', messages: given }]);
    expect(t?.messages).not.toBe(given);
    expect(t?.messages).toEqual([{ key: 'a', value: Buffer.from('a'), timestamp: '1767225600000', partition: 1 }, given[1]]);
    expect(given[0]).toEqual(m('a', { timestampMs: 1_767_225_600_000, partition: 1 }));
  });
});

describe('toBusRecord', () => {
  const fields = (r: ReturnType<typeof toBusRecord>): unknown => ({ topic: r.topic, partition: r.partition, offset: r.offset, key: r.key, value: r.value, timestampMs: r.timestampMs });

  it("reads a decoded record's key and value out of the batch's bytes as a plain kafkajs message gives them", () => {
    fc.assert(fc.property(fc.option(fc.string({ unit: 'grapheme', maxLength: 30 }), { nil: null }), fc.option(fc.uint8Array({ maxLength: 50 }), { nil: null }), fc.nat(), (key, value, offset) => {
      const k = key === null ? null : Buffer.from(key);
      const v = value === null ? null : Buffer.from(value);
      // The batch's bytes: something before, the key, the value, something after.
      const bytes = Buffer.concat([Buffer.from([9, 9]), k ?? Buffer.alloc(0), v ?? Buffer.alloc(0), Buffer.from([7])]);
      const vAt = 2 + (k?.length ?? 0);
      const decoded = new FetchedRecord(new FetchedBatchBase(bytes, 2, false, {}, 1_767_225_600_000, NaN), 0, 0, offset, 2, k === null ? -1 : k.length, vAt, v === null ? -1 : v.length, {});
      const plain = { key: k, value: v, offset: String(offset), timestamp: '1767225600000', attributes: 0, headers: {} } as unknown as KafkaMessage;
      const expected = { topic: 't', partition: 3, offset, key: key ?? '', value: v ?? Buffer.alloc(0), timestampMs: 1_767_225_600_000 };
      expect(fields(toBusRecord('t', 3, decoded as unknown as KafkaMessage))).toEqual(expected);
      expect(fields(toBusRecord('t', 3, plain))).toEqual(expected);
    }), { numRuns: 300 });
  });
});
