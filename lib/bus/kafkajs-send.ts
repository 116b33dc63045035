import { createRequire } from 'node:module';

/**
 * Replacement of kafkajs 2.2.4's `producer/sendMessages.js` (installed by kafkajs-patches.ts, patch
 * 8): the function behind every `send`/`sendBatch` that groups records by partition leader, sends one
 * produce request per leader and retries.
 *
 * kafkajs keeps one answer per *broker* and sends its requests with `Promise.all`. Two faults follow
 * when a leader dies mid-send (both seen in test/kafka-cluster.test.ts, a 3-broker cluster with a
 * leader killed -9):
 *
 * - Duplicates. The request to the dead broker fails at once while the request to a live broker is
 *   still waiting for its acks=all replication (to the dead broker, until it leaves the ISR).
 *   `Promise.all` rejects, the retry lists the live broker as "without response", waits for its
 *   lock until the first request is answered, then sends its partitions again — with the
 *   sequence numbers after the first request's, since that request reserved them and succeeded. The
 *   broker cannot tell them for a retry and writes the records twice (2 of ~29,000 beacons in one
 *   run of four).
 * - Loss. When the dead broker's partitions move to a broker that already answered, the retry finds
 *   that broker answered and never sends them; the send resolves without them
 *   (kafka-producer.ts' `sendAllPartitions` turns that into an error).
 *
 * Here an attempt waits for every request it made to settle (answered or failed) before the next
 * begins, and what is done is kept per *partition*: the next attempt sends exactly the partitions not
 * yet acknowledged, to their leaders of the refreshed metadata, with the sequence numbers they had
 * (a failed request gives its reservation back, as in kafkajs), so a request that was written
 * although its answer was lost is recognised by the new leader as a retry. A partition without a
 * leader in the metadata is an error to retry after refreshing the metadata (kafkajs left it out
 * silently), and so is a leader missing from the broker list. Otherwise errors and their retry
 * decisions are kafkajs's own.
 */

interface Broker { nodeId: number; produce(args: Record<string, unknown>): Promise<unknown> }
interface Cluster {
  refreshMetadataIfNecessary(): Promise<void>;
  refreshMetadata(): Promise<void>;
  findTopicPartitionMetadata(topic: string): Array<{ partitionId: number; leader?: number | null }>;
  findBroker(args: { nodeId: string }): Promise<Broker>;
  addMultipleTargetTopics(topics: string[]): Promise<void>;
  removeBroker(args: { host: string; port: number }): void;
  isConnected(): boolean;
  connect(): Promise<void>;
}
interface EosManager {
  isTransactional(): boolean;
  getTransactionalId(): string;
  getProducerId(): unknown;
  getProducerEpoch(): unknown;
  getSequence(topic: string, partition: number): number;
  updateSequence(topic: string, partition: number, increment: number): void;
  acquireBrokerLock(broker: Broker): Promise<void>;
  releaseBrokerLock(broker: Broker): void;
  addPartitionsToTransaction(topicData: TopicData[]): Promise<void>;
}
type Partitioner = (args: { topic: string; partitionMetadata: unknown[]; message: unknown }) => number;
type Retrier = <T>(fn: (bail: (err: unknown) => void, retryCount: number, retryTime: number) => Promise<T>) => Promise<T>;
interface Logger { debug(msg: string, extra?: object): void; error(msg: string, extra?: object): void }
interface KafkajsError extends Error { retriable?: boolean; host?: string; port?: number; type?: string }

interface PartitionData { partition: number; messages: unknown[]; firstSequence?: number }
interface TopicData { topic: string; partitions: PartitionData[] }
/** One partition's answer, as kafkajs's responseSerializer gives it. */
interface PartitionResponse { topicName: string; partition: number; [field: string]: unknown }

export interface SendMessagesDeps {
  logger: Logger;
  cluster: Cluster;
  partitioner: Partitioner;
  eosManager: EosManager;
  retrier: Retrier;
}

export interface SendArgs {
  acks: number;
  timeout: number;
  compression: unknown;
  topicMessages: Array<{ topic: string; messages: unknown[] }>;
}

const require = createRequire(import.meta.url);

