import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import avro from 'avsc';
import { pino } from 'pino';
import { createMemoryBus } from '../lib/bus/memory.js';
import { TOPICS } from '../lib/bus/topics.js';
import { isQoeError } from '../lib/errors.js';
import { silentLogger } from '../lib/logger.js';
import { createSchemaRegistryClient } from '../lib/registry/client.js';
import { createConfluentFraming, registeredSchemaText, withConfluentFraming, type ConfluentFraming } from '../lib/registry/wire.js';
import { decodeSessionEvent, encodeSessionEvent, loadAvroType, sessionEventCodec, sessionEventType } from '../schemas/codec.js';
import { emptyDims, type SessionEvent } from '../schemas/events.js';
import { confluentSchemaId, createAvroCodec, framingOf, singleObjectToConfluent } from '../schemas/framing.js';
import { replayEnv, startTestRuntime, tempDataDir, waitUntil } from './helpers/runtime.js';
import { readAll, startStandInRegistry } from './helpers/schema-registry.js';

/**
 * Confluent framing against a Confluent-compatible registry over real HTTP (the in-repo stand-in,
 * test/helpers/schema-registry.ts, says why it is not a real registry) on the in-memory bus. The same
 * on a real Kafka broker, with fastavro as the independent decoder: test/schema-registry-kafka.test.ts.
 */

async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

const event = (seq: number): SessionEvent => ({
  sessionId: 's-1', seq, tsMs: 1_700_000_000_000 + seq, receivedAtMs: 1_700_000_000_100 + seq, type: 'heartbeat', source: 'native',
  dims: { ...emptyDims(), cdn: 'cdn-a', country: 'FR' }, bitrateKbps: 2400, playheadMs: seq * 1000, droppedFrames: null, errorCode: null,
  errorFatal: null, httpStatus: null, ttfbMs: null, ttlbMs: null, startupMs: null, clientHash: 'h',
});


function framed(url: string, extra: { startupTimeoutMs?: number } = {}): Promise<ConfluentFraming> {
  return createConfluentFraming({ client: createSchemaRegistryClient({ url }), topics: { [TOPICS.beacons]: sessionEventCodec }, log: silentLogger(), ...extra });
}

describe('schema registry client (Confluent REST API)', () => {
  it('registers idempotently, one global id per schema, and serves it back by id', async () => {
    const reg = await startStandInRegistry();
    const client = createSchemaRegistryClient({ url: reg.url });
    const schema = registeredSchemaText(sessionEventType);
    const id = await client.register('qoe.beacons.v1-value', schema);
    expect(await client.register('qoe.beacons.v1-value', schema)).toBe(id);
    expect(await client.register('other-value', schema)).toBe(id);
    expect(avro.Type.forSchema(JSON.parse(await client.schemaById(id)) as avro.Schema).equals(sessionEventType)).toBe(true);
    expect(reg.requests).toContain('POST /subjects/qoe.beacons.v1-value/versions');
    expect(reg.requests).toContain(`GET /schemas/ids/${id}`);
  });

  it('maps errors to stable codes: unknown id, invalid schema, unreachable', async () => {
    const reg = await startStandInRegistry();
    const client = createSchemaRegistryClient({ url: reg.url });
    expect(isQoeError(await caught(client.schemaById(999)), 'QOE_ERR_SCHEMA_UNKNOWN_WRITER')).toBe(true);
    expect(isQoeError(await caught(client.register('x-value', '{"type":"nope"}')), 'QOE_ERR_SCHEMA_REGISTRY_REJECTED')).toBe(true);
    const down = createSchemaRegistryClient({ url: `http://127.0.0.1:${await freePort()}`, timeoutMs: 1000 });
    const err = await caught(down.schemaById(1));
    expect(isQoeError(err, 'QOE_ERR_SCHEMA_REGISTRY_UNAVAILABLE')).toBe(true);
    expect(isQoeError(err) && err.retriable).toBe(true);
  });

  it('sends the URL userinfo as HTTP Basic and never shows it', async () => {
    const reg = await startStandInRegistry({ auth: { user: 'qoe', password: 's3cr:t/!' } });
    expect(reg.url).toContain('qoe:s3cr%3At%2F!@');
    const client = createSchemaRegistryClient({ url: `${reg.url}/` });
    expect(client.displayUrl).not.toContain('s3cr');
    expect(await client.register('a-value', '"string"')).toBe(1);
    const anonymous = createSchemaRegistryClient({ url: reg.url.replace(/\/\/[^@]+@/, '//') });
    const err = await caught(anonymous.register('a-value', '"string"'));
    expect(isQoeError(err, 'QOE_ERR_SCHEMA_REGISTRY_REJECTED')).toBe(true);
    expect((err as Error).message).toMatch(/401/);
  });
});

