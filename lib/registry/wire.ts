import avro from 'avsc';
import { isQoeError, QoeError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Bus, BusConsumer, BusMessage, BusProducer, BusRecord, ConsumerBatch, TopicMessages } from '../bus/types.js';
import {
  confluentSchemaId, confluentToSingleObject, fingerprintOf, framingOf, singleObjectToConfluent, type AvroCodec,
} from '../../schemas/framing.js';
import type { SchemaRegistryClient } from './client.js';

/**
 * Confluent framing on the bus when a schema registry is configured (docs/architecture.md "Wire
 * format"). Codecs keep writing and reading Avro single-object encoding; this layer sits between
 * them and the bus and swaps headers, the Avro body untouched:
 * - at start, each Avro topic's current value schema is registered under `<topic>-value`
 *   (Confluent's TopicNameStrategy), retrying with backoff while the registry is unreachable; no
 *   record is written before every topic has its id, and a record whose schema has no id is refused;
 * - producers: `C3 01 <fingerprint>` → `00 <schema id>`;
 * - consumers: before a batch is handed over, ids not seen yet are looked up (GET /schemas/ids/{id})
 *   and their schemas taught to the topic's codec (Avro resolution into the current schema), then
 *   `00 <id>` → `C3 01 <fingerprint of that schema>`. Single-object records pass as they are, so a
 *   topic can move from one framing to the other with records of both on it.
 * A record whose id the registry does not know keeps its Confluent header: the codec refuses it
 * (QOE_ERR_SCHEMA_UNKNOWN_WRITER) and the caller dead-letters it. An unreachable registry fails the
 * batch (QOE_ERR_SCHEMA_REGISTRY_UNAVAILABLE, retriable): the bus redelivers it.
 * Without a registry none of this is in the path: the default framing costs nothing extra.
 */

/** What the wire layer needs of a topic's codec (schemas/framing.ts). */
export type TopicSchema = Pick<AvroCodec<unknown>, 'type' | 'fingerprint' | 'reads' | 'addWriter'>;

export interface ConfluentFraming {
  readonly displayUrl: string;
  /** Per Avro topic, the schema id its records are written with. */
  readonly writerIds: ReadonlyMap<string, number>;
  /** Single-object → Confluent for `topic`'s records; other topics' values pass unchanged. */
  frame(topic: string, value: Buffer): Buffer;
  /** Learns the schemas of the Confluent ids among `values` that `topic`'s codec cannot read yet. */
  resolve(topic: string, values: readonly Buffer[]): Promise<void>;
  /** Confluent → single-object when the id is known; anything else unchanged. */
  unframe(topic: string, value: Buffer): Buffer;
}

export interface ConfluentFramingOptions {
  client: SchemaRegistryClient;
  /** Avro topics and the codec of each one's values. */
  topics: Readonly<Record<string, TopicSchema>>;
  log: Logger;
  /** How long start-up keeps retrying an unreachable registry. Default 60 000. */
  startupTimeoutMs?: number;
  /** How long a consumer batch retries an unreachable registry before it fails (and is redelivered). Default 10 000. */
  lookupTimeoutMs?: number;
}

/** Ids → schemas cached per registry; a cache, so the oldest entry goes at the bound. */
const MAX_CACHED_IDS = 1024;
const MAX_BACKOFF_MS = 5000;

interface Known {
  fp: Buffer;
  fpHex: string;
  type: avro.Type;
}

/** The schema as registered: full JSON (defaults, docs, aliases), not the canonical form, so other readers can resolve it. */
export function registeredSchemaText(type: avro.Type): string {
  return JSON.stringify(type.schema({ exportAttrs: true }));
}

export const subjectOf = (topic: string): string => `${topic}-value`;

async function retrying<T>(what: string, fn: () => Promise<T>, timeoutMs: number, displayUrl: string, log: Logger): Promise<T> {
  const t0 = Date.now();
  let delayMs = 100;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!isQoeError(err, 'QOE_ERR_SCHEMA_REGISTRY_UNAVAILABLE')) throw err;
      if (Date.now() + delayMs - t0 > timeoutMs) {
        throw new QoeError('QOE_ERR_SCHEMA_REGISTRY_UNAVAILABLE',
          `schema registry ${displayUrl} unreachable: ${what} failed ${attempt} times in ${Date.now() - t0} ms (last: ${err.message})`, { cause: err });
      }
      log.warn({ err, attempt, retryInMs: delayMs }, 'schema registry unreachable, retrying');
      await new Promise((r) => setTimeout(r, delayMs));
      delayMs = Math.min(delayMs * 2, MAX_BACKOFF_MS);
    }
  }
}