export function createSendMessages({ logger, cluster, partitioner, eosManager, retrier }: SendMessagesDeps) {
  // Loaded when a producer is made, long after kafkajs-patches.ts filled the module cache.
  const { KafkaJSMetadataNotLoaded } = require('kafkajs/src/errors') as { KafkaJSMetadataNotLoaded: new (msg: string) => Error };
  const { staleMetadata } = require('kafkajs/src/protocol/error') as { staleMetadata(e: unknown): boolean };
  const groupMessagesPerPartition = require('kafkajs/src/producer/groupMessagesPerPartition') as (args: {
    topic: string; partitionMetadata: unknown[]; messages: unknown[]; partitioner: Partitioner;
  }) => Record<number, unknown[]>;
  const responseSerializer = require('kafkajs/src/producer/responseSerializer') as (response: unknown) => PartitionResponse[];

  return async function sendMessages({ acks, timeout, compression, topicMessages }: SendArgs): Promise<PartitionResponse[]> {
    /** `topic\0partition` → its answer (null with acks=0), once acknowledged. */
    const done = new Map<string, PartitionResponse | null>();
    const slot = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

    /** The partitions not yet acknowledged, by their current leader. */
    async function pendingByLeader(): Promise<Map<number, TopicData[]>> {
      await cluster.refreshMetadataIfNecessary();
      const byLeader = new Map<number, TopicData[]>();
      for (const { topic, messages } of topicMessages) {
        const partitionMetadata = cluster.findTopicPartitionMetadata(topic);
        if (partitionMetadata.length === 0) {
          logger.debug('Producing to topic without metadata', { topic });
          throw new KafkaJSMetadataNotLoaded('Producing to topic without metadata');
        }
        const perPartition = groupMessagesPerPartition({ topic, partitionMetadata, messages, partitioner });
        for (const key of Object.keys(perPartition)) {
          const partition = Number(key);
          if (done.has(slot(topic, partition))) continue;
          const leader = partitionMetadata.find((p) => p.partitionId === partition)?.leader;
          if (leader === null || leader === undefined) {
            // kafkajs dropped such a partition from the send; here the metadata is refreshed and retried.
            throw new KafkaJSMetadataNotLoaded(`No leader known for ${topic}[${partition}]`);
          }
          const list = byLeader.get(leader) ?? [];
          if (!byLeader.has(leader)) byLeader.set(leader, list);
          let entry = list.find((t) => t.topic === topic);
          if (entry === undefined) list.push((entry = { topic, partitions: [] }));
          entry.partitions.push({ partition, messages: perPartition[partition] ?? [] });
        }
      }
      return byLeader;
    }

    async function produceTo(nodeId: number, topicData: TopicData[]): Promise<void> {
      const broker = await cluster.findBroker({ nodeId: String(nodeId) });
      await eosManager.acquireBrokerLock(broker);
      try {
        if (eosManager.isTransactional()) await eosManager.addPartitionsToTransaction(topicData);
        for (const { topic, partitions } of topicData) {
          for (const entry of partitions) {
            entry.firstSequence = eosManager.getSequence(topic, entry.partition);
            eosManager.updateSequence(topic, entry.partition, entry.messages.length);
          }
        }
        let response: unknown;
        try {
          response = await broker.produce({
            transactionalId: eosManager.isTransactional() ? eosManager.getTransactionalId() : undefined,
            producerId: eosManager.getProducerId(),
            producerEpoch: eosManager.getProducerEpoch(),
            acks,
            timeout,
            compression,
            topicData,
          });
        } catch (e) {
          for (const { topic, partitions } of topicData) {
            for (const entry of partitions) eosManager.updateSequence(topic, entry.partition, -entry.messages.length);
          }
          throw e;
        }
        if (acks === 0) {
          for (const { topic, partitions } of topicData) for (const { partition } of partitions) done.set(slot(topic, partition), null);
          return;
        }
        for (const answer of responseSerializer(response)) done.set(slot(answer.topicName, answer.partition), answer);
      } finally {
        eosManager.releaseBrokerLock(broker);
      }
    }

    return retrier(async (bail, retryCount, retryTime) => {
      await cluster.addMultipleTargetTopics(topicMessages.map(({ topic }) => topic));
      try {
        const byLeader = await pendingByLeader();
        // Every request settles before this attempt ends: the next never overlaps one still out.
        const settled = await Promise.allSettled([...byLeader].map(([nodeId, topicData]) => produceTo(nodeId, topicData)));
        const failures = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as KafkajsError] : []));
        for (const e of failures) {
          if (e.name === 'KafkaJSConnectionClosedError' && e.host !== undefined && e.port !== undefined) cluster.removeBroker({ host: e.host, port: e.port });
        }
        const [first] = failures;
        if (first !== undefined) throw first;
        return [...done.values()].filter((r): r is PartitionResponse => r !== null);
      } catch (err) {
        const e = err as KafkajsError;
        if (!cluster.isConnected()) {
          logger.debug(`Cluster has disconnected, reconnecting: ${e.message}`, { retryCount, retryTime });
          await cluster.connect();
          await cluster.refreshMetadata();
          throw e;
        }
        if (
          staleMetadata(e) ||
          e.name === 'KafkaJSMetadataNotLoaded' ||
          e.name === 'KafkaJSBrokerNotFound' ||
          e.name === 'KafkaJSConnectionError' ||
          e.name === 'KafkaJSConnectionClosedError' ||
          (e.name === 'KafkaJSProtocolError' && e.retriable === true)
        ) {
          logger.error(`Failed to send messages: ${e.message}`, { retryCount, retryTime });
          await cluster.refreshMetadata();
          throw e;
        }
        logger.error(e.message, { retryCount, retryTime });
        if (e.retriable === true) throw e;
        bail(e);
        return [];
      }
    });
  };
}