describe('start-up registration', () => {
  it('registers <topic>-value for every Avro topic before anything is written', async () => {
    const reg = await startStandInRegistry();
    const f = await framed(reg.url);
    const id = f.writerIds.get(TOPICS.beacons);
    expect(id).toBe(1);
    expect(reg.requests).toEqual(['POST /subjects/qoe.beacons.v1-value/versions']);
    const single = encodeSessionEvent(event(0));
    const out = f.frame(TOPICS.beacons, single);
    expect([...out.subarray(0, 5)]).toEqual([0, 0, 0, 0, 1]);
    expect(out.subarray(5).equals(single.subarray(10))).toBe(true);
    // Other topics (dead letters are JSON) are left alone.
    expect(f.frame(TOPICS.beaconsDlq, single)).toBe(single);
  });

  it('refuses to write a record whose schema has no id (never a framing the registry does not know)', async () => {
    const reg = await startStandInRegistry();
    const f = await framed(reg.url);
    const v0 = createAvroCodec<Record<string, unknown>>(loadAvroType('history/beacon-event.v0.avsc'));
    let err: unknown;
    try {
      f.frame(TOPICS.beacons, v0.encode(v0Record()));
    } catch (e) {
      err = e;
    }
    expect(isQoeError(err, 'QOE_ERR_SCHEMA_NOT_REGISTERED')).toBe(true);
  });

  it('retries an unreachable registry with backoff, then fails with QOE_ERR_SCHEMA_REGISTRY_UNAVAILABLE', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const t0 = Date.now();
    const err = await caught(framed(url, { startupTimeoutMs: 1500 }));
    expect(isQoeError(err, 'QOE_ERR_SCHEMA_REGISTRY_UNAVAILABLE')).toBe(true);
    expect((err as Error).message).toMatch(/unreachable: registering qoe\.beacons\.v1-value failed \d+ times/);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(700);
  });

  it('succeeds once a registry that was down at start comes up', async () => {
    const port = await freePort();
    const warnings: string[] = [];
    const log = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) });
    const pending = createConfluentFraming({
      client: createSchemaRegistryClient({ url: `http://127.0.0.1:${port}` }), topics: { [TOPICS.beacons]: sessionEventCodec }, log, startupTimeoutMs: 30_000,
    });
    await waitUntil('a failed attempt', () => warnings.some((w) => w.includes('schema registry unreachable, retrying')), 10_000);
    const reg = await startStandInRegistry({ port });
    expect((await pending).writerIds.get(TOPICS.beacons)).toBe(1);
    expect(reg.requests.length).toBe(1);
  });

  it('a runtime refuses a registry URL that is not http(s)', async () => {
    await expect(startTestRuntime(replayEnv(tempDataDir(), { QOE_SCHEMA_REGISTRY_URL: 'ftp://x' }))).rejects.toThrow(/QOE_SCHEMA_REGISTRY_URL/);
  });
});

function v0Record(): Record<string, unknown> {
  return {
    session_id: 's-old', seq: 3, ts_ms: 1_700_000_000_000, received_at_ms: 1_700_000_000_100, type: 'first_frame', source: 'native',
    cdn: 'cdn-a', country: 'US', asn: '7922', content_id: 'c', stream_type: 'vod', player_name: 'p', player_version: '1',
    device_type: 'desktop', os: 'linux', browser: 'chrome', custom1: '', custom2: '', custom3: '',
    bitrate_kbps: 3000, playhead_ms: null, dropped_frames: null, error_code: null, error_fatal: null, client_hash: 'abc',
  };
}

