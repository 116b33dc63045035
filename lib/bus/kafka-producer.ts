import './kafkajs-patches.js';
import { randomUUID } from 'node:crypto';
import type { ICustomPartitioner, Kafka, Producer, RecordMetadata, Transaction } from 'kafkajs';
import { Partitioners } from 'kafkajs';
import type { CompressionTypes } from 'kafkajs';
import { compressionType } from './kafka-codecs.js';
import { QoeError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { BusMessage, BusProducer, KafkaCompression, OffsetCommit, TopicMessages } from './types.js';
import { busError, createSerial, groupPartitions, mergeByTopic, messageBytes, splitIntoRequests } from './kafka-shared.js';

export interface KafkaProducerDeps {
  kafka: Kafka;
  log: Logger;
  clientId: string;
  compression: KafkaCompression;
  /**
   * Largest record batch per partition (bytes before compression, see splitIntoRequests); more goes
   * in further requests. Also how much of the queue one plain request takes (takeWithin).
   */
  maxBatchBytes: number;
  /** Records waiting behind the in-flight request; beyond it send() rejects with QOE_ERR_BUS_FULL. */
  maxQueuedMessages: number;
  /** Retries of one request before the send rejects. */
  retries: number;
  requestTimeoutMs: number;
  transactionTimeoutMs: number;
  /**
   * Non-transactional send(): longest from the call to the broker's acknowledgement before it
   * rejects with retriable QOE_ERR_BUS_UNAVAILABLE. Undefined = no deadline.
   */
  sendTimeoutMs?: number;
  transactionalId?: string;
}

interface Waiter {
  topic: string;
  messages: BusMessage[];
  /** recordBytes of its messages (see splitIntoRequests). */
  bytes: number;
  resolve(): void;
  reject(err: unknown): void;
  timer?: NodeJS.Timeout;
}

/**
 * A BusProducer on kafkajs: acks=all, idempotent, one request in flight with everything that
 * queued up behind it sent as the next batch (batching without a linger timer).
 *
 * Why one in flight: kafkajs reserves idempotence sequence numbers before a request and gives them
 * back when it fails. If a failed request was in fact written, the next batch reuses its numbers and
 * the broker drops it as a duplicate — silent loss. So after any failed send the kafkajs producer is
 * thrown away and the next send starts a new one (new producer id); and requests never overlap.
 *
 * Deadline (`sendTimeoutMs`, plain producers only; Java's delivery.timeout.ms): a broker that stops
 * answering without closing its connections (frozen, partitioned) keeps a kafkajs request pending
 * for requestTimeout × retries — minutes — and every send queued behind it would wait as long (ingest
 * requests hanging). A send still queued at its deadline is taken out of the queue and rejected (it
 * was never sent: a clean refusal); one in flight at its deadline is rejected while its request
 * goes on, so it may still be written (a client retrying it makes a duplicate, which the processor
 * drops by (sessionId, seq)).
 *
 * Every partition written, or an error (`sendAllPartitions`): kafkajs 2.2.4's sendBatch, when a
 * leader dies mid-send, could resolve without re-sending the dead leader's partitions (lost
 * 202-answered beacons) and could send a live broker's partitions a second time under new sequence
 * numbers (doubled ones). Its sendMessages is replaced (kafkajs-send.ts, which explains both); as a
 * second line, partitions are pinned on the first attempt (`pinningPartitioner`), every response is
 * checked against the partitions sent, and a send with a partition missing fails like any other
 * failed send (producer replaced; ingest answers 503, a transaction is aborted and retried).
 *
 * Large sends: sends queued behind the in-flight request go out together up to `maxBatchBytes`
 * (`takeWithin`; the rest wait for the next request), so a plain request stays one request. A single
 * send or transaction whose records for one partition exceed `maxBatchBytes` goes out as several
 * requests, one after another (`splitIntoRequests`), so no record batch passes the broker's
 * max.message.bytes. Within a transaction they commit or abort together; a plain send that fails
 * part way fails whole to its caller (retried, the records already written are duplicates, which the
 * processor drops by (sessionId, seq) as for any retry).
 *
 * Transactions (`sendWithOffsets`, and `send` on a transactional producer, which kafkajs requires to
 * go through a transaction) run one at a time; on error the transaction is aborted and the producer
 * replaced for the same reason (InitProducerId with the same transactional id also fences and
 * aborts whatever the old one left open).
 */
export function createKafkaProducer(deps: KafkaProducerDeps): BusProducer {
  const compression = compressionType(deps.compression);
  const sendOpts = { compression, timeout: deps.requestTimeoutMs, maxBatchBytes: deps.maxBatchBytes };
  let plain: Promise<Producer> | undefined;
  let transactional: Promise<Producer> | undefined;
  let txId = deps.transactionalId;
  let closed = false;
  const queue: Waiter[] = [];
  let queued = 0;
  let inFlight = false;
  const serialTx = createSerial();
  let onIdle: Array<() => void> = [];

  function connect(transactionalId?: string): Promise<Producer> {
    const p = deps.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      createPartitioner: pinningPartitioner,
      // kafkajs waits 300 ms before its first retry by default; the common retriable answer to a
      // transactional producer is CONCURRENT_TRANSACTIONS right after its previous commit (markers
      // still being written), gone within tens of ms (the Java client retries it after 20 ms). Three
      // more retries keep the total patience (broker restart, leader move) at about the default's.
      retry: { retries: deps.retries + 3, initialRetryTime: 50 },
      ...(transactionalId === undefined ? {} : { transactionalId, transactionTimeout: deps.transactionTimeoutMs }),
    });
    return p.connect().then(
      () => p,
      (err: unknown) => {
        void p.disconnect().catch(() => undefined);
        throw err;
      },
    );
  }

  function discard(which: 'plain' | 'tx'): void {
    const p = which === 'plain' ? plain : transactional;
    if (which === 'plain') plain = undefined;
    else transactional = undefined;
    void p?.then((x) => x.disconnect()).catch(() => undefined);
  }

  async function flush(batch: Waiter[]): Promise<void> {
    const topicMessages = mergeByTopic(batch);
    if (txId !== undefined) {
      await runTransaction(topicMessages, undefined);
      return;
    }
    try {
      plain ??= connect();
      const producer = await plain;
      await sendAllPartitions(producer, topicMessages, sendOpts);
    } catch (err) {
      if (err instanceof PartitionsNotAcknowledged) deps.log.warn({ err }, 'kafka send refused: a partition went unacknowledged');
      discard('plain');
      throw busError('send', err, { topics: topicMessages.map((t) => t.topic) });
    }
  }

  function settle(w: Waiter, err?: unknown): void {
    if (w.timer !== undefined) clearTimeout(w.timer);
    w.timer = undefined;
    if (err === undefined) w.resolve();
    else w.reject(err);
  }

  function expire(w: Waiter): void {
    w.timer = undefined;
    const i = queue.indexOf(w);
    const sent = i === -1;
    if (!sent) {
      queue.splice(i, 1);
      queued -= w.messages.length;
    }
    const what = sent ? 'not acknowledged' : 'not sent';
    w.reject(new QoeError('QOE_ERR_BUS_UNAVAILABLE', `kafka send ${what} within ${deps.sendTimeoutMs} ms`, { details: { op: 'send', topic: w.topic, sent } }));
    w.resolve = w.reject = () => undefined;
  }

  function pump(): void {
    if (inFlight || queue.length === 0) return;
    inFlight = true;
    const batch = queue.splice(0, takeWithin(queue.map((w) => w.bytes), deps.maxBatchBytes));
    for (const w of batch) queued -= w.messages.length;
    flush(batch)
      .then(
        () => batch.forEach((w) => settle(w)),
        (err: unknown) => batch.forEach((w) => settle(w, err)),
      )
      .finally(() => {
        inFlight = false;
        pump();
        if (!inFlight) {
          const waiting = onIdle;
          onIdle = [];
          waiting.forEach((f) => f());
        }
      });
  }

  async function runTransaction(
    topicMessages: ReturnType<typeof mergeByTopic>,
    offsets: { groupId: string; offsets: OffsetCommit[] } | undefined,
  ): Promise<void> {
    return serialTx(async function transactionStep() {
      let producer: Producer;
      try {
        txId ??= `${deps.clientId}-tx-${randomUUID()}`;
        transactional ??= connect(txId);
        producer = await transactional;
      } catch (err) {
        discard('tx');
        throw busError('transaction', err);
      }
      const tx = await producer.transaction().catch((err: unknown) => {
        discard('tx');
        throw busError('transaction', err);
      });
      try {
        if (topicMessages.length > 0) {
          await sendAllPartitions(tx, topicMessages, sendOpts);
        }
        if (offsets !== undefined && offsets.offsets.length > 0) {
          const topics = [...groupPartitions(offsets.offsets)].map(([topic, list]) => ({
            topic,
            partitions: list.map((o) => ({ partition: o.partition, offset: String(o.offset) })),
          }));
          await tx.sendOffsets({ consumerGroupId: offsets.groupId, topics });
        }
        await tx.commit();
      } catch (err) {
        await tx.abort().catch((abortErr: unknown) => {
          deps.log.warn({ err: abortErr }, 'kafka transaction abort failed; replacing the producer');
        });
        // Replaced even after a clean abort: kafkajs gave back the sequence numbers of the whole
        // failed request, also of partitions the broker had appended to; reusing them would make
        // the broker drop the next transaction's records there as duplicates (seen on Kafka 4.4).
        // A new producer (InitProducerId, same transactional id) bumps the epoch and resets them.
        discard('tx');
        throw busError('transaction', err, { groupId: offsets?.groupId });
      }
    });
  }

  return {
    send(topic, messages) {
      if (closed) return Promise.reject(new QoeError('QOE_ERR_BUS_CLOSED'));
      if (messages.length === 0) return Promise.resolve();
      if (queue.length > 0 && queued + messages.length > deps.maxQueuedMessages) {
        return Promise.reject(new QoeError('QOE_ERR_BUS_FULL', 'kafka producer queue is at its bound', { details: { topic, queued } }));
      }
      return new Promise<void>((resolve, reject) => {
        const w: Waiter = { topic, messages, bytes: messages.reduce((n, m) => n + messageBytes(m.key, m.value), 0), resolve, reject };
        if (deps.sendTimeoutMs !== undefined && txId === undefined) w.timer = setTimeout(expire, deps.sendTimeoutMs, w);
        queue.push(w);
        queued += messages.length;
        pump();
      });
    },
    sendWithOffsets(batches: TopicMessages[], groupId: string, offsets: OffsetCommit[]) {
      if (closed) return Promise.reject(new QoeError('QOE_ERR_BUS_CLOSED'));
      return runTransaction(mergeByTopic(batches), { groupId, offsets });
    },
    async close() {
      if (closed) return;
      closed = true;
      // Let queued sends and the running transaction finish; they were accepted before close.
      if (inFlight) await new Promise<void>((resolve) => onIdle.push(resolve));
      await serialTx(async () => undefined);
      const all = [plain, transactional];
      plain = transactional = undefined;
      await Promise.all(all.map((p) => p?.then((x) => x.disconnect()).catch(() => undefined)));
    },
  };
}

