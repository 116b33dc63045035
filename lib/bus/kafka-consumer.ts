import type { Admin, Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import { QoeError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { BusConsumer, ConsumerHandlers, ConsumerOptions, OffsetCommit, TopicPartition } from './types.js';
import { busError, createSerial, groupPartitions, toBusRecord } from './kafka-shared.js';

export interface KafkaConsumerDeps {
  kafka: Kafka;
  admin: () => Promise<Admin>;
  log: Logger;
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
  maxWaitMs: number;
  retries: number;
}

const key = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

/**
 * A BusConsumer on a kafkajs consumer group: read_committed, kafkajs's auto-commit off, offsets
 * committed by this adapter after each handled chunk when `autoCommit` (default) is on.
 *
 * eachBatch: kafkajs hands over one partition's fetched batch; it is cut into chunks of at most
 * `maxBatchSize` records, in offset order. Before each chunk the adapter checks that the consumer
 * still runs, the batch is not stale (rebalance) and the partition is not paused; a paused
 * partition's remaining records are not resolved, so kafkajs fetches them again after resume().
 *
 * onAssign / onRevoke map kafkajs's instrumentation events (kafkajs uses the eager protocol: a
 * rebalance takes every partition away, then hands out a new set):
 * - `consumer.rebalancing` (the member found the group rebalancing) → onRevoke(everything held);
 * - `consumer.group_join` (join + sync done, payload.memberAssignment) → onRevoke(what is still held,
 *   if no rebalancing event came first, e.g. after UNKNOWN_MEMBER_ID), then onAssign(new assignment);
 * - close() → pause all, onRevoke(everything held), leave the group.
 * Handlers and batches run one at a time in event order, so onAssign finishes before the first
 * batch of the new generation and onRevoke waits for the batch in progress.
 * Limits: kafkajs does not await event listeners, so the rejoin runs concurrently with onRevoke —
 * another member may receive the partitions before onRevoke has finished flushing (the sink asks
 * the store what is in before every insert; the processor's transactions fence); and a commit
 * from a member that lost its partitions fails (rebalance / illegal generation) and is retried by
 * the next owner from the last committed offset, i.e. at-least-once across a rebalance unless the
 * output is written with sendWithOffsets.
 */
export function createKafkaConsumer(deps: KafkaConsumerDeps, opts: ConsumerOptions): BusConsumer {
  const autoCommit = opts.autoCommit ?? true;
  const maxBatchSize = opts.maxBatchSize ?? 1000;
  const log = deps.log.child({ groupId: opts.groupId });
  const serial = createSerial();
  const paused = new Map<string, TopicPartition>();
  let assigned: TopicPartition[] = [];
  let consumer: Consumer | undefined;
  let closing = false;
  let handlers: ConsumerHandlers | undefined;

  const revokeAll = (): Promise<void> =>
    serial(async function revoke() {
      const lost = assigned;
      assigned = [];
      if (lost.length > 0 && handlers?.onRevoke !== undefined) await handlers.onRevoke(lost);
    });

  const assign = (memberAssignment: Record<string, number[]>): Promise<void> =>
    serial(async function assignPartitions() {
      if (assigned.length > 0 && handlers?.onRevoke !== undefined) await handlers.onRevoke(assigned);
      assigned = Object.entries(memberAssignment).flatMap(([topic, parts]) => parts.map((partition) => ({ topic, partition })));
      if (assigned.length > 0 && handlers?.onAssign !== undefined) await handlers.onAssign(assigned);
    });

  const onLifecycleError = (err: unknown): void => log.error({ err }, 'kafka consumer onAssign/onRevoke failed');

  async function eachBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    const h = handlers;
    if (h === undefined) return;
    await serial(async function handleBatch() {
      const messages = batch.messages;
      for (let start = 0; start < messages.length; start += maxBatchSize) {
        if (closing || !payload.isRunning() || payload.isStale() || paused.has(key(batch.topic, batch.partition))) return;
        // The whole fetched batch as it is when it fits in one chunk (the processor's usually does).
        const chunk = start === 0 && messages.length <= maxBatchSize ? messages : messages.slice(start, start + maxBatchSize);
        const records = chunk.map((m) => toBusRecord(batch.topic, batch.partition, m));
        const last = records[records.length - 1];
        if (last === undefined) continue;
        const atEnd = start + maxBatchSize >= messages.length;
        // At the end of the fetched batch, move past filtered records too (aborted data, markers).
        const next = atEnd ? Math.max(last.offset, Number(batch.lastOffset())) : last.offset;
        await h.eachBatch({ topic: batch.topic, partition: batch.partition, records, highWatermark: Number(batch.highWatermark), nextOffset: next + 1 });
        payload.resolveOffset(String(next));
        // Errors (rebalance in progress, …) go back to kafkajs unwrapped: it recognises and handles them.
        if (autoCommit && consumer !== undefined) {
          await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: String(next + 1) }]);
        }
        await payload.heartbeat();
      }
    });
  }

  function applyPause(tps: TopicPartition[], how: 'pause' | 'resume'): void {
    if (consumer === undefined) return;
    const arg = [...groupPartitions(tps)].map(([topic, list]) => ({ topic, partitions: list.map((t) => t.partition) }));
    if (how === 'pause') consumer.pause(arg);
    else consumer.resume(arg);
  }

  return {
    async run(h) {
      if (closing) throw new QoeError('QOE_ERR_BUS_CLOSED');
      if (consumer !== undefined) throw new QoeError('QOE_ERR_INTERNAL', 'consumer.run() called twice');
      handlers = h;
      const c = deps.kafka.consumer({
        groupId: opts.groupId,
        readUncommitted: false,
        allowAutoTopicCreation: false,
        sessionTimeout: deps.sessionTimeoutMs,
        heartbeatInterval: deps.heartbeatIntervalMs,
        maxWaitTimeInMs: opts.maxWaitMs ?? deps.maxWaitMs,
        minBytes: opts.minBytes ?? 1,
        ...(opts.maxBytesPerPartition === undefined ? {} : { maxBytesPerPartition: opts.maxBytesPerPartition }),
        retry: { retries: deps.retries },
      });
      consumer = c;
      c.on(c.events.REBALANCING, () => void revokeAll().catch(onLifecycleError));
      c.on(c.events.GROUP_JOIN, (e) => void assign(e.payload.memberAssignment).catch(onLifecycleError));
      c.on(c.events.CRASH, (e) => log.error({ err: e.payload.error, restart: e.payload.restart }, 'kafka consumer crashed'));
      try {
        await c.connect();
        await c.subscribe({ topics: opts.topics, fromBeginning: opts.fromBeginning ?? true });
        await c.run({ autoCommit: false, eachBatchAutoResolve: false, partitionsConsumedConcurrently: 1, eachBatch });
      } catch (err) {
        throw busError('consumer.run', err, { groupId: opts.groupId });
      }
      if (paused.size > 0) applyPause([...paused.values()], 'pause');
    },

    async commit(offsets: OffsetCommit[]) {
      if (consumer === undefined) throw new QoeError(closing ? 'QOE_ERR_BUS_CLOSED' : 'QOE_ERR_INTERNAL', 'consumer is not running');
      try {
        await consumer.commitOffsets(offsets.map((o) => ({ topic: o.topic, partition: o.partition, offset: String(o.offset) })));
      } catch (err) {
        throw busError('commit', err, { groupId: opts.groupId });
      }
    },

    pause(tps) {
      for (const tp of tps) paused.set(key(tp.topic, tp.partition), { topic: tp.topic, partition: tp.partition });
      applyPause(tps, 'pause');
    },

    resume(tps) {
      for (const tp of tps) paused.delete(key(tp.topic, tp.partition));
      applyPause(tps, 'resume');
    },

    async lag() {
      try {
        const admin = await deps.admin();
        const committed = await admin.fetchOffsets({ groupId: opts.groupId, topics: opts.topics });
        const out: Array<TopicPartition & { lag: number }> = [];
        for (const { topic, partitions } of committed) {
          // read_committed: `high` is the last stable offset, like the consumer's view.
          const ends = new Map((await admin.fetchTopicOffsets(topic)).map((o) => [o.partition, o]));
          for (const p of partitions) {
            const end = ends.get(p.partition);
            if (end === undefined) continue;
            const from = Number(p.offset) >= 0 ? Number(p.offset) : Number(end.low);
            out.push({ topic, partition: p.partition, lag: Math.max(0, Number(end.high) - from) });
          }
        }
        return out.sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1));
      } catch (err) {
        throw busError('lag', err, { groupId: opts.groupId });
      }
    },

    async close() {
      if (closing) return;
      closing = true;
      const c = consumer;
      if (c === undefined) return;
      // `closing` stops the batch in progress at its next chunk; then the partitions are revoked.
      await revokeAll().catch(onLifecycleError);
      try {
        await c.disconnect();
      } catch (err) {
        throw busError('consumer.close', err, { groupId: opts.groupId });
      }
    },
  };
}
