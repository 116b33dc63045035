/**
 * The bus: a partitioned, replayable log with consumer groups. The interface is Kafka's, reduced to
 * what qoe-stream uses, so the in-memory implementation (embedded runtime) and the kafkajs adapter
 * (distributed runtime) are interchangeable:
 * - a topic has N partitions; a message goes to partition murmur2(key) % N (Kafka's default partitioner);
 * - order is kept per partition; offsets are per partition, from 0, dense;
 * - a consumer group splits a topic's partitions among its members; committed offsets are per group;
 * - `send` resolves only once the message is durable (acks=all) and rejects with a QoeError otherwise
 *   (QOE_ERR_BUS_FULL, retriable, when a partition is at its bound; QOE_ERR_BUS_CLOSED after close);
 * - `sendWithOffsets` makes output records and the input offsets visible atomically (Kafka transaction).
 */

/** Record batch compression on Kafka (`QOE_KAFKA_COMPRESSION`; codecs in lib/bus/kafka-codecs.ts). */
export type KafkaCompression = 'none' | 'gzip' | 'lz4';
export const KAFKA_COMPRESSIONS: readonly KafkaCompression[] = ['lz4', 'gzip', 'none'];

/**
 * How clients authenticate to the Kafka brokers (`QOE_KAFKA_TLS*`, `QOE_KAFKA_SASL_*`): TLS (with the
 * system's CAs, or the PEM bundle in `caPem`) and SASL PLAIN or SCRAM over it, as managed Kafka
 * services (MSK, Confluent Cloud, Aiven) and secured self-run clusters require.
 */
export interface KafkaSecurity {
  tls: boolean;
  /** PEM CA bundle the brokers' certificates are checked against; undefined = the system's CAs. */
  caPem?: string;
  sasl?: { mechanism: KafkaSaslMechanism; username: string; password: string };
}
export type KafkaSaslMechanism = 'plain' | 'scram-sha-256' | 'scram-sha-512';
export const KAFKA_SASL_MECHANISMS: readonly KafkaSaslMechanism[] = ['plain', 'scram-sha-256', 'scram-sha-512'];

export interface BusMessage {
  key: string;
  value: Buffer;
  /** Producer timestamp; defaults to the send time. */
  timestampMs?: number;
  /**
   * Explicit target partition, overriding murmur2(key) (e.g. a changelog record goes to the partition
   * of the input it belongs to). Must exist in the topic.
   */
  partition?: number;
}

export interface BusRecord {
  topic: string;
  partition: number;
  offset: number;
  key: string;
  value: Buffer;
  timestampMs: number;
  /**
   * `read` of the value's bytes where they lie (in `bytes`, from `start` to `end`), when the bus can
   * hand them out without making a Buffer of them (Kafka's fetched records); reads the same bytes as
   * `value`. Absent: read `value`.
   */
  readValue?<T>(read: (bytes: Buffer, start: number, end: number) => T): T;
}

export interface TopicSpec {
  topic: string;
  partitions: number;
  replicationFactor?: number;
  /** Kafka topic configs, e.g. { 'cleanup.policy': 'compact' }. */
  config?: Record<string, string>;
}

export interface TopicMessages {
  topic: string;
  messages: BusMessage[];
}

/** The next offset to read (Kafka semantics: last processed + 1). */
export interface OffsetCommit {
  topic: string;
  partition: number;
  offset: number;
}

export interface BusProducer {
  send(topic: string, messages: BusMessage[]): Promise<void>;
  /**
   * Atomically append `batches` and commit `offsets` for `groupId` (exactly-once hand-off between
   * a consumer and its outputs). Either all of it becomes visible or none of it.
   */
  sendWithOffsets(batches: TopicMessages[], groupId: string, offsets: OffsetCommit[]): Promise<void>;
  close(): Promise<void>;
}

export interface TopicPartition {
  topic: string;
  partition: number;
}

export interface ConsumerBatch {
  topic: string;
  partition: number;
  records: BusRecord[];
  /** Offset the next appended record will get: lag = highWatermark − (last offset + 1). */
  highWatermark: number;
  /**
   * The offset to commit once this batch is processed, when it is more than the last record's + 1:
   * Kafka skips transaction markers and aborted records after it (read_committed), and committing
   * only last + 1 would leave them counted as lag forever. Absent = last record's offset + 1.
   */
  nextOffset?: number;
}

export interface ConsumerHandlers {
  eachBatch(batch: ConsumerBatch): Promise<void>;
  /** Called before partitions are taken away (rebalance, close): flush state for them. */
  onRevoke?(partitions: TopicPartition[]): Promise<void>;
  /** Called when partitions are assigned, before their first batch. */
  onAssign?(partitions: TopicPartition[]): Promise<void>;
}

export interface ConsumerOptions {
  groupId: string;
  topics: string[];
  /** Where to start when the group has no committed offset. Default true (earliest). */
  fromBeginning?: boolean;
  /** Commit each batch's offsets after eachBatch resolves. Default true. */
  autoCommit?: boolean;
  /** Upper bound on records per batch. Default 1000. */
  maxBatchSize?: number;
  /**
   * Kafka: most bytes (as stored, i.e. compressed) one fetch takes from a partition, and so about the
   * records of one partition's batch. Default 1 MiB (kafkajs's). A fetch takes at most 10 MiB in all.
   */
  maxBytesPerPartition?: number;
  /**
   * Kafka: a fetch returns once this many bytes (as stored) are ready across its partitions, or
   * after `maxWaitMs`. Default 1: as soon as anything is. More = fewer, larger batches when the
   * input trickles in, for up to `maxWaitMs` more latency.
   */
  minBytes?: number;
  /** Kafka: longest a fetch waits (for `minBytes`, or for any data). Default: the bus's (1000 ms). */
  maxWaitMs?: number;
}

export interface BusConsumer {
  run(handlers: ConsumerHandlers): Promise<void>;
  commit(offsets: OffsetCommit[]): Promise<void>;
  pause(partitions: TopicPartition[]): void;
  resume(partitions: TopicPartition[]): void;
  /** Records appended but not yet committed by this group, per partition. */
  lag(): Promise<Array<TopicPartition & { lag: number }>>;
  close(): Promise<void>;
}

export interface Bus {
  readonly kind: 'memory' | 'kafka';
  createTopics(specs: TopicSpec[]): Promise<void>;
  producer(opts?: { transactionalId?: string }): BusProducer;
  consumer(opts: ConsumerOptions): BusConsumer;
  /**
   * Reads one partition outside any consumer group (committed records only), from `fromOffset` up to
   * the first record for which `until` returns true, or up to the partition's end as of the call
   * when `until` is omitted. Used to restore processor state from its changelog. Kafka cannot tell
   * where the end is when only transaction markers follow the last record: callers write a barrier
   * record first and stop at it.
   */
  readPartition?(topic: string, partition: number, fromOffset: number, until?: (r: BusRecord) => boolean): Promise<BusRecord[]>;
  close(): Promise<void>;
}