type OutMessages = ReturnType<typeof mergeByTopic>;

/**
 * How many of the queued sends (their sizes in order) the next request takes: as many as fit in
 * `maxBytes` together, at least one.
 */
export function takeWithin(sizes: readonly number[], maxBytes: number): number {
  let bytes = 0;
  let n = 0;
  for (const size of sizes) {
    if (n > 0 && bytes + size > maxBytes) break;
    bytes += size;
    n += 1;
  }
  return n;
}

/**
 * Kafka's murmur2 (the Java client's `Utils.murmur2`, which kafkajs's DefaultPartitioner ports) in
 * 32-bit integer arithmetic, as Java computes it. kafkajs's port computes it with 64-bit Long
 * objects (several BigInts per 4 key bytes) and keeps the low 32 bits: the same value, tested
 * against it.
 */
export function murmur2(key: Buffer | string): number {
  const data = typeof key === 'string' ? Buffer.from(key) : key;
  const length = data.length;
  const m = 0x5bd1e995;
  let h = 0x9747b28c ^ length;
  const length4 = length & ~3;
  for (let i = 0; i < length4; i += 4) {
    let k = (data[i] as number) | ((data[i + 1] as number) << 8) | ((data[i + 2] as number) << 16) | ((data[i + 3] as number) << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
  }
  const rest = length & 3;
  if (rest === 3) h ^= (data[length4 + 2] as number) << 16;
  if (rest >= 2) h ^= (data[length4 + 1] as number) << 8;
  if (rest >= 1) h = Math.imul(h ^ (data[length4] as number), m);
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

/**
 * kafkajs's DefaultPartitioner (murmur2 of the key, as the Java client), writing the partition it
 * chose into the message, so a re-send goes to the same partition and the caller knows which
 * partitions a batch touched.
 */
export const pinningPartitioner: ICustomPartitioner = () => {
  const base = Partitioners.DefaultPartitioner();
  return (args) => {
    // As the base does, but without its per-message filter of the partition list (the changelog's
    // records all name their partition), and with murmur2 above for a keyed record (window rows).
    const message = args.message as { partition?: number | null; key?: Buffer | string | null };
    const pinned = message.partition;
    if (typeof pinned === 'number') return pinned;
    if ((typeof message.key === 'string' || Buffer.isBuffer(message.key)) && args.partitionMetadata.length > 0) {
      const partition = (murmur2(message.key) & 0x7fffffff) % args.partitionMetadata.length;
      message.partition = partition;
      return partition;
    }
    const partition = base(args);
    message.partition = partition;
    return partition;
  };
};

/** The topic/partition pairs of `topicMessages` that `answered` does not acknowledge. */
export function unacknowledged(topicMessages: OutMessages, answered: RecordMetadata[]): OutMessages {
  // Partition numbers per topic: a string per message to look up was a cost of every changelog record.
  const ok = new Map<string, Set<number>>();
  for (const r of answered) {
    if (r.errorCode !== 0) continue;
    let parts = ok.get(r.topicName);
    if (parts === undefined) ok.set(r.topicName, (parts = new Set()));
    parts.add(r.partition);
  }
  const out: OutMessages = [];
  for (const { topic, messages } of topicMessages) {
    const acked = ok.get(topic);
    const missing = messages.filter((m) => m.partition === undefined || acked?.has(m.partition) !== true);
    if (missing.length > 0) out.push({ topic, messages: missing });
  }
  return out;
}

/**
 * sendBatch per request of `splitIntoRequests`, each followed by an error unless every partition it
 * sent to was acknowledged (see the header). Not re-sent here: the caller's failure path (a new
 * producer, a 503 to the client, or an aborted transaction retried whole) is the one that is known
 * to keep acknowledged records exactly once.
 */
async function sendAllPartitions(
  sender: Pick<Producer | Transaction, 'sendBatch'>,
  topicMessages: OutMessages,
  opts: { compression: CompressionTypes; timeout: number; maxBatchBytes: number },
): Promise<void> {
  for (const request of splitIntoRequests(topicMessages, opts.maxBatchBytes)) {
    const answered = await sender.sendBatch({ topicMessages: request, acks: -1, compression: opts.compression, timeout: opts.timeout });
    const missing = unacknowledged(request, answered);
    if (missing.length > 0) throw notAcknowledged(missing);
  }
}

function notAcknowledged(missing: OutMessages): PartitionsNotAcknowledged {
  const where = missing.map((t) => `${t.topic}[${[...new Set(t.messages.map((m) => m.partition))].join(',')}]`).join(' ');
  return new PartitionsNotAcknowledged(`kafkajs resolved a send without acknowledging partitions ${where} (leader moved during the send)`);
}

class PartitionsNotAcknowledged extends Error {
  override name = 'PartitionsNotAcknowledged';
}
