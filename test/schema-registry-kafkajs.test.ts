import { readFileSync } from 'node:fs';
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import { describe, expect, it } from 'vitest';
import { createMemoryBus } from '../lib/bus/memory.js';
import { TOPICS } from '../lib/bus/topics.js';
import type { Bus, BusRecord } from '../lib/bus/types.js';
import { loadConfig } from '../lib/config.js';
import { silentLogger } from '../lib/logger.js';
import { projectPath } from '../lib/paths.js';
import { createSchemaRegistryClient } from '../lib/registry/client.js';
import { createConfluentFraming, registeredSchemaText, subjectOf, withConfluentFraming } from '../lib/registry/wire.js';
import { startRuntime } from '../lib/runtime.js';
import { decodeSessionEvent, encodeSessionEvent, sessionEventCodec, sessionEventType } from '../schemas/codec.js';
import type { SessionEvent } from '../schemas/events.js';
import { confluentSchemaId, framingOf } from '../schemas/framing.js';
import { replayEnv, tempDataDir, waitUntil } from './helpers/runtime.js';
import { readAll, startStandInRegistry, type StandInRegistry } from './helpers/schema-registry.js';

/**
 * Our Confluent framing and the stand-in registry (test/helpers/schema-registry.ts) checked against
 * a second, widely used implementation of both the wire format and the registry REST client:
 * @kafkajs/confluent-schema-registry (pinned in package.json), over real HTTP.
 * - what our bus wrapper writes (and what the runtime's ingest writes) is decoded by its decode();
 * - what its register() + encode() write is decoded by our reader;
 * - its register / getLatestSchemaId / getRegistryId / getRegistryIdBySchema / getSchema calls, and
 *   its error handling, work against the stand-in.
 * Coverage, honestly: the framing (magic byte, big-endian id), the REST paths, bodies, methods and
 * response shapes are this package's own code; its Avro is avsc, the same library (deduplicated to
 * the same copy) as ours, so the Avro bodies are not independently checked here — Python fastavro
 * does that (test/avro-fastavro.test.ts, test/schema-registry-kafka.test.ts). The package rewrites
 * every response's content type to application/json before parsing, so the stand-in's content type
 * is asserted directly below. Expected values are written out by hand, not derived from our mapping.
 */

/** Two events covering both branches of every union: all optionals set, then all null. */
const cases: Array<{ event: SessionEvent; avro: Record<string, unknown> }> = [
  {
    event: {
      sessionId: 'kjs-1', seq: 7, tsMs: 1_700_000_123_456, receivedAtMs: 1_700_000_123_999, type: 'error', source: 'cmcd',
      dims: {
        cdn: 'cdn-b', country: 'DE', asn: '3320', contentId: 'movie-42', streamType: 'live', playerName: 'hls.js', playerVersion: '1.7.4',
        deviceType: 'tv', os: 'tizen', browser: 'samsung', custom1: 'a', custom2: 'b', custom3: 'é✓',
      },
      bitrateKbps: 4500, playheadMs: 123_456_789_012, droppedFrames: 17, errorCode: 'MEDIA_ERR_DECODE', errorFatal: true,
      httpStatus: 503, ttfbMs: 85, ttlbMs: 410, startupMs: 1250, clientHash: '9f86d081',
    },
    avro: {
      session_id: 'kjs-1', seq: 7, ts_ms: 1_700_000_123_456, received_at_ms: 1_700_000_123_999, type: 'error', source: 'cmcd',
      cdn: 'cdn-b', country: 'DE', asn: '3320', content_id: 'movie-42', stream_type: 'live', player_name: 'hls.js', player_version: '1.7.4',
      device_type: 'tv', os: 'tizen', browser: 'samsung', custom1: 'a', custom2: 'b', custom3: 'é✓',
      bitrate_kbps: 4500, playhead_ms: 123_456_789_012, dropped_frames: 17, error_code: 'MEDIA_ERR_DECODE', error_fatal: true,
      http_status: 503, ttfb_ms: 85, ttlb_ms: 410, startup_ms: 1250, client_hash: '9f86d081',
    },
  },
  {
    event: {
      sessionId: 'kjs-2', seq: 0, tsMs: 1_600_000_000_000, receivedAtMs: 1_600_000_000_001, type: 'play_request', source: 'native',
      dims: {
        cdn: '', country: '', asn: '', contentId: '', streamType: '', playerName: '', playerVersion: '',
        deviceType: '', os: '', browser: '', custom1: '', custom2: '', custom3: '',
      },
      bitrateKbps: null, playheadMs: null, droppedFrames: null, errorCode: null, errorFatal: null,
      httpStatus: null, ttfbMs: null, ttlbMs: null, startupMs: null, clientHash: '',
    },
    avro: {
      session_id: 'kjs-2', seq: 0, ts_ms: 1_600_000_000_000, received_at_ms: 1_600_000_000_001, type: 'play_request', source: 'native',
      cdn: '', country: '', asn: '', content_id: '', stream_type: '', player_name: '', player_version: '',
      device_type: '', os: '', browser: '', custom1: '', custom2: '', custom3: '',
      bitrate_kbps: null, playhead_ms: null, dropped_frames: null, error_code: null, error_fatal: null,
      http_status: null, ttfb_ms: null, ttlb_ms: null, startup_ms: null, client_hash: '',
    },
  },
];

