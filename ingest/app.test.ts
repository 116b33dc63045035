import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { QoeError } from '../lib/errors.js';
import { silentLogger } from '../lib/logger.js';
import { projectPath } from '../lib/paths.js';
import type { SessionEvent } from '../schemas/events.js';
import { buildApp, MAX_EVENTS_PER_BATCH, type AppDeps, type IngestApp } from './app.js';
import { clientHash } from './client-hash.js';
import type * as validate from './validate.js';
import { createBeaconValidators } from './validate.js';

// The real validators, counted: an app compiles them only when it serves beacons.
vi.mock('./validate.js', async (importOriginal) => {
  const real = await importOriginal<typeof validate>();
  return { ...real, createBeaconValidators: vi.fn(real.createBeaconValidators) };
});

const NOW = 1_767_225_700_000;
const SECRET = 'test-secret';
const fixture = JSON.parse(readFileSync(projectPath('schemas', 'fixtures', 'native-batch.json'), 'utf8')) as {
  events: Array<Record<string, unknown>>;
  dims: Record<string, unknown>;
};

interface Harness {
  app: IngestApp;
  published: SessionEvent[][];
}

const apps: IngestApp[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

function harness(overrides: Partial<AppDeps> = {}): Harness {
  const published: SessionEvent[][] = [];
  const app = buildApp({
    http: { port: 0, host: '127.0.0.1', bodyLimitBytes: 64 * 1024, corsOrigins: ['https://player.example'], trustProxy: false },
    log: silentLogger(),
    ipHashSecret: SECRET,
    publish: async (events) => {
      published.push(events);
    },
    isReady: () => true,
    now: () => NOW,
    ...overrides,
  });
  apps.push(app);
  return { app, published };
}

function ev(seq: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { sessionId: 'sess-1', seq, ts: 1_767_225_600_000 + seq, type: 'heartbeat', ...extra };
}

function post(app: IngestApp, payload: unknown, headers: Record<string, string> = {}) {
  return app.inject({
    method: 'POST',
    url: '/v1/beacons',
    headers: { 'content-type': 'application/json', ...headers },
    payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
  });
}

interface ErrorJson {
  error: { code: string; message: string; field?: string; details?: Record<string, unknown> };
  accepted?: number;
  rejected?: Array<{ index: number; code: string; field: string; message: string }>;
}

describe('POST /v1/beacons', () => {
  it('valid batch → 202 and publish got the normalised SessionEvents', async () => {
    const { app, published } = harness();
    const res = await post(app, fixture);
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({ accepted: fixture.events.length, rejected: [] });
    expect(published).toHaveLength(1);
    const events = published[0] ?? [];
    expect(events).toHaveLength(fixture.events.length);
    const hash = clientHash(SECRET, '127.0.0.1');
    for (const e of events) expect(e).toMatchObject({ receivedAtMs: NOW, source: 'native', clientHash: hash });
    expect(events[1]).toMatchObject({ type: 'first_frame', seq: 1, tsMs: 1767225601240, bitrateKbps: 2400, startupMs: 1240, errorCode: null });
    expect(events[1]?.dims).toMatchObject({ cdn: 'cdn-a', country: 'FR', asn: '3215', streamType: 'vod', custom1: '' });
    expect(events[10]).toMatchObject({ type: 'cdn_change', dims: expect.objectContaining({ cdn: 'cdn-b', asn: '3215' }) });
  });

  it('partial batch → 202, valid events published, invalid ones reported by index and field', async () => {
    const { app, published } = harness();
    const res = await post(app, { events: [ev(0), ev(1, { ts: 12 }), ev(2), ev(3, { type: 'error' }), ev(4, { bitrateKpbs: 1 })] });
    expect(res.statusCode).toBe(202);
    const body = res.json<{ accepted: number; rejected: Array<{ index: number; code: string; field: string }> }>();
    expect(body.accepted).toBe(2);
    expect(body.rejected.map((r) => [r.index, r.code, r.field])).toEqual([
      [1, 'QOE_ERR_INGEST_VALIDATION', '/events/1/ts'],
      [3, 'QOE_ERR_INGEST_VALIDATION', '/events/3/errorCode'],
      [4, 'QOE_ERR_INGEST_VALIDATION', '/events/4/bitrateKpbs'],
    ]);
    expect(published.flat().map((e) => e.seq)).toEqual([0, 2]);
  });

  it('every event invalid → 400 with the rejected list, nothing published', async () => {
    const { app, published } = harness();
    const res = await post(app, { events: [ev(0, { type: 'bitrate_change' }), ev(1, { country: 'fr' })] });
    expect(res.statusCode).toBe(400);
    const body = res.json<ErrorJson>();
    expect(body.error).toMatchObject({ code: 'QOE_ERR_INGEST_VALIDATION', field: '/events/0/bitrateKbps' });
    expect(body.accepted).toBe(0);
    expect(body.rejected?.map((r) => r.field)).toEqual(['/events/0/bitrateKbps', '/events/1/country']);
    expect(published).toHaveLength(0);
  });

  it.each([
    ['events missing', {}, '/events'],
    ['events empty', { events: [] }, '/events'],
    ['events not an array', { events: {} }, '/events'],
    ['an event not an object', { events: [ev(0), 7] }, '/events/1'],
    ['unknown envelope field', { events: [ev(0)], extra: 1 }, '/extra'],
    ['bad batch dims', { events: [ev(0)], dims: { asn: -1 } }, '/dims/asn'],
    ['unknown batch dim', { events: [ev(0)], dims: { region: 'eu' } }, '/dims/region'],
    ['body is an array', [ev(0)], ''],
  ])('invalid envelope (%s) → 400 naming the field', async (_name, payload, field) => {
    const { app, published } = harness();
    const res = await post(app, payload);
    expect(res.statusCode).toBe(400);
    expect(res.json<ErrorJson>().error).toMatchObject({ code: 'QOE_ERR_INGEST_VALIDATION', field });
    expect(published).toHaveLength(0);
  });

  it(`batch of ${MAX_EVENTS_PER_BATCH + 1} → 400, of ${MAX_EVENTS_PER_BATCH} → 202`, async () => {
    const { app } = harness({ http: { port: 0, host: '127.0.0.1', bodyLimitBytes: 1024 * 1024, corsOrigins: '*', trustProxy: false } });
    const events = Array.from({ length: MAX_EVENTS_PER_BATCH + 1 }, (_, i) => ev(i));
    const tooMany = await post(app, { events });
    expect(tooMany.statusCode).toBe(400);
    expect(tooMany.json<ErrorJson>().error).toMatchObject({ code: 'QOE_ERR_INGEST_VALIDATION', field: '/events' });
    const max = await post(app, { events: events.slice(0, MAX_EVENTS_PER_BATCH) });
    expect(max.statusCode).toBe(202);
  });

  it.each([
    ['truncated', '{"events":[{"sessionId":'],
    ['not JSON', 'hello'],
    ['empty body', ''],
  ])('malformed JSON (%s) → 400 QOE_ERR_INGEST_MALFORMED_JSON', async (_name, payload) => {
    const { app } = harness();
    const res = await post(app, payload);
    expect(res.statusCode).toBe(400);
    expect(res.json<ErrorJson>().error.code).toBe('QOE_ERR_INGEST_MALFORMED_JSON');
  });

  it('prototype poisoning is refused as malformed, not a 5xx', async () => {
    const { app } = harness();
    const res = await post(app, '{"events":[],"__proto__":{"x":1}}');
    expect(res.statusCode).toBe(400);
    expect(res.json<ErrorJson>().error.code).toBe('QOE_ERR_INGEST_MALFORMED_JSON');
  });

  it('body over the limit → 413 QOE_ERR_INGEST_BODY_TOO_LARGE', async () => {
    const { app } = harness();
    const events = Array.from({ length: 400 }, (_, i) => ev(i, { contentId: 'x'.repeat(100) }));
    const res = await post(app, { events });
    expect(res.statusCode).toBe(413);
    expect(res.json<ErrorJson>().error).toMatchObject({ code: 'QOE_ERR_INGEST_BODY_TOO_LARGE', details: { limitBytes: 64 * 1024 } });
  });

  it.each(['application/xml', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x'])(
    'content type %s → 415 QOE_ERR_INGEST_UNSUPPORTED_MEDIA_TYPE',
    async (contentType) => {
      const { app } = harness();
      const res = await post(app, { events: [ev(0)] }, { 'content-type': contentType });
      expect(res.statusCode).toBe(415);
      expect(res.json<ErrorJson>().error.code).toBe('QOE_ERR_INGEST_UNSUPPORTED_MEDIA_TYPE');
    },
  );

  it('text/plain (navigator.sendBeacon) is parsed as JSON', async () => {
    const { app, published } = harness();
    const res = await post(app, { events: [ev(0), ev(1)] }, { 'content-type': 'text/plain;charset=UTF-8' });
    expect(res.statusCode).toBe(202);
    expect(published.flat()).toHaveLength(2);
    const bad = await post(app, 'not json', { 'content-type': 'text/plain' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json<ErrorJson>().error.code).toBe('QOE_ERR_INGEST_MALFORMED_JSON');
  });

  it('publish rejecting with a retriable error → 503 QOE_ERR_INGEST_OVERLOADED, Retry-After: 1', async () => {
    for (const code of ['QOE_ERR_BUS_FULL', 'QOE_ERR_BUS_UNAVAILABLE'] as const) {
      const { app } = harness({ publish: () => Promise.reject(new QoeError(code)) });
      const res = await post(app, { events: [ev(0)] });
      expect(res.statusCode).toBe(503);
      expect(res.headers['retry-after']).toBe('1');
      const body = res.json<ErrorJson & { accepted?: number }>();
      expect(body.error.code).toBe('QOE_ERR_INGEST_OVERLOADED');
      expect(body.accepted).toBeUndefined();
    }
  });

  it('publish failing otherwise → 5xx with the error contract (never a 2xx before publish resolved)', async () => {
    const { app } = harness({ publish: () => Promise.reject(new Error('boom')) });
    const res = await post(app, { events: [ev(0)] });
    expect(res.statusCode).toBe(500);
    expect(res.json<ErrorJson>().error.code).toBe('QOE_ERR_INTERNAL');
    expect(res.body).not.toContain('boom');
  });

  it('publish rejecting with a non-retriable QoeError → its own code and status, no Retry-After', async () => {
    const { app } = harness({ publish: () => Promise.reject(new QoeError('QOE_ERR_BUS_CLOSED')) });
    const res = await post(app, { events: [ev(0)] });
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBeUndefined();
    expect(res.json<ErrorJson>().error.code).toBe('QOE_ERR_BUS_CLOSED');
  });

  it('answers only after publish resolved', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const { app } = harness({ publish: () => gate });
    let answered = false;
    const pending = post(app, { events: [ev(0)] }).then((r) => {
      answered = true;
      return r;
    });
    await new Promise((r) => setImmediate(r));
    expect(answered).toBe(false);
    release();
    expect((await pending).statusCode).toBe(202);
  });

  it('concurrent good requests are unaffected by a bad one', async () => {
    const { app, published } = harness();
    const good = Array.from({ length: 20 }, (_, i) => post(app, { events: [ev(2 * i, { sessionId: `s${i}` }), ev(2 * i + 1, { sessionId: `s${i}` })] }));
    const bad = [post(app, '{"events":'), post(app, { events: [ev(0, { ts: -1 })] }), post(app, { events: [ev(0)] }, { 'content-type': 'text/xml' })];
    const [goodRes, badRes] = await Promise.all([Promise.all(good), Promise.all(bad)]);
    expect(goodRes.map((r) => r.statusCode)).toEqual(Array(20).fill(202));
    expect(badRes.map((r) => r.statusCode)).toEqual([400, 400, 415]);
    expect(published.flat()).toHaveLength(40);
  });

  it('uses X-Forwarded-For for the client hash only when trustProxy is set', async () => {
    const http = { port: 0, host: '127.0.0.1', bodyLimitBytes: 65536, corsOrigins: '*' as const };
    const trusted = harness({ http: { ...http, trustProxy: true } });
    const untrusted = harness({ http: { ...http, trustProxy: false } });
    const headers = { 'x-forwarded-for': '198.51.100.9' };
    await post(trusted.app, { events: [ev(0)] }, headers);
    await post(untrusted.app, { events: [ev(0)] }, headers);
    expect(trusted.published[0]?.[0]?.clientHash).toBe(clientHash(SECRET, '198.51.100.9'));
    expect(untrusted.published[0]?.[0]?.clientHash).toBe(clientHash(SECRET, '127.0.0.1'));
  });
});

describe('CORS', () => {
  it('preflight from an allowed origin allows POST with Content-Type', async () => {
    const { app } = harness();
    const res = await app.inject({
      method: 'OPTIONS',
      url: '/v1/beacons',
      headers: { origin: 'https://player.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    expect(res.statusCode).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBe('https://player.example');
    expect(String(res.headers['access-control-allow-methods'])).toContain('POST');
    expect(String(res.headers['access-control-allow-headers']).toLowerCase()).toContain('content-type');
  });

  it('a disallowed origin gets no allow-origin header; the actual POST carries it for allowed ones', async () => {
    const { app } = harness();
    const denied = await post(app, { events: [ev(0)] }, { origin: 'https://evil.example' });
    expect(denied.headers['access-control-allow-origin']).toBeUndefined();
    const allowed = await post(app, { events: [ev(0)] }, { origin: 'https://player.example' });
    expect(allowed.statusCode).toBe(202);
    expect(allowed.headers['access-control-allow-origin']).toBe('https://player.example');
  });
});

describe('probes, 404, plugins, OpenAPI', () => {
  it('/healthz is always 200; /readyz follows isReady()', async () => {
    let ready = false;
    const { app } = harness({ isReady: () => ready });
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    const notReady = await app.inject({ method: 'GET', url: '/readyz' });
    expect(notReady.statusCode).toBe(503);
    expect(notReady.json<ErrorJson>().error.code).toBe('QOE_ERR_NOT_READY');
    ready = true;
    expect((await app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
  });

  it('unknown route → 404 with the error contract', async () => {
    const { app } = harness();
    const res = await app.inject({ method: 'GET', url: '/nope' });
    expect(res.statusCode).toBe(404);
    expect(res.json<ErrorJson>().error.code).toBe('QOE_ERR_NOT_FOUND');
  });

  it('without publish (a process not running the ingest role): no beacon routes and no validators compiled, the probes still', async () => {
    const compiled = vi.mocked(createBeaconValidators).mock.calls.length;
    const { app } = harness({ publish: undefined });
    expect(vi.mocked(createBeaconValidators).mock.calls.length).toBe(compiled);
    harness();
    expect(vi.mocked(createBeaconValidators).mock.calls.length).toBe(compiled + 1);
    const res = await post(app, { events: [ev(0)] });
    expect(res.statusCode).toBe(404);
    expect(res.json<ErrorJson>().error.code).toBe('QOE_ERR_NOT_FOUND');
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  });

  it("plugins' routes share the error contract (query validation → QOE_ERR_QUERY_BAD_PARAMETER)", async () => {
    const { app } = harness({
      plugins: [
        async function queryPlugin(instance) {
          const querystring = { type: 'object', required: ['from'], properties: { from: { type: 'integer' } } } as const;
          instance.get('/v1/things', { schema: { querystring } }, async () => ({ ok: true }));
        },
      ],
    });
    const res = await app.inject({ method: 'GET', url: '/v1/things?from=yesterday' });
    expect(res.statusCode).toBe(400);
    expect(res.json<ErrorJson>().error).toMatchObject({ code: 'QOE_ERR_QUERY_BAD_PARAMETER', field: '/from' });
    expect((await app.inject({ method: 'GET', url: '/v1/things?from=5' })).statusCode).toBe(200);
  });

  it('/openapi.json is OpenAPI 3 with /v1/beacons, the probes and plugin routes', async () => {
    const { app } = harness({
      plugins: [
        async function metricsPlugin(instance) {
          instance.get('/v1/metrics', { schema: { summary: 'test plugin route', response: { 200: { type: 'object' } } } }, async () => ({}));
        },
      ],
    });
    const res = await app.inject({ method: 'GET', url: '/openapi.json' });
    expect(res.statusCode).toBe(200);
    const doc = res.json<{ openapi: string; info: { title: string; version: string }; paths: Record<string, Record<string, OpenApiOperation>> }>();
    expect(doc.openapi).toMatch(/^3\.\d+\.\d+$/);
    expect(doc.info.title).toBeTruthy();
    expect(doc.info.version).toBeTruthy();
    expect(Object.keys(doc.paths).sort()).toEqual(['/healthz', '/readyz', '/v1/beacons', '/v1/metrics']);
    const op = doc.paths['/v1/beacons']?.post;
    expect(Object.keys(op?.requestBody?.content ?? {}).sort()).toEqual(['application/json', 'text/plain']);
    const body = op?.requestBody?.content['application/json']?.schema;
    expect(body?.properties?.events?.maxItems).toBe(MAX_EVENTS_PER_BATCH);
    expect(JSON.stringify(doc)).not.toContain('#/definitions');
    expect(Object.keys(op?.responses ?? {}).sort()).toEqual(['202', '400', '413', '415', '503']);
    // Structural OpenAPI 3 rules: every operation has responses, each with a description.
    for (const item of Object.values(doc.paths)) {
      for (const operation of Object.values(item)) {
        expect(operation.responses).toBeDefined();
        for (const r of Object.values(operation.responses ?? {})) expect(typeof r.description).toBe('string');
      }
    }
  });
});

interface OpenApiOperation {
  requestBody?: { content: Record<string, { schema?: { properties?: Record<string, { maxItems?: number }> } }> };
  responses?: Record<string, { description?: string }>;
}

describe('over a real socket', () => {
  it('listen({ port: 0 }) then fetch(): 202, sendBeacon-style text/plain, CORS preflight', async () => {
    const { app, published } = harness();
    await app.listen({ port: 0, host: '127.0.0.1' });
    const address = app.server.address();
    if (address === null || typeof address === 'string') throw new Error('no TCP address');
    const base = `http://127.0.0.1:${address.port}`;

    const json = await fetch(`${base}/v1/beacons`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(fixture) });
    expect(json.status).toBe(202);
    expect(await json.json()).toEqual({ accepted: fixture.events.length, rejected: [] });

    const beacon = await fetch(`${base}/v1/beacons`, { method: 'POST', body: JSON.stringify({ events: [ev(0)] }) });
    expect(beacon.status).toBe(202);

    const preflight = await fetch(`${base}/v1/beacons`, {
      method: 'OPTIONS',
      headers: { origin: 'https://player.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://player.example');

    const tooBig = await fetch(`${base}/v1/beacons`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'x'.repeat(70 * 1024) });
    expect(tooBig.status).toBe(413);
    expect(((await tooBig.json()) as ErrorJson).error.code).toBe('QOE_ERR_INGEST_BODY_TOO_LARGE');

    expect(published.flat()).toHaveLength(fixture.events.length + 1);
  });
});
