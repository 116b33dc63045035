import { kafkajsUnpatched } from './kafkajs-patches.js';
import './kafka-codecs.js';
import type { Admin, SASLOptions } from 'kafkajs';
import { Kafka } from 'kafkajs';
import { QoeError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Bus, BusConsumer, BusProducer, KafkaCompression, KafkaSecurity, TopicSpec } from './types.js';
import { createKafkaConsumer } from './kafka-consumer.js';
import { createKafkaProducer } from './kafka-producer.js';
import { readKafkaPartition } from './kafka-reader.js';
import { busError, pinoLogCreator } from './kafka-shared.js';

/**
 * The Bus on Apache Kafka through kafkajs (the only place kafkajs is imported; see lib/bus/types.ts
 * for the contract). Keys go to partitions by kafkajs's DefaultPartitioner, the Java client's
 * murmur2 — the same as lib/bus/partitioner.ts, so the memory bus and Kafka agree.
 * Errors from kafkajs reach callers as QoeError QOE_ERR_BUS_UNAVAILABLE (retriable) with `cause`.
 */

export interface KafkaBusOptions {
  /** host:port list. */
  brokers: string[];
  clientId: string;
  log: Logger;
  /** For topics whose spec has none. Default: min(3, brokers in the cluster). */
  replicationFactor?: number;
  /** Record batch compression (lib/bus/kafka-codecs.ts). Default 'lz4'. */
  compression?: KafkaCompression;
  /**
   * Largest record batch the producer sends to one partition, in bytes before compression (key +
   * value + 40 per record); larger sends go out as several requests. Default 1000000: under the
   * broker's and topics' default max.message.bytes (1048588). Raise both together.
   */
  maxBatchBytes?: number;
  /** Records queued behind a producer's in-flight request before send() answers QOE_ERR_BUS_FULL. Default 100000. */
  maxQueuedMessages?: number;
  /**
   * Non-transactional send(): longest from the call to the broker's acknowledgement before it
   * rejects (retriable QOE_ERR_BUS_UNAVAILABLE), so ingest answers 503 instead of hanging when a
   * broker stops answering. Default 10000.
   */
  sendTimeoutMs?: number;
  /** Retries of a failing request (exponential backoff from 300 ms) before the call rejects. Default 5. */
  retries?: number;
  /** Default 30000. */
  requestTimeoutMs?: number;
  /** Default 3000. */
  connectionTimeoutMs?: number;
  /** Consumer group session timeout. Default 30000. */
  sessionTimeoutMs?: number;
  /** Default 3000; a rebalance is noticed at the next heartbeat. */
  heartbeatIntervalMs?: number;
  /** Longest a fetch waits for data. Default 1000. */
  maxWaitMs?: number;
  /** Broker-side timeout of an open transaction. Default 60000. */
  transactionTimeoutMs?: number;
  /** TLS and SASL to the brokers. Default: plaintext, no authentication. */
  security?: KafkaSecurity;
}

function saslOptions(s: NonNullable<KafkaSecurity['sasl']>): SASLOptions {
  const { username, password } = s;
  if (s.mechanism === 'plain') return { mechanism: 'plain', username, password };
  if (s.mechanism === 'scram-sha-256') return { mechanism: 'scram-sha-256', username, password };
  return { mechanism: 'scram-sha-512', username, password };
}