const SUBJECT = subjectOf(TOPICS.beacons);

/** The package's client for the stand-in; credentials from the URL's userinfo, as it takes them apart. */
function kafkajsRegistry(reg: StandInRegistry): SchemaRegistry {
  const u = new URL(reg.url);
  const auth = u.username === '' ? undefined : { username: decodeURIComponent(u.username), password: decodeURIComponent(u.password) };
  u.username = '';
  u.password = '';
  // No retries: the stand-in answers at once, and a failure should show as it is.
  return new SchemaRegistry({ host: u.href.replace(/\/$/, ''), auth, retry: { retries: 0 } });
}

/** Field by field, so a mismatch names its field; and no field more or less. */
function expectRecord(got: unknown, expected: Record<string, unknown>): void {
  expect(typeof got).toBe('object');
  const rec = got as Record<string, unknown>;
  for (const [field, value] of Object.entries(expected)) expect(rec[field], field).toStrictEqual(value);
  expect(Object.keys(rec).sort()).toEqual(Object.keys(expected).sort());
}

async function onWire(raw: Bus & { readPartition: NonNullable<Bus['readPartition']> }, topic: string, partitions: number): Promise<BusRecord[]> {
  const out: BusRecord[] = [];
  for (let p = 0; p < partitions; p++) out.push(...await raw.readPartition(topic, p, 0));
  return out;
}


