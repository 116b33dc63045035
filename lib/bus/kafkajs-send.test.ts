// First: the patch must run before anything loads kafkajs, as in the adapter's files.
import { kafkajsPatched } from './kafkajs-patches.js';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { createSendMessages, type SendMessagesDeps } from './kafkajs-send.js';

/**
 * The send path when a partition leader dies mid-send, replayed deterministically against fakes of
 * the kafkajs objects sendMessages talks to (cluster metadata, brokers, the idempotence state). The
 * same scenario runs through kafkajs 2.2.4's own sendMessages, to show what the replacement is for.
 * The real-broker version of this is test/kafka-cluster.test.ts.
 */

const require = createRequire(import.meta.url);
const createRetrier = require('kafkajs/src/retry') as (opts: object) => SendMessagesDeps['retrier'];
const { KafkaJSConnectionError } = require('kafkajs/src/errors') as { KafkaJSConnectionError: new (msg: string) => Error };

type CreateSendMessages = typeof createSendMessages;

/** kafkajs's own implementation, evaluated from its file (the module cache now holds ours). */
function kafkajsOriginal(): CreateSendMessages {
  const file = require.resolve('kafkajs/src/producer/sendMessages.js');
  const mod = { exports: undefined as unknown };
  new Function('module', 'exports', 'require', readFileSync(file, 'utf8'))(mod, mod.exports, createRequire(file));
  return mod.exports as CreateSendMessages;
}

const TOPIC = 't';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Produced { nodeId: number; partition: number; firstSequence: number; values: string[]; ok: boolean }

/**
 * Two brokers: 1 leads partition 0, 2 leads partition 1. Broker 1 dies at its first request (after
 * `deadAfterMs`): the request fails with a connection error and the refreshed metadata shows broker 2
 * leading both partitions. Broker 2 answers each request after `answerMs`.
 */
function scenario(opts: { deadAfterMs: number; answerMs: number }) {
  let dead = false;
  const produced: Produced[] = [];
  const sequences = new Map<string, number>();
  const locks = new Map<number, Promise<void>>();
  const releases = new Map<number, () => void>();
  let inFlight = 0;
  let maxInFlightPerBroker = 0;
  const perBrokerInFlight = new Map<number, number>();

  const broker = (nodeId: number) => ({
    nodeId,
    async produce({ topicData }: { topicData: Array<{ topic: string; partitions: Array<{ partition: number; firstSequence: number; messages: Array<{ value: string }> }> }> }) {
      const now = (perBrokerInFlight.get(nodeId) ?? 0) + 1;
      perBrokerInFlight.set(nodeId, now);
      maxInFlightPerBroker = Math.max(maxInFlightPerBroker, now);
      inFlight += 1;
      try {
        const entries = topicData.flatMap(({ partitions }) => partitions);
        const record = (ok: boolean) =>
          entries.forEach((p) => produced.push({ nodeId, partition: p.partition, firstSequence: p.firstSequence, values: p.messages.map((m) => m.value), ok }));
        if (nodeId === 1) {
          await sleep(opts.deadAfterMs);
          dead = true;
          record(false);
          throw new KafkaJSConnectionError('Connection error: broker 1 killed');
        }
        await sleep(opts.answerMs);
        record(true);
        return { topics: topicData.map(({ topic, partitions }) => ({ topicName: topic, partitions: partitions.map((p) => ({ partition: p.partition, errorCode: 0, baseOffset: '0' })) })) };
      } finally {
        inFlight -= 1;
        perBrokerInFlight.set(nodeId, (perBrokerInFlight.get(nodeId) ?? 1) - 1);
      }
    },
  });
  const brokers = new Map([[1, broker(1)], [2, broker(2)]]);
  let metadata = [{ partitionId: 0, leader: 1 }, { partitionId: 1, leader: 2 }];

  /** Only kafkajs's own sendMessages asks this (partition ids → by leader), as kafkajs's cluster answers. */
  const findLeaderForPartitions = (_topic: string, partitions: string[]) => {
    const out: Record<number, number[]> = {};
    for (const id of partitions.map(Number)) {
      const leader = metadata.find((p) => p.partitionId === id)?.leader;
      if (leader !== undefined) (out[leader] ??= []).push(id);
    }
    return out;
  };
  const deps: SendMessagesDeps = {
    logger: { debug: () => undefined, error: () => undefined },
    partitioner: ({ message }) => (message as { partition: number }).partition,
    retrier: createRetrier({ retries: 5, initialRetryTime: 10, maxRetryTime: 50 }),
    cluster: {
      refreshMetadataIfNecessary: async () => undefined,
      refreshMetadata: async () => {
        if (dead) metadata = [{ partitionId: 0, leader: 2 }, { partitionId: 1, leader: 2 }];
      },
      findTopicPartitionMetadata: () => metadata,
      findBroker: async ({ nodeId }) => {
        const b = brokers.get(Number(nodeId));
        if (b === undefined) throw new Error(`no broker ${nodeId}`);
        return b as never;
      },
      addMultipleTargetTopics: async () => undefined,
      removeBroker: () => undefined,
      isConnected: () => true,
      connect: async () => undefined,
      ...{ findLeaderForPartitions },
    },
    eosManager: {
      isTransactional: () => false,
      getTransactionalId: () => '',
      getProducerId: () => 7,
      getProducerEpoch: () => 0,
      getSequence: (topic, partition) => sequences.get(`${topic}/${partition}`) ?? 0,
      updateSequence: (topic, partition, n) => sequences.set(`${topic}/${partition}`, (sequences.get(`${topic}/${partition}`) ?? 0) + n),
      // kafkajs's eosManager: one request per broker at a time.
      acquireBrokerLock: async (b) => {
        while (locks.has(b.nodeId)) await locks.get(b.nodeId);
        locks.set(b.nodeId, new Promise<void>((r) => releases.set(b.nodeId, r)));
      },
      releaseBrokerLock: (b) => {
        locks.delete(b.nodeId);
        releases.get(b.nodeId)?.();
      },
      addPartitionsToTransaction: async () => undefined,
    },
  };
  const topicMessages = [{ topic: TOPIC, messages: [0, 1].flatMap((partition) => ['a', 'b', 'c'].map((v) => ({ partition, value: `${partition}${v}` }))) }];
  const send = (create: CreateSendMessages) => create(deps)({ acks: -1, timeout: 1000, compression: 0, topicMessages });
  /** Records written (acknowledged requests), by partition, in order. */
  const written = (partition: number) => produced.filter((p) => p.ok && p.partition === partition).flatMap((p) => p.values);
  return { send, produced, written, idle: () => inFlight === 0, maxInFlightPerBroker: () => maxInFlightPerBroker };
}

