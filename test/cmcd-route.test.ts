import { afterEach, describe, expect, it } from 'vitest';
import { QoeError } from '../lib/errors.js';
import { silentLogger } from '../lib/logger.js';
import type { SessionEvent } from '../schemas/events.js';
import { buildApp, type IngestApp } from '../ingest/app.js';
import { clientHash } from '../ingest/client-hash.js';
import { cmcdRoutes, type CmcdRouteDeps } from '../ingest/cmcd/route.js';
import { emptyCmcdCounters } from '../ingest/cmcd/translate.js';

const NOW = 1_767_225_700_000;
const SECRET = 'test-secret';
const UA = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36';

const apps: IngestApp[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

function harness(overrides: Partial<CmcdRouteDeps> = {}) {
  const published: SessionEvent[][] = [];
  const counters = emptyCmcdCounters();
  const deps: CmcdRouteDeps = {
    publish: async (events) => {
      published.push(events);
    },
    now: () => NOW,
    ipHashSecret: SECRET,
    log: silentLogger(),
    countryHeader: 'CloudFront-Viewer-Country',
    maxBodyBytes: 4096,
    counters,
    ...overrides,
  };
  const app = buildApp({
    http: { port: 0, host: '127.0.0.1', bodyLimitBytes: 64 * 1024, corsOrigins: ['https://player.example'], trustProxy: false },
    log: silentLogger(),
    ipHashSecret: SECRET,
    publish: async () => {},
    isReady: () => true,
    now: () => NOW,
    plugins: [cmcdRoutes(deps)],
  });
  apps.push(app);
  return { app, published, counters };
}

const GOOD = ['e=ps,sid="s1",sn=0,sta=s,ts=1767225600000,v=2', 'e=ps,msd=700,sid="s1",sn=1,sta=p,ts=1767225600700,v=2'];

function post(app: IngestApp, body: string, headers: Record<string, string> = {}, url = '/v1/cmcd') {
  return app.inject({ method: 'POST', url, headers: { 'content-type': 'application/cmcd', 'user-agent': UA, 'cloudfront-viewer-country': 'fr', ...headers }, payload: body });
}

describe('POST /v1/cmcd', () => {
  it('204; records translated with request dims and the client hash, published once', async () => {
    const { app, published } = harness();
    const res = await post(app, GOOD.join('\n') + '\n');
    expect(res.statusCode).toBe(204);
    expect(res.body).toBe('');
    expect(published).toHaveLength(1);
    expect(published[0]?.map((e) => e.type)).toEqual(['play_request', 'first_frame']);
    expect(published[0]?.[1]).toMatchObject({ startupMs: 700, receivedAtMs: NOW, clientHash: clientHash(SECRET, '127.0.0.1'), source: 'cmcd' });
    expect(published[0]?.[1]?.dims).toMatchObject({ country: 'FR', browser: 'Chrome', os: 'Windows', deviceType: 'desktop' });
  });

  it.each(['text/cmcd', 'text/plain;charset=UTF-8', 'application/cmcd; charset=utf-8'])('accepts %s', async (type) => {
    const { app, published } = harness();
    const res = await post(app, GOOD[0] ?? '', { 'content-type': type });
    expect(res.statusCode).toBe(204);
    expect(published).toHaveLength(1);
  });

  it('mixed good and bad records: 204, the good ones published, CMCD-Rejected counts the bad ones', async () => {
    const { app, published } = harness();
    const res = await post(app, [GOOD[0], '{"not":"cmcd"}', 'e=t,sn=0,ts=1,v=2', GOOD[1]].join('\r\n'));
    expect(res.statusCode).toBe(204);
    expect(res.headers['cmcd-rejected']).toBe('2');
    expect(published[0]).toHaveLength(2);
  });

  it('a v=3 record is ignored whole, not rejected; duplicates are ignored too', async () => {
    const { app, published, counters } = harness();
    const res = await post(app, [GOOD[0], 'e=ps,sid="s1",sn=1,sta=p,ts=1767225600700,v=3', GOOD[0]].join('\n'));
    expect(res.statusCode).toBe(204);
    expect(res.headers['cmcd-ignored']).toBe('2');
    expect(res.headers['cmcd-rejected']).toBeUndefined();
    expect(published[0]).toHaveLength(1);
    expect(counters.duplicates).toBe(1);
  });

  it('only v=3 records → 204 and nothing published', async () => {
    const { app, published } = harness();
    const res = await post(app, 'e=t,sid="s",ts=1,v=3');
    expect(res.statusCode).toBe(204);
    expect(published).toHaveLength(0);
  });

  it('every record bad → 400 with the rejected lines; empty body → 400', async () => {
    const { app, published } = harness();
    // 'garbage' alone would be a valid dictionary (a bare key = true) without sid: use invalid syntax.
    const res = await post(app, 'Garbage!\n\ne=t,ts=1,v=2');
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({
      error: { code: 'QOE_ERR_INGEST_VALIDATION', details: { rejected: [{ line: 1, code: 'syntax' }, { line: 3, code: 'missing_sid' }] } },
    });
    expect((await post(app, '')).statusCode).toBe(400);
    expect(published).toHaveLength(0);
  });

  it('publish refused with a retriable error → 503 + Retry-After; a non-retriable one → 500', async () => {
    const { app } = harness({ publish: async () => Promise.reject(new QoeError('QOE_ERR_BUS_FULL')) });
    const res = await post(app, GOOD[0] ?? '');
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('1');
    expect(res.json()).toMatchObject({ error: { code: 'QOE_ERR_INGEST_OVERLOADED', details: { cause: 'QOE_ERR_BUS_FULL' } } });

    const { app: app2 } = harness({ publish: async () => Promise.reject(new Error('boom')) });
    const res2 = await post(app2, GOOD[0] ?? '');
    expect(res2.statusCode).toBe(500);
    expect(res2.json()).toMatchObject({ error: { code: 'QOE_ERR_INTERNAL' } });
  });

  it('415 for other content types, 413 above maxBodyBytes', async () => {
    const { app } = harness();
    const json = await post(app, '{"events":[]}', { 'content-type': 'application/json' });
    expect(json.statusCode).toBe(415);
    expect(json.json()).toMatchObject({ error: { code: 'QOE_ERR_INGEST_UNSUPPORTED_MEDIA_TYPE' } });
    expect((await post(app, 'x', { 'content-type': 'application/xml' })).statusCode).toBe(415);
    const big = await post(app, `${GOOD[0]}\n`.repeat(100));
    expect(big.statusCode).toBe(413);
    expect(big.json()).toMatchObject({ error: { code: 'QOE_ERR_INGEST_BODY_TOO_LARGE', details: { limitBytes: 4096 } } });
  });

  it('text/plain stays JSON on /v1/beacons (the CMCD parser is encapsulated)', async () => {
    const { app } = harness();
    const res = await app.inject({ method: 'POST', url: '/v1/beacons', headers: { 'content-type': 'text/plain' }, payload: 'not json' });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: { code: 'QOE_ERR_INGEST_MALFORMED_JSON' } });
  });

  it('CORS preflight for application/cmcd is answered by the app', async () => {
    const { app } = harness();
    const res = await app.inject({
      method: 'OPTIONS',
      url: '/v1/cmcd',
      headers: { origin: 'https://player.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    expect(res.statusCode).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBe('https://player.example');
    expect(String(res.headers['access-control-allow-headers']).toLowerCase()).toContain('content-type');
  });

  it('is documented in /openapi.json', async () => {
    const { app } = harness();
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json() as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/cmcd', '/v1/cmcd/request']));
  });
});

describe('/v1/cmcd/request (request mode)', () => {
  it('GET with the URL-encoded CMCD query parameter', async () => {
    const { app, published } = harness();
    const cmcd = encodeURIComponent('br=(3000;v),cid="c1",d=4000,ot=v,rc=200,sid="s1",sn=0,v=2');
    const res = await app.inject({ method: 'GET', url: `/v1/cmcd/request?CMCD=${cmcd}`, headers: { 'user-agent': UA } });
    expect(res.statusCode).toBe(204);
    expect(published[0]?.[0]).toMatchObject({ type: 'request', sessionId: 's1#request', httpStatus: 200, bitrateKbps: 3000 });
    expect(published[0]?.[0]?.dims.contentId).toBe('c1');
  });

  it('CMCD-* header shards are joined into one record (CTA-5004-B 8.1.1)', async () => {
    const { app, published } = harness();
    const res = await app.inject({
      method: 'POST',
      url: '/v1/cmcd/request',
      headers: {
        'CMCD-Request': 'bl=(2000),dl=1000,mtp=(15000),nor=("next-seg.mp4"),sta=p',
        'CMCD-Object': 'br=(3000;v),d=4000,ot=v,tb=(6000;v)',
        'CMCD-Status': 'rtp=12000',
        'CMCD-Session': 'cid="content-id-123",sf=d,sid="session-id-123",st=v,v=2',
      },
    });
    expect(res.statusCode).toBe(204);
    expect(published[0]).toHaveLength(1);
    expect(published[0]?.[0]).toMatchObject({ type: 'request', sessionId: 'session-id-123#request', bitrateKbps: 3000, httpStatus: null });
    expect(published[0]?.[0]?.dims).toMatchObject({ contentId: 'content-id-123', streamType: 'vod' });
  });

  it('POST body lines from a log shipper; nothing at all → 400', async () => {
    const { app, published } = harness();
    const body = ['br=(3000;v),ot=v,rc=200,sid="a",sn=0,v=2', 'br=(3000;v),ot=v,rc=503,sid="a",sn=1,v=2'].join('\n');
    expect((await post(app, body, {}, '/v1/cmcd/request')).statusCode).toBe(204);
    expect(published[0]?.map((e) => e.httpStatus)).toEqual([200, 503]);
    expect((await app.inject({ method: 'GET', url: '/v1/cmcd/request' })).statusCode).toBe(400);
  });
});

describe('over a real socket', () => {
  it('POST /v1/cmcd → 204', async () => {
    const { app, published } = harness();
    const address = await app.listen({ port: 0, host: '127.0.0.1' });
    const res = await fetch(`${address}/v1/cmcd`, { method: 'POST', headers: { 'content-type': 'application/cmcd' }, body: `${GOOD.join('\n')}\n` });
    expect(res.status).toBe(204);
    expect(published[0]?.map((e) => e.type)).toEqual(['play_request', 'first_frame']);
  });
});