describe('@kafkajs/confluent-schema-registry reads what we write', () => {
  it('records the bus wrapper frames decode with the package, field by field', async () => {
    const reg = await startStandInRegistry();
    const raw = createMemoryBus({ maxBacklog: 10_000 });
    const framing = await createConfluentFraming({
      client: createSchemaRegistryClient({ url: reg.url }), topics: { [TOPICS.beacons]: sessionEventCodec }, log: silentLogger(),
    });
    const bus = withConfluentFraming(raw, framing);
    await bus.createTopics([{ topic: TOPICS.beacons, partitions: 1 }]);
    await bus.producer().send(TOPICS.beacons, cases.map((c) => ({ key: c.event.sessionId, value: encodeSessionEvent(c.event) })));
    const records = await onWire(raw, TOPICS.beacons, 1);
    expect(records.map((r) => framingOf(r.value))).toEqual(['confluent', 'confluent']);
    const registry = kafkajsRegistry(reg);
    for (const [i, r] of records.entries()) {
      const decoded: unknown = await registry.decode(r.value);
      expectRecord(decoded, cases[i]!.avro);
    }
    expect(reg.requests).toContain(`GET /schemas/ids/${framing.writerIds.get(TOPICS.beacons)}`);
    await bus.close();
  });

  it('ingest in a runtime with a registry writes beacons the package decodes', async () => {
    const reg = await startStandInRegistry();
    const raw = createMemoryBus({ maxBacklog: 10_000 });
    const config = loadConfig(replayEnv(tempDataDir(), { QOE_SCHEMA_REGISTRY_URL: reg.url, QOE_ROLES: 'ingest' }));
    const runtime = await startRuntime(config, silentLogger(), { bus: raw });
    try {
      const ts = Date.now() - 1000;
      const res = await fetch(`${runtime.url}/v1/beacons`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ dims: { cdn: 'cdn-a', country: 'FR' }, events: [{ sessionId: 'kjs-e2e', seq: 4, ts, type: 'playing', playheadMs: 5000, bitrateKbps: 1800 }] }),
      });
      expect(res.status).toBe(202);
      let records: BusRecord[] = [];
      await waitUntil('the beacon on the bus', async () => (records = await onWire(raw, TOPICS.beacons, config.bus.partitions)).length === 1, 10_000);
      const value = records[0]!.value;
      expect(framingOf(value)).toBe('confluent');
      const decoded = (await kafkajsRegistry(reg).decode(value)) as Record<string, unknown>;
      expect(decoded).toMatchObject({
        session_id: 'kjs-e2e', seq: 4, ts_ms: ts, type: 'playing', source: 'native', cdn: 'cdn-a', country: 'FR', playhead_ms: 5000, bitrate_kbps: 1800,
        error_code: null, startup_ms: null,
      });
      expect(Object.keys(decoded).sort()).toEqual(Object.keys(cases[0]!.avro).sort());
    } finally {
      await runtime.stop();
    }
  });
});

describe('we read what @kafkajs/confluent-schema-registry writes', () => {
  it('register + encode by the package → our reader yields the expected SessionEvents', async () => {
    const reg = await startStandInRegistry();
    const registry = kafkajsRegistry(reg);
    // The schema as the .avsc file has it (docs and all), as another team's producer would register it.
    const fileSchema = readFileSync(projectPath('schemas/beacon-event.avsc'), 'utf8');
    const { id } = await registry.register({ type: SchemaType.AVRO, schema: fileSchema }, { subject: SUBJECT });
    const raw = createMemoryBus({ maxBacklog: 10_000 });
    const bus = withConfluentFraming(raw, await createConfluentFraming({
      client: createSchemaRegistryClient({ url: reg.url }), topics: { [TOPICS.beacons]: sessionEventCodec }, log: silentLogger(),
    }));
    await bus.createTopics([{ topic: TOPICS.beacons, partitions: 1 }]);
    const values = await Promise.all(cases.map((c) => registry.encode(id, c.avro)));
    for (const v of values) expect(confluentSchemaId(v)).toBe(id);
    await raw.producer().send(TOPICS.beacons, values.map((value, i) => ({ key: cases[i]!.event.sessionId, value })));
    const read = await readAll(bus, TOPICS.beacons, cases.length);
    expect(read.map((r) => decodeSessionEvent(r.value))).toEqual(cases.map((c) => c.event));
    // The file's text is not the text we register (ours is avsc's export of it), so the stand-in gave
    // it its own id, and our reader learnt that id's schema by asking for it.
    expect(reg.requests).toContain(`GET /schemas/ids/${id}`);
    await bus.close();
  });

  it('a newer schema registered by the package (one more field) resolves into ours', async () => {
    const reg = await startStandInRegistry();
    const raw = createMemoryBus({ maxBacklog: 10_000 });
    const bus = withConfluentFraming(raw, await createConfluentFraming({
      client: createSchemaRegistryClient({ url: reg.url }), topics: { [TOPICS.beacons]: sessionEventCodec }, log: silentLogger(),
    }));
    await bus.createTopics([{ topic: TOPICS.beacons, partitions: 1 }]);
    const registry = kafkajsRegistry(reg);
    const current = JSON.parse(readFileSync(projectPath('schemas/beacon-event.avsc'), 'utf8')) as { fields: unknown[] };
    const newer = { ...current, fields: [...current.fields, { name: 'cmcd_sid', type: 'string', default: '' }] };
    const { id } = await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(newer) }, { subject: SUBJECT });
    const value = await registry.encode(id, { ...cases[0]!.avro, cmcd_sid: 'sid-1' });
    await raw.producer().send(TOPICS.beacons, [{ key: 'kjs-1', value }]);
    const [rec] = await readAll(bus, TOPICS.beacons, 1);
    expect(decodeSessionEvent(rec!.value)).toEqual(cases[0]!.event);
    expect(reg.requests).toContain(`GET /schemas/ids/${id}`);
    await bus.close();
  });
});

