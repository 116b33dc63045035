import { createRequire } from 'node:module';

/**
 * One patch of kafkajs 2.2.4 internals, applied before kafkajs is first loaded (every adapter file
 * imports this module before 'kafkajs').
 *
 * `producer/groupMessagesPerPartition.js` builds each partition's list with `[...current, message]`:
 * O(n²) copies for n records to one partition. The processor sends a transaction's changelog records
 * to one partition and a window's metrics rows under one key, so thousands of records per send are
 * normal: in a profile of bench/kafka.ts (b) this function and its garbage were the largest kafkajs
 * cost. The replacement returns the same object (partition → messages in input order) in O(n).
 * `sendMessages.js` takes the function at its own load time, so the module cache entry is filled
 * before kafkajs is required; `kafkajsPatched` says whether that was in time (false if something in
 * the process loaded kafkajs first — behaviour is the same, only slower).
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

const require = createRequire(import.meta.url);

function patch(): boolean {
  const target = require.resolve('kafkajs/src/producer/groupMessagesPerPartition.js');
  const user = require.resolve('kafkajs/src/producer/sendMessages.js');
  const cache = require.cache;
  if (cache[user] !== undefined) return cache[target]?.exports === groupMessagesPerPartition;
  const Module = require('node:module') as { new (id: string): NodeJS.Module };
  const m = new Module(target);
  m.filename = target;
  m.loaded = true;
  m.exports = groupMessagesPerPartition;
  cache[target] = m;
  return true;
}

export const kafkajsPatched: boolean = patch();
