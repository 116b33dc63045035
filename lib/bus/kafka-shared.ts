import { fetchedKeyText, fetchedOffset, fetchedTimestamp, readFetchedValue } from './kafkajs-patches.js';
import type { KafkaMessage, LogEntry, logCreator } from 'kafkajs';
import { logLevel } from 'kafkajs';
import { QoeError, isQoeError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { BusMessage, BusRecord, TopicMessages, TopicPartition } from './types.js';

/** Pieces shared by the kafkajs adapter's files (kafka.ts, kafka-producer.ts, kafka-consumer.ts). */

const NO_VALUE = Buffer.alloc(0);

/**
 * A record kafkajs fetched, as the bus hands it out: the offset and timestamp as numbers, the key's
 * text and the value's Buffer, each read from the fetched record when asked for (the processor reads
 * a beacon's key only to dead-letter it). A fetch's records are all held until the fetch is processed
 * (tens of thousands for the processor), so every field held here is copied by each garbage
 * collection meanwhile, then promoted: this holds the fetched record and where it came from, no more
 * (a timestamp held as a number was a heap number of its own per record). The fields other than
 * topic and partition are getters: a spread (`{ ...r }`) does not copy them.
 */
class FetchedBusRecord implements BusRecord {
  constructor(readonly topic: string, readonly partition: number, private readonly message: KafkaMessage) {}

  get offset(): number {
    return fetchedOffset(this.message);
  }

  get timestampMs(): number {
    return fetchedTimestamp(this.message);
  }

  /** The key's text, new at each read. */
  get key(): string {
    return fetchedKeyText(this.message);
  }

  /** A view of the fetched bytes, new at each read (read it once where it matters). */
  get value(): Buffer {
    return this.message.value ?? NO_VALUE;
  }

  readValue<T>(read: (bytes: Buffer, start: number, end: number) => T): T {
    return readFetchedValue(this.message, read);
  }
}

export function toBusRecord(topic: string, partition: number, m: KafkaMessage): BusRecord {
  return new FetchedBusRecord(topic, partition, m);
}

/**
 * A kafkajs error (or any failure) as the bus error: QOE_ERR_BUS_UNAVAILABLE, retriable, with the
 * original as `cause` and kafkajs's own error name/type/retriable flag in `details`.
 */
export function busError(op: string, err: unknown, details: Record<string, unknown> = {}): QoeError {
  if (isQoeError(err)) return err;
  const e = err as { name?: unknown; type?: unknown; retriable?: unknown; message?: unknown } | undefined;
  const message = typeof e?.message === 'string' ? e.message : String(err);
  return new QoeError('QOE_ERR_BUS_UNAVAILABLE', `kafka ${op} failed: ${message}`, {
    cause: err,
    details: { op, kafkaError: e?.name, kafkaType: e?.type, kafkaRetriable: e?.retriable, ...details },
  });
}

/**
 * kafkajs logs into pino. Its "[Connection] Response <Api> … error" lines are logged at ERROR for
 * every error response, including the retriable ones it retries by itself (coordinator loading,
 * concurrent transactions, leader moved): those go to debug; a failure that survives the retries
 * reaches the caller as a thrown error instead. INFO is chatty (joins, connects): debug too.
 */
export function pinoLogCreator(log: Logger): logCreator {
  return () =>
    function logKafkajs(entry: LogEntry): void {
      const { message, timestamp: _t, ...extra } = entry.log;
      const fields = { ...extra, ns: entry.namespace };
      const text = `kafkajs: ${message}`;
      if (entry.level === logLevel.ERROR && !message.startsWith('Response ')) log.error(fields, text);
      else if (entry.level === logLevel.WARN && !message.startsWith('Limiting retries')) log.warn(fields, text);
      else log.debug(fields, text);
    };
}

/** A promise queue: each task starts after the previous one settled. */
export function createSerial(): <T>(task: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return function serial<T>(task: () => Promise<T>): Promise<T> {
    const next = tail.then(task, task);
    tail = next.catch(() => undefined);
    return next;
  };
}

export interface KafkaMessageOut {
  key: string;
  value: Buffer;
  timestamp?: string;
  partition?: number;
}

/** kafkajs's message for `m`: `m` itself unless it carries a timestamp (kafkajs only reads a message). */
export function toKafkaMessage(m: BusMessage): KafkaMessageOut {
  if (m.timestampMs === undefined) return m;
  const out: KafkaMessageOut = { key: m.key, value: m.value, timestamp: String(m.timestampMs) };
  if (m.partition !== undefined) out.partition = m.partition;
  return out;
}

/**
 * One entry per topic, messages in the order given (kafkajs keeps per-partition order within it).
 * A topic given once, without timestamps, keeps the caller's array (a transaction's changelog is
 * tens of thousands of records: copied one push at a time, ~1 % of the processor's CPU); the
 * arrays are only read from here on, and a topic given twice gets a new one.
 */
export function mergeByTopic(batches: TopicMessages[]): Array<{ topic: string; messages: KafkaMessageOut[] }> {
  const byTopic = new Map<string, KafkaMessageOut[]>();
  for (const b of batches) {
    const messages = b.messages.some((m) => m.timestampMs !== undefined) ? b.messages.map(toKafkaMessage) : (b.messages as KafkaMessageOut[]);
    const list = byTopic.get(b.topic);
    byTopic.set(b.topic, list === undefined ? messages : list.concat(messages));
  }
  return [...byTopic].map(([topic, messages]) => ({ topic, messages }));
}

/** What a record adds to a record batch besides its key and value (length, attributes, deltas as varints; no headers). */
export const RECORD_OVERHEAD_BYTES = 40;

/** What a record counts against a record batch's bound (key + value + RECORD_OVERHEAD_BYTES). */
export const messageBytes = (key: string, value: Buffer): number => Buffer.byteLength(key) + value.length + RECORD_OVERHEAD_BYTES;

const recordBytes = (m: KafkaMessageOut): number => messageBytes(m.key, m.value);

/**
 * `topicMessages` as successive requests in which no partition's record batch holds more than
 * `maxBatchBytes` (key + value + RECORD_OVERHEAD_BYTES per record, before compression), unless it is
 * a single record. kafkajs puts all of a partition's records of one send into one record batch, and
 * the broker refuses a batch over `max.message.bytes` (default 1 MiB) with MESSAGE_TOO_LARGE — for a
 * transaction of the processor, whose changelog records all go to one partition, on every retry.
 * Sent one after another, the requests keep each topic's order: a message is never in an earlier
 * request than one before it in the same topic. Messages without an explicit partition may all land
 * on any one partition, so they count against every partition of their topic.
 */
export function splitIntoRequests(topicMessages: OutMessages, maxBatchBytes: number): OutMessages[] {
  const requests: OutMessages[] = [];
  for (const { topic, messages } of topicMessages) {
    let request = 0;
    let bytes = new Map<number | undefined, number>();
    let unpinned = 0;
    let largest = 0;
    // A request's share of a topic is a run of its messages: taken as a slice when the next begins.
    let start = 0;
    const endRequest = (end: number): void => void (requests[request] ??= []).push({ topic, messages: start === 0 && end === messages.length ? messages : messages.slice(start, end) });
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i] as KafkaMessageOut;
      const size = recordBytes(m);
      const inBatch = m.partition === undefined ? unpinned + largest : unpinned + (bytes.get(m.partition) ?? 0);
      if (inBatch > 0 && inBatch + size > maxBatchBytes) {
        endRequest(i);
        request += 1;
        start = i;
        bytes = new Map();
        unpinned = largest = 0;
      }
      if (m.partition === undefined) unpinned += size;
      else {
        const b = (bytes.get(m.partition) ?? 0) + size;
        bytes.set(m.partition, b);
        largest = Math.max(largest, b);
      }
    }
    if (messages.length > 0) endRequest(messages.length);
  }
  return requests;
}

type OutMessages = ReturnType<typeof mergeByTopic>;

export function groupPartitions<T extends TopicPartition>(items: T[]): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const it of items) {
    let list = out.get(it.topic);
    if (list === undefined) out.set(it.topic, (list = []));
    list.push(it);
  }
  return out;
}