/** Registers every topic's schema (start-up), then serves framing for them. */
export async function createConfluentFraming(opts: ConfluentFramingOptions): Promise<ConfluentFraming> {
  const { client, topics, log } = opts;
  const writers = new Map<string, { id: number; fp: Buffer }>();
  const known = new Map<number, Known>();
  const remember = (id: number, k: Known): void => {
    if (known.size >= MAX_CACHED_IDS) known.delete(known.keys().next().value as number);
    known.set(id, k);
  };

  for (const [topic, codec] of Object.entries(topics)) {
    const id = await retrying(`registering ${subjectOf(topic)}`, () => client.register(subjectOf(topic), registeredSchemaText(codec.type)),
      opts.startupTimeoutMs ?? 60_000, client.displayUrl, log);
    writers.set(topic, { id, fp: codec.fingerprint });
    remember(id, { fp: codec.fingerprint, fpHex: codec.fingerprint.toString('hex'), type: codec.type });
  }
  log.info({ registry: client.displayUrl, ids: Object.fromEntries([...writers].map(([t, w]) => [subjectOf(t), w.id])) }, 'schemas registered: Confluent framing on');

  async function learn(topic: string, codec: TopicSchema, id: number): Promise<void> {
    let k = known.get(id);
    if (k === undefined) {
      let type: avro.Type;
      try {
        const text = await retrying(`GET /schemas/ids/${id}`, () => client.schemaById(id), opts.lookupTimeoutMs ?? 10_000, client.displayUrl, log);
        type = avro.Type.forSchema(JSON.parse(text) as avro.Schema);
      } catch (err) {
        if (isQoeError(err, 'QOE_ERR_SCHEMA_REGISTRY_UNAVAILABLE')) throw err;
        log.warn({ err, topic, schemaId: id }, 'schema id not resolvable: its records are dead-lettered');
        return;
      }
      const fp = fingerprintOf(type);
      k = { fp, fpHex: fp.toString('hex'), type };
      remember(id, k);
    }
    if (codec.reads(k.fpHex)) return;
    try {
      codec.addWriter(k.type);
    } catch (err) {
      log.warn({ err, topic, schemaId: id }, 'writer schema does not resolve into the current one: its records are dead-lettered');
    }
  }

  return {
    displayUrl: client.displayUrl,
    writerIds: new Map([...writers].map(([t, w]) => [t, w.id])),
    frame(topic, value) {
      const w = writers.get(topic);
      if (w === undefined || framingOf(value) !== 'single-object') return value;
      if (value.compare(w.fp, 0, w.fp.length, 2, 2 + w.fp.length) !== 0) {
        throw new QoeError('QOE_ERR_SCHEMA_NOT_REGISTERED', `${topic}: writer schema ${value.subarray(2, 10).toString('hex')} has no id in ${client.displayUrl}`);
      }
      return singleObjectToConfluent(value, w.id);
    },
    async resolve(topic, values) {
      const codec = topics[topic];
      if (codec === undefined) return;
      const ids = new Set<number>();
      for (const v of values) {
        if (framingOf(v) !== 'confluent') continue;
        const id = confluentSchemaId(v);
        const k = known.get(id);
        if (k === undefined || !codec.reads(k.fpHex)) ids.add(id);
      }
      for (const id of ids) await learn(topic, codec, id);
    },
    unframe(topic, value) {
      if (value[0] !== 0 || !writers.has(topic) || framingOf(value) !== 'confluent') return value;
      const k = known.get(confluentSchemaId(value));
      return k === undefined ? value : confluentToSingleObject(value, k.fp);
    },
  };
}

/** `bus` with Confluent framing on the topics `framing` knows (see the top of this file). */
export function withConfluentFraming(bus: Bus, framing: ConfluentFraming): Bus {
  const frameAll = (topic: string, messages: BusMessage[]): BusMessage[] =>
    messages.map((m) => ({ ...m, value: framing.frame(topic, m.value) }));
  const unframeAll = async (topic: string, records: BusRecord[]): Promise<BusRecord[]> => {
    await framing.resolve(topic, records.map((r) => r.value));
    return records.map((r) => {
      const framed = r.value;
      const value = framing.unframe(topic, framed);
      // Field by field: a Kafka record reads its key and value through getters, which a spread skips.
      return value === framed ? r : { topic: r.topic, partition: r.partition, offset: r.offset, key: r.key, value, timestampMs: r.timestampMs };
    });
  };
  const wrapProducer = (p: BusProducer): BusProducer => ({
    send: (topic, messages) => p.send(topic, frameAll(topic, messages)),
    sendWithOffsets: (batches: TopicMessages[], groupId, offsets) =>
      p.sendWithOffsets(batches.map((b) => ({ topic: b.topic, messages: frameAll(b.topic, b.messages) })), groupId, offsets),
    close: () => p.close(),
  });
  const wrapConsumer = (c: BusConsumer): BusConsumer => ({
    run: (h) => c.run({
      ...h,
      eachBatch: async (batch: ConsumerBatch) => h.eachBatch({ ...batch, records: await unframeAll(batch.topic, batch.records) }),
    }),
    commit: (offsets) => c.commit(offsets),
    pause: (tps) => c.pause(tps),
    resume: (tps) => c.resume(tps),
    lag: () => c.lag(),
    close: () => c.close(),
  });
  const read = bus.readPartition?.bind(bus);
  return {
    kind: bus.kind,
    createTopics: (specs) => bus.createTopics(specs),
    producer: (opts) => wrapProducer(bus.producer(opts)),
    consumer: (opts) => wrapConsumer(bus.consumer(opts)),
    ...(read && { readPartition: async (topic: string, partition: number, from: number, until?: (r: BusRecord) => boolean) => unframeAll(topic, await read(topic, partition, from, until)) }),
    close: () => bus.close(),
  };
}
