import { randomUUID } from 'node:crypto';
import type { Admin, Kafka } from 'kafkajs';
import { QoeError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { BusRecord } from './types.js';
import { busError, toBusRecord } from './kafka-shared.js';

export interface KafkaReaderDeps {
  kafka: Kafka;
  admin: () => Promise<Admin>;
  log: Logger;
  maxWaitMs: number;
  /** Longest a read may take before it rejects. */
  timeoutMs: number;
}

/**
 * Bus.readPartition on kafkajs. kafkajs has no group-less consumer (no assign()), so a throwaway
 * consumer group subscribes to the topic, seeks the wanted partition to `fromOffset`, pauses the
 * others and reads read_committed until `until` matches or the end offset taken at the start is
 * reached; then it leaves and the group is deleted (best effort).
 * kafkajs does not hand over batches that hold only transaction markers, so a partition whose tail
 * is markers is never "reached": callers restoring a transactional changelog write a barrier record
 * first and pass `until` (the end offset is then only a fallback).
 */
export async function readKafkaPartition(
  deps: KafkaReaderDeps,
  topic: string,
  partition: number,
  fromOffset: number,
  until?: (r: BusRecord) => boolean,
): Promise<BusRecord[]> {
  let endOffset: number;
  try {
    const admin = await deps.admin();
    const ends = await admin.fetchTopicOffsets(topic);
    endOffset = Number(ends.find((o) => o.partition === partition)?.high ?? 0);
  } catch (err) {
    throw busError('readPartition', err, { topic, partition });
  }
  if (until === undefined && endOffset <= fromOffset) return [];
  const groupId = `qoe-reader-${randomUUID()}`;
  const consumer = deps.kafka.consumer({
    groupId,
    readUncommitted: false,
    allowAutoTopicCreation: false,
    maxWaitTimeInMs: deps.maxWaitMs,
    sessionTimeout: 10_000,
    heartbeatInterval: 1000,
  });
  const records: BusRecord[] = [];
  let next = fromOffset;
  let finish: (err?: unknown) => void = () => undefined;
  const done = new Promise<void>((resolve, reject) => {
    finish = (err?: unknown) => (err === undefined ? resolve() : reject(err));
  });
  const timer = setTimeout(() => finish(new QoeError('QOE_ERR_BUS_UNAVAILABLE', `kafka readPartition ${topic}/${partition} timed out`)), deps.timeoutMs);
  let finished = false;
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        if (finished || batch.partition !== partition) return;
        for (const m of batch.messages) {
          const r = toBusRecord(topic, partition, m);
          const offset = r.offset;
          if (offset < next) continue;
          next = offset + 1;
          records.push(r);
          if ((until !== undefined && until(r)) || (until === undefined && offset >= endOffset - 1)) {
            finished = true;
            finish();
            return;
          }
        }
      },
    });
    consumer.seek({ topic, partition, offset: String(fromOffset) });
    const { partitions } = (await (await deps.admin()).fetchTopicMetadata({ topics: [topic] })).topics[0] ?? { partitions: [] };
    const others = partitions.map((p) => p.partitionId).filter((p) => p !== partition);
    if (others.length > 0) consumer.pause([{ topic, partitions: others }]);
    await done;
    return records;
  } catch (err) {
    throw busError('readPartition', err, { topic, partition });
  } finally {
    finished = true;
    clearTimeout(timer);
    await consumer.disconnect().catch(() => undefined);
    await deps.admin().then((a) => a.deleteGroups([groupId])).catch((err: unknown) => deps.log.debug({ err, groupId }, 'reader group not deleted'));
  }
}