describe('the stand-in answers the REST API as @kafkajs/confluent-schema-registry expects', () => {
  it('register, getLatestSchemaId, getRegistryId, getRegistryIdBySchema, getSchema', async () => {
    const reg = await startStandInRegistry();
    const registry = kafkajsRegistry(reg);
    const ours = await createSchemaRegistryClient({ url: reg.url }).register(SUBJECT, registeredSchemaText(sessionEventType));
    const schema = { type: SchemaType.AVRO as const, schema: registeredSchemaText(sessionEventType) };
    // The same schema text: the id we got, whoever registers it.
    expect((await registry.register(schema, { subject: SUBJECT })).id).toBe(ours);
    expect(await registry.getLatestSchemaId(SUBJECT)).toBe(ours);
    expect(await registry.getRegistryId(SUBJECT, 1)).toBe(ours);
    expect(await registry.getRegistryIdBySchema(SUBJECT, schema)).toBe(ours);
    // A fresh client: register() has cached the schema, and GET /schemas/ids/{id} is what is checked here.
    const served = await kafkajsRegistry(reg).getSchema(ours);
    expect('equals' in served && served.equals(sessionEventType)).toBe(true);
    // register() reads the subject's compatibility first and sets it on a first registration.
    expect(reg.requests).toEqual([
      `POST /subjects/${SUBJECT}/versions`,
      `GET /config/${SUBJECT}`, `POST /subjects/${SUBJECT}/versions`, `PUT /config/${SUBJECT}`,
      `GET /subjects/${SUBJECT}/versions/latest`, `GET /subjects/${SUBJECT}/versions/1`, `POST /subjects/${SUBJECT}`,
      `GET /schemas/ids/${ours}`,
    ]);
    // A second registration finds the level it set (BACKWARD, the package's default) and goes ahead.
    expect((await registry.register(schema, { subject: SUBJECT })).id).toBe(ours);
  });

  it('errors: the package reads {error_code, message} and the status; credentials as HTTP Basic', async () => {
    const reg = await startStandInRegistry({ auth: { user: 'qoe', password: 's3cr:t/!' } });
    const registry = kafkajsRegistry(reg);
    await expect(registry.getSchema(999)).rejects.toMatchObject({ status: 404, message: expect.stringMatching(/Schema not found/) as unknown });
    await expect(registry.getLatestSchemaId('nope-value')).rejects.toMatchObject({ status: 404, message: expect.stringMatching(/Subject.*not found/) as unknown });
    await expect(registry.register({ type: SchemaType.AVRO, schema: '{"type":"record","name":"X","namespace":"n","fields":[]}' }, { subject: 'x-value' }))
      .resolves.toMatchObject({ id: 1 });
    const anonymous = new SchemaRegistry({ host: reg.url.replace(/\/\/[^@]+@/, '//'), retry: { retries: 0 } });
    await expect(anonymous.getSchema(1)).rejects.toMatchObject({ status: 401, unauthorized: true });
  });

  it('answers in Confluent\'s content type (the package does not look: it rewrites it to application/json)', async () => {
    const reg = await startStandInRegistry();
    reg.register(SUBJECT, '"string"');
    const res = await fetch(`${reg.url}/schemas/ids/1`, { headers: { accept: 'application/vnd.schemaregistry.v1+json' } });
    expect(res.headers.get('content-type')).toBe('application/vnd.schemaregistry.v1+json');
    expect(await res.json()).toEqual({ schema: '"string"' });
  });
});
