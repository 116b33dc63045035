import { QoeError } from '../errors.js';
import { createBroker } from './memory-broker.js';
import { createMemoryConsumer, type BusErrorContext } from './memory-consumer.js';
import type { Bus, BusConsumer, BusProducer } from './types.js';

export type { BusErrorContext } from './memory-consumer.js';

export interface MemoryBusOptions {
  /**
   * Bound per partition on records not yet committed by every live consumer group subscribed to the
   * topic (all retained records while no group subscribes). A send that would exceed it rejects with
   * QOE_ERR_BUS_FULL (retriable) and appends nothing.
   */
  maxBacklog: number;
  /** Clock for record timestamps when a message has none. Default Date.now. */
  now?: () => number;
  /** First redelivery delay after eachBatch rejects; doubles per consecutive failure. Default 100. */
  retryBackoffMs?: number;
  /** Cap on the redelivery delay. Default 5000. */
  maxRetryBackoffMs?: number;
  /**
   * Called when a handler (eachBatch, onAssign, onRevoke) rejects, an auto-commit fails, or a group's
   * offset had to be reset. Default: process.emitWarning.
   */
  onError?: (err: unknown, context: BusErrorContext) => void;
  /**
   * Per topic, the first offset of each partition (default 0). A restarted embedded runtime passes
   * the high watermarks it saved at stop, so offsets never repeat across restarts.
   */
  logStartOffsets?: Readonly<Record<string, readonly number[]>>;
}

export interface PartitionStats {
  topic: string;
  partition: number;
  logStartOffset: number;
  highWatermark: number;
  /** Records held in memory. */
  retained: number;
  /** Records counted against maxBacklog. */
  backlog: number;
}

export interface MemoryBus extends Bus {
  readonly kind: 'memory';
  readPartition: NonNullable<Bus['readPartition']>;
  /** Per-partition offsets and occupancy, for gauges and tests. */
  stats(): PartitionStats[];
}

function warn(err: unknown, context: BusErrorContext): void {
  const where = `${context.phase} group=${context.groupId}` + (context.topic === undefined ? '' : ` ${context.topic}/${context.partition}`);
  process.emitWarning(`memory bus: ${where}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`, 'QoeBusWarning');
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new QoeError('QOE_ERR_CONFIG_INVALID', `${name} must be a positive integer`);
  return value;
}

/**
 * The embedded runtime's bus: Kafka semantics (murmur2 partitioning, dense per-partition offsets,
 * consumer groups with range assignment, transactional send + offset commit) held in memory.
 */
export function createMemoryBus(opts: MemoryBusOptions): MemoryBus {
  const broker = createBroker({ maxBacklog: positiveInteger('maxBacklog', opts.maxBacklog), now: opts.now ?? Date.now, logStartOffsets: opts.logStartOffsets });
  const consumers = new Set<BusConsumer>();
  let closed = false;
  let memberSeq = 0;
  const runtime = {
    broker,
    retryBackoffMs: opts.retryBackoffMs ?? 100,
    maxRetryBackoffMs: opts.maxRetryBackoffMs ?? 5000,
    onError: opts.onError ?? warn,
    isClosed: () => closed,
  };

  function producer(): BusProducer {
    let producerClosed = false;
    function ensureOpen(): void {
      if (closed || producerClosed) throw new QoeError('QOE_ERR_BUS_CLOSED');
    }
    return {
      async send(topic, messages) {
        ensureOpen();
        broker.append([{ topic, messages }]);
      },
      async sendWithOffsets(batches, groupId, offsets) {
        ensureOpen();
        broker.append(batches, { groupId, offsets });
      },
      async close() {
        producerClosed = true;
      },
    };
  }

  return {
    kind: 'memory',
    async createTopics(specs) {
      if (closed) throw new QoeError('QOE_ERR_BUS_CLOSED');
      for (const spec of specs) broker.createTopic(spec);
    },
    producer,
    async readPartition(topic, partition, fromOffset, until) {
      if (closed) throw new QoeError('QOE_ERR_BUS_CLOSED');
      const log = broker.log(topic, partition);
      const records = broker.read(topic, partition, fromOffset, log.highWatermark - fromOffset);
      if (until === undefined) return records;
      const stop = records.findIndex(until);
      return stop === -1 ? records : records.slice(0, stop + 1);
    },
    consumer(consumerOpts) {
      memberSeq += 1;
      // Zero-padded so the range assignor's sort by member id is join order.
      const memberId = `${consumerOpts.groupId}-member-${String(memberSeq).padStart(9, '0')}`;
      const consumer = createMemoryConsumer(runtime, consumerOpts, memberId);
      consumers.add(consumer);
      return {
        ...consumer,
        close: () => consumer.close().finally(() => consumers.delete(consumer)),
      };
    },
    async close() {
      closed = true;
      await Promise.all([...consumers].map((c) => c.close()));
    },
    stats() {
      return [...broker.topicNames()].flatMap((topic) =>
        broker.topic(topic).partitions.map((log, partition) => ({
          topic,
          partition,
          logStartOffset: log.logStartOffset,
          highWatermark: log.highWatermark,
          retained: log.highWatermark - log.logStartOffset,
          backlog: broker.backlog(topic, partition),
        })),
      );
    },
  };
}