describe('Confluent framing on the bus', () => {
  it('producers write Confluent framing; consumers read it and single-object records side by side', async () => {
    const reg = await startStandInRegistry();
    const raw = createMemoryBus({ maxBacklog: 10_000 });
    const bus = withConfluentFraming(raw, await framed(reg.url));
    await bus.createTopics([{ topic: TOPICS.beacons, partitions: 2 }]);
    await bus.producer().send(TOPICS.beacons, [0, 1, 2].map((seq) => ({ key: 's-1', value: encodeSessionEvent(event(seq)) })));
    // A producer that has not moved yet (no registry): single-object on the same topic.
    await raw.producer().send(TOPICS.beacons, [3, 4].map((seq) => ({ key: 's-1', value: encodeSessionEvent(event(seq)) })));
    // What is on the wire, read outside any group (a group's commits would let the memory bus drop the records).
    const onWire = [...await raw.readPartition(TOPICS.beacons, 0, 0), ...await raw.readPartition(TOPICS.beacons, 1, 0)];
    expect(onWire.map((r) => framingOf(r.value))).toEqual(['confluent', 'confluent', 'confluent', 'single-object', 'single-object']);
    const read = await readAll(bus, TOPICS.beacons, 5);
    expect(read.map((r) => decodeSessionEvent(r.value))).toEqual([0, 1, 2, 3, 4].map(event));
    await bus.close();
  });

  it('evolution: a record written with the previous schema version (registered earlier) decodes into the current shape', async () => {
    const reg = await startStandInRegistry();
    const subject = `${TOPICS.beacons}-value`;
    const v0 = loadAvroType('history/beacon-event.v0.avsc');
    const v0Id = reg.register(subject, registeredSchemaText(v0)); // version 1, by an older producer
    const raw = createMemoryBus({ maxBacklog: 10_000 });
    const f = await framed(reg.url); // registers the current schema: version 2
    expect(f.writerIds.get(TOPICS.beacons)).not.toBe(v0Id);
    const versions = await (await fetch(`${reg.url}/subjects/${subject}/versions`)).json();
    expect(versions).toEqual([1, 2]);
    const bus = withConfluentFraming(raw, f);
    await bus.createTopics([{ topic: TOPICS.beacons, partitions: 1 }]);
    const oldBody = createAvroCodec<Record<string, unknown>>(v0).encode(v0Record());
    await raw.producer().send(TOPICS.beacons, [{ key: 's-old', value: singleObjectToConfluent(oldBody, v0Id) }]);
    const [rec] = await readAll(bus, TOPICS.beacons, 1);
    const e = decodeSessionEvent(rec!.value);
    expect(e).toMatchObject({ sessionId: 's-old', seq: 3, type: 'first_frame', bitrateKbps: 3000, startupMs: null, httpStatus: null, ttfbMs: null });
    expect(e.dims.cdn).toBe('cdn-a');
    await bus.close();
  });

  it('a newer writer schema is fetched by id and resolved; an id the registry lacks stays undecodable', async () => {
    const reg = await startStandInRegistry();
    const current = sessionEventType.schema({ exportAttrs: true }) as { fields: unknown[] } & Record<string, unknown>;
    const newer = avro.Type.forSchema({ ...current, fields: [...current.fields, { name: 'cmcd_sid', type: 'string', default: '' }] } as avro.Schema);
    const raw = createMemoryBus({ maxBacklog: 10_000 });
    const bus = withConfluentFraming(raw, await framed(reg.url));
    await bus.createTopics([{ topic: TOPICS.beacons, partitions: 1 }]);
    const newerId = reg.register(`${TOPICS.beacons}-value`, registeredSchemaText(newer)); // a newer producer, after this reader started
    const body = newer.toBuffer({ ...(sessionEventType.fromBuffer(encodeSessionEvent(event(9)).subarray(10)) as object), cmcd_sid: 'x' });
    await raw.producer().send(TOPICS.beacons, [
      { key: 's-1', value: Buffer.concat([Buffer.from([0, 0, 0, 0, newerId]), body]) },
      { key: 's-1', value: Buffer.concat([Buffer.from([0, 0, 0, 0x30, 0x39]), body]) }, // id 12345: not in the registry
    ]);
    const [ok, unknown] = await readAll(bus, TOPICS.beacons, 2);
    expect(decodeSessionEvent(ok!.value)).toEqual(event(9));
    expect(confluentSchemaId(unknown!.value)).toBe(12345);
    expect(() => decodeSessionEvent(unknown!.value)).toThrow(/schema id 12345/);
    expect(reg.requests).toContain(`GET /schemas/ids/${newerId}`);
    await bus.close();
  });
});

describe('embedded runtime with a registry', () => {
  it('ingest → Confluent-framed beacons → processor; an unknown id is dead-lettered as undecodable', async () => {
    const reg = await startStandInRegistry();
    const { runtime } = await startTestRuntime(replayEnv(tempDataDir(), { QOE_SCHEMA_REGISTRY_URL: reg.url, QOE_ROLES: 'ingest,processor' }));
    try {
      const res = await fetch(`${runtime.url}/v1/beacons`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ dims: { cdn: 'cdn-a', country: 'FR' }, events: [{ sessionId: 'e2e-1', seq: 0, ts: Date.now() - 1000, type: 'play_request', playheadMs: 0 }] }),
      });
      expect(res.status).toBe(202);
      await runtime.bus.producer().send(TOPICS.beacons, [{ key: 'bad', value: Buffer.from([0, 0, 0, 0x30, 0x39, 2]) }]);
      const outcomes = async (): Promise<string> => (await runtime.app.inject({ method: 'GET', url: '/metrics' })).body;
      await waitUntil('processor outcomes', async () => {
        const text = await outcomes();
        return /qoe_processor_events_total\{outcome="ok"\} 1\b/.test(text) && /qoe_processor_events_total\{outcome="undecodable"\} 1\b/.test(text);
      }, 20_000);
      expect(reg.requests).toEqual(expect.arrayContaining([
        'POST /subjects/qoe.beacons.v1-value/versions', 'POST /subjects/qoe.metrics.v1-value/versions', 'POST /subjects/qoe.steering.v1-value/versions',
        'GET /schemas/ids/12345',
      ]));
    } finally {
      await runtime.stop();
    }
  });
});
