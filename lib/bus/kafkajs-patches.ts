import { createRequire } from 'node:module';

/**
 * Two patches of kafkajs 2.2.4 internals, applied before kafkajs is first loaded (every adapter file
 * imports this module before 'kafkajs'). Each replaces a module that another kafkajs module takes at
 * its own load time, so the module cache entry is filled before kafkajs is required; `kafkajsPatched`
 * says whether that was in time (false if something in the process loaded kafkajs first).
 *
 * 1. `producer/groupMessagesPerPartition.js` builds each partition's list with `[...current, message]`:
 *    O(n²) copies for n records to one partition. The processor sends a transaction's changelog
 *    records to one partition and a window's metrics rows under one key, so thousands of records per
 *    send are normal: in a profile of bench/kafka.ts (b) this function and its garbage were the
 *    largest kafkajs cost. The replacement returns the same object (partition → messages in input
 *    order) in O(n).
 * 2. `consumer/filterAbortedMessages.js` (read_committed) assumes the fetch response lists aborted
 *    transactions in first-offset order and starts skipping at most one of them per record. Brokers
 *    list them in abort order (the Java client sorts them: "the entries in the abort index are sorted
 *    by abort order, but not necessarily first offset order", apache/kafka PR review of KIP-98). When
 *    a killed processor's partition producers each leave a transaction open on a metrics partition
 *    and the next owner aborts them in another order than they began, kafkajs handed the leading
 *    records of the earlier one to the sink as if committed: doubled rows after a kill -9. The
 *    replacement does what the Java client does: aborted transactions by first offset, every one that
 *    has begun at a record is skipped until its producer's abort marker.
 */

type Partitioner = (args: { topic: string; partitionMetadata: unknown[]; message: unknown }) => number;

export function groupMessagesPerPartition(args: {
  topic: string; partitionMetadata: unknown[]; messages: unknown[]; partitioner: Partitioner;
}): Record<number, unknown[]> {
  const { topic, partitionMetadata, messages, partitioner } = args;
  const result: Record<number, unknown[]> = {};
  if (partitionMetadata.length === 0) return result;
  for (const message of messages) {
    const partition = partitioner({ topic, partitionMetadata, message });
    (result[partition] ??= []).push(message);
  }
  return result;
}

interface FetchedMessage {
  offset: string;
  key: Buffer | null;
  isControlRecord?: boolean;
  /** Absent on legacy (pre-0.11) message sets, which have no transactions. */
  batchContext?: { producerId: string; inTransaction: boolean };
}

/** The key of an ABORT control record: version 0, type 0. */
const ABORT_MARKER_KEY = Buffer.from([0, 0, 0, 0]);

export function filterAbortedMessages(args: {
  messages: FetchedMessage[]; abortedTransactions?: Array<{ producerId: string; firstOffset: string }>;
}): FetchedMessage[] {
  const { messages, abortedTransactions } = args;
  if (!abortedTransactions || abortedTransactions.length === 0) return messages;
  const pending = abortedTransactions
    .map((t) => ({ producerId: String(t.producerId), firstOffset: BigInt(t.firstOffset) }))
    .sort((a, b) => (a.firstOffset < b.firstOffset ? -1 : a.firstOffset > b.firstOffset ? 1 : 0));
  const aborting = new Set<string>();
  let next = 0;
  return messages.filter((m) => {
    const offset = BigInt(m.offset);
    for (let t = pending[next]; t !== undefined && t.firstOffset <= offset; t = pending[++next]) aborting.add(t.producerId);
    if (m.batchContext === undefined) return true;
    const producerId = String(m.batchContext.producerId);
    if (m.isControlRecord === true) {
      if (m.key !== null && Buffer.from(m.key).equals(ABORT_MARKER_KEY)) aborting.delete(producerId);
      return true;
    }
    return !(m.batchContext.inTransaction && aborting.has(producerId));
  });
}

const require = createRequire(import.meta.url);

function patchModule(target: string, user: string, replacement: unknown): boolean {
  const targetPath = require.resolve(target);
  const cache = require.cache;
  if (cache[require.resolve(user)] !== undefined) return cache[targetPath]?.exports === replacement;
  const Module = require('node:module') as { new (id: string): NodeJS.Module };
  const m = new Module(targetPath);
  m.filename = targetPath;
  m.loaded = true;
  m.exports = replacement;
  cache[targetPath] = m;
  return true;
}

export const kafkajsPatched: boolean =
  patchModule('kafkajs/src/producer/groupMessagesPerPartition.js', 'kafkajs/src/producer/sendMessages.js', groupMessagesPerPartition) &&
  patchModule('kafkajs/src/consumer/filterAbortedMessages.js', 'kafkajs/src/consumer/batch.js', filterAbortedMessages);