describe('kafkajs patch: sendMessages when a leader dies mid-send', () => {
  it('is what kafkajs loads', () => {
    expect(kafkajsPatched).toBe(true);
    expect(require('kafkajs/src/producer/sendMessages.js')).toBe(createSendMessages);
  });

  it('a live broker slower than the dead one: its partition is written once, the dead one\'s re-sent with its own sequence numbers', async () => {
    const s = scenario({ deadAfterMs: 1, answerMs: 80 });
    const answers = await s.send(createSendMessages);
    expect(s.written(0)).toEqual(['0a', '0b', '0c']);
    expect(s.written(1)).toEqual(['1a', '1b', '1c']);
    // Partition 0 was first sent to broker 1 with sequence 0 and re-sent to broker 2 with sequence 0:
    // had broker 1 written it, the new leader would recognise the retry.
    expect(s.produced.filter((p) => p.partition === 0).map((p) => [p.nodeId, p.firstSequence, p.ok])).toEqual([[1, 0, false], [2, 0, true]]);
    expect(answers.map((a) => a.partition).sort()).toEqual([0, 1]);
    expect(s.idle()).toBe(true);
    expect(s.maxInFlightPerBroker()).toBe(1);
  });

  it('a live broker faster than the dead one: the dead one\'s partition is still sent to its new leader', async () => {
    const s = scenario({ deadAfterMs: 60, answerMs: 1 });
    const answers = await s.send(createSendMessages);
    expect(s.written(0)).toEqual(['0a', '0b', '0c']);
    expect(s.written(1)).toEqual(['1a', '1b', '1c']);
    expect(answers.map((a) => a.partition).sort()).toEqual([0, 1]);
  });

  it('kafkajs 2.2.4\'s own: the slow live broker\'s records are written twice, under new sequence numbers', async () => {
    const s = scenario({ deadAfterMs: 1, answerMs: 80 });
    await s.send(kafkajsOriginal());
    expect(s.written(1)).toEqual(['1a', '1b', '1c', '1a', '1b', '1c']);
    expect(s.produced.filter((p) => p.partition === 1 && p.ok).map((p) => p.firstSequence)).toEqual([0, 3]);
  });

  it('kafkajs 2.2.4\'s own: with the live broker faster, the dead one\'s partition is never sent again', async () => {
    const s = scenario({ deadAfterMs: 60, answerMs: 1 });
    const answers = await s.send(kafkajsOriginal());
    expect(s.written(0)).toEqual([]);
    expect(answers.map((a) => a.partition)).toEqual([1]);
  });
});