export function createKafkaBus(opts: KafkaBusOptions): Bus {
  if (kafkajsUnpatched.length > 0) {
    // Without them kafkajs can lose or double records (kafkajs-patches.ts): better not to start.
    throw new QoeError('QOE_ERR_INTERNAL', `kafkajs was loaded before lib/bus/kafkajs-patches.js, so these kafkajs modules are unpatched: ${kafkajsUnpatched.join(', ')}. Import qoe-stream's Kafka bus (or lib/bus/kafkajs-patches.js) before kafkajs.`, { details: { unpatched: [...kafkajsUnpatched] } });
  }
  const log = opts.log.child({ component: 'bus-kafka' });
  const retries = opts.retries ?? 5;
  const kafka = new Kafka({
    clientId: opts.clientId,
    brokers: opts.brokers,
    connectionTimeout: opts.connectionTimeoutMs ?? 3000,
    requestTimeout: opts.requestTimeoutMs ?? 30_000,
    retry: { retries },
    logCreator: pinoLogCreator(log),
    ...(opts.security?.tls === true ? { ssl: opts.security.caPem === undefined ? true : { ca: [opts.security.caPem] } } : {}),
    ...(opts.security?.sasl === undefined ? {} : { sasl: saslOptions(opts.security.sasl) }),
  });
  const closers = new Set<{ close(): Promise<void> }>();
  let admin: Promise<Admin> | undefined;
  let closed = false;

  function getAdmin(): Promise<Admin> {
    if (closed) return Promise.reject(new QoeError('QOE_ERR_BUS_CLOSED'));
    if (admin === undefined) {
      const a = kafka.admin({ retry: { retries } });
      admin = a.connect().then(() => a);
      admin.catch(() => {
        admin = undefined;
      });
    }
    return admin;
  }

  function track<T extends { close(): Promise<void> }>(x: T): T {
    const close = x.close.bind(x);
    closers.add(x);
    x.close = () => {
      closers.delete(x);
      return close();
    };
    return x;
  }

  /**
   * Creates what is missing and checks what exists. A retriable failure is tried again (up to about
   * 20 s): right after a topic is created, a broker that has not yet received its metadata answers
   * UNKNOWN_TOPIC_OR_PARTITION, which kafkajs's createTopics waitForLeaders does not wait out.
   */
  async function createTopics(specs: TopicSpec[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await createTopicsOnce(specs);
        return;
      } catch (err) {
        const retriable = (err as { cause?: { retriable?: unknown } }).cause?.retriable === true;
        if (!retriable || attempt >= 8) throw err;
        log.warn({ err, attempt }, 'kafka createTopics failed; retrying');
        await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** attempt)));
      }
    }
  }

  async function createTopicsOnce(specs: TopicSpec[]): Promise<void> {
    if (specs.length === 0) return;
    try {
      const a = await getAdmin();
      const existing = new Set(await a.listTopics());
      const missing = specs.filter((s) => !existing.has(s.topic));
      const present = specs.filter((s) => existing.has(s.topic));
      if (missing.length > 0) {
        const defaultRf = opts.replicationFactor ?? Math.min(3, (await a.describeCluster()).brokers.length);
        // false = all already existed (another process won the race): fine, that is idempotence.
        await a.createTopics({
          waitForLeaders: true,
          topics: missing.map((s) => ({
            topic: s.topic,
            numPartitions: s.partitions,
            replicationFactor: s.replicationFactor ?? defaultRf,
            configEntries: Object.entries(s.config ?? {}).map(([name, value]) => ({ name, value })),
          })),
        });
      }
      if (present.length > 0) {
        const { topics } = await a.fetchTopicMetadata({ topics: present.map((s) => s.topic) });
        for (const t of topics) {
          const want = present.find((s) => s.topic === t.name)?.partitions;
          // Never repartitioned here: more partitions would move keys to other partitions.
          if (want !== undefined && t.partitions.length !== want) {
            log.warn({ topic: t.name, partitions: t.partitions.length, want }, 'kafka topic exists with another partition count');
          }
        }
      }
    } catch (err) {
      throw busError('createTopics', err, { topics: specs.map((s) => s.topic) });
    }
  }

  return {
    kind: 'kafka',
    createTopics,
    producer(p?: { transactionalId?: string }): BusProducer {
      if (closed) throw new QoeError('QOE_ERR_BUS_CLOSED');
      return track(
        createKafkaProducer({
          kafka,
          log,
          clientId: opts.clientId,
          compression: opts.compression ?? 'lz4',
          maxBatchBytes: opts.maxBatchBytes ?? 1_000_000,
          maxQueuedMessages: opts.maxQueuedMessages ?? 100_000,
          retries,
          requestTimeoutMs: opts.requestTimeoutMs ?? 30_000,
          transactionTimeoutMs: opts.transactionTimeoutMs ?? 60_000,
          sendTimeoutMs: opts.sendTimeoutMs ?? 10_000,
          ...(p?.transactionalId === undefined ? {} : { transactionalId: p.transactionalId }),
        }),
      );
    },
    readPartition(topic, partition, fromOffset, until) {
      if (closed) return Promise.reject(new QoeError('QOE_ERR_BUS_CLOSED'));
      return readKafkaPartition({ kafka, admin: getAdmin, log, maxWaitMs: opts.maxWaitMs ?? 1000, timeoutMs: 2 * (opts.requestTimeoutMs ?? 30_000) }, topic, partition, fromOffset, until);
    },
    consumer(c): BusConsumer {
      if (closed) throw new QoeError('QOE_ERR_BUS_CLOSED');
      return track(
        createKafkaConsumer(
          {
            kafka,
            admin: getAdmin,
            log,
            sessionTimeoutMs: opts.sessionTimeoutMs ?? 30_000,
            heartbeatIntervalMs: opts.heartbeatIntervalMs ?? 3000,
            maxWaitMs: opts.maxWaitMs ?? 1000,
            retries,
          },
          c,
        ),
      );
    },
    async close() {
      if (closed) return;
      const results = await Promise.allSettled([...closers].map((x) => x.close()));
      closed = true;
      const a = admin;
      admin = undefined;
      await a?.then((x) => x.disconnect()).catch(() => undefined);
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed !== undefined) throw busError('close', failed.reason);
    },
  };
}
