/** Steering HTTP routes over a real socket (fetch against listen({ port: 0 })), plus the kill switch end to end. */
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../lib/logger.js';
import { createSteeringService, type SteeringService } from './service.js';
import { ADMIN_TOKEN, READ_TOKEN, connect, demote, listenWithSteering, testConfig, waitFor } from './testing.js';

async function setup(): Promise<{ service: SteeringService; url: string }> {
  const service = createSteeringService({ log: silentLogger(), now: Date.now, config: testConfig(), expirySweepMs: 0 });
  await service.start();
  const { url } = await listenWithSteering(service);
  return { service, url };
}

async function getJson(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const res = await fetch(url, { headers });
  return { status: res.status, body: (await res.json()) as Record<string, unknown>, headers: res.headers };
}

function postKill(url: string, enabled: boolean, token?: string): Promise<Response> {
  return fetch(`${url}/v1/steering/kill-switch`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(token === undefined ? {} : { Authorization: `Bearer ${token}` }) },
    body: JSON.stringify({ enabled, actor: 'sre-oncall' }),
  });
}

describe('content-steering manifests', () => {
  it('HLS: neutral with the client kept on its pathway, then the decision once it arrives', async () => {
    const { service, url } = await setup();
    const path = '/v1/steering/hls?session=abc&_HLS_pathway=%22B%22&_HLS_throughput=5000000';
    const before = await getJson(`${url}${path}`, { 'X-Country': 'US' });
    expect(before.status).toBe(200);
    expect(before.headers.get('cache-control')).toBe('no-store');
    expect(before.body).toEqual({ VERSION: 1, TTL: 30, 'RELOAD-URI': 'hls?session=abc&_HLS_pathway=%22B%22&_HLS_throughput=5000000', 'PATHWAY-PRIORITY': ['B', 'A'] });

    service.submit(demote('US', 'cdn-b', ['cdn-a']));
    expect((await getJson(`${url}${path}`, { 'X-Country': 'US' })).body['PATHWAY-PRIORITY']).toEqual(['A', 'B']);
    // Another country is not steered.
    expect((await getJson(`${url}${path}`, { 'X-Country': 'GB' })).body['PATHWAY-PRIORITY']).toEqual(['B', 'A']);
  });

  it('DASH: scope from ?country=/&asn=, both priority fields, list-valued _DASH_pathway', async () => {
    const { service, url } = await setup();
    const path = '/v1/steering/dash?country=de&asn=3320&_DASH_pathway=%22A%22,%22B%22&_DASH_throughput=0,1000';
    expect((await getJson(`${url}${path}`)).body['PATHWAY-PRIORITY']).toEqual(['A', 'B']);
    service.submit(demote('DE', 'cdn-a', ['cdn-b'], { scope: { country: 'DE', asn: '3320' } }));
    const after = await getJson(`${url}${path}`);
    expect(after.body).toEqual({
      VERSION: 1, TTL: 30, 'RELOAD-URI': 'dash?country=de&asn=3320&_DASH_pathway=%22A%22,%22B%22&_DASH_throughput=0,1000',
      'PATHWAY-PRIORITY': ['B', 'A'], 'SERVICE-LOCATION-PRIORITY': ['B', 'A'],
    });
  });
});

describe('admin routes', () => {
  it('kill switch: 401 without a token, 403 with a read token, 200 with an admin token', async () => {
    const { url } = await setup();
    const none = await postKill(url, true);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(await none.json()).toMatchObject({ error: { code: 'QOE_ERR_STEERING_UNAUTHORIZED' } });
    const read = await postKill(url, true, READ_TOKEN);
    expect(read.status).toBe(403);
    expect(await read.json()).toMatchObject({ error: { code: 'QOE_ERR_STEERING_FORBIDDEN' } });
    const bad = await fetch(`${url}/v1/steering/kill-switch`, { method: 'POST', headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, 'Content-Type': 'application/json' }, body: '{"enabled":"yes"}' });
    expect(bad.status).toBe(400);
    expect((await getJson(`${url}/v1/steering/kill-switch`)).status).toBe(401);
    expect((await getJson(`${url}/v1/steering/kill-switch`, { Authorization: `Bearer ${READ_TOKEN}` })).body).toMatchObject({ enabled: false });
    const ok = await postKill(url, true, ADMIN_TOKEN);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ enabled: true, actor: 'sre-oncall', issued: 0 });
    expect((await getJson(`${url}/v1/steering/kill-switch`, { Authorization: `Bearer ${READ_TOKEN}` })).body).toMatchObject({ enabled: true, actor: 'sre-oncall' });
  });

  it('GET /v1/steering/decisions lists current decisions (read token)', async () => {
    const { service, url } = await setup();
    service.submit(demote('US', 'cdn-a', ['cdn-b']));
    service.submit(demote('US', 'cdn-b', ['cdn-a']));
    expect((await getJson(`${url}/v1/steering/decisions`)).status).toBe(401);
    const r = await getJson(`${url}/v1/steering/decisions?token=${READ_TOKEN}`);
    expect(r.body).toMatchObject({ version: 1, seq: 2, killSwitch: false, decisions: [{ seq: 2, scope: { country: 'US' } }] });
  });

  it('the kill switch resets every scope at once, subscribers receive it, and holds off the detector until turned off', async () => {
    const { service, url } = await setup();
    service.submit(demote('US', 'cdn-a', ['cdn-b']));
    service.submit(demote('GB', 'cdn-a', ['cdn-b']));
    service.submit(demote('FR', 'cdn-b', ['cdn-a']));
    const sub = connect(url, `?token=${READ_TOKEN}`);
    await waitFor('snapshot', () => sub.messages.length === 1);

    const on = await postKill(url, true, ADMIN_TOKEN);
    expect(await on.json()).toMatchObject({ enabled: true, issued: 3 });
    await waitFor('kill switch decisions', () => sub.decisionSeqs().length === 3);
    const pushed = sub.messages.slice(1).map((m) => m.decision);
    expect(pushed.map((d) => d?.action)).toEqual(['kill_switch', 'kill_switch', 'kill_switch']);
    expect(pushed.map((d) => d?.scope.country).sort()).toEqual(['FR', 'GB', 'US']);
    expect(pushed.every((d) => JSON.stringify(d?.priority) === JSON.stringify(['cdn-a', 'cdn-b']))).toBe(true);
    expect((await getJson(`${url}/v1/steering/hls?country=FR`)).body['PATHWAY-PRIORITY']).toEqual(['A', 'B']);

    // Recorded, not applied.
    expect(service.submit(demote('FR', 'cdn-a', ['cdn-b'])).outcome).toBe('suppressed');
    expect((await getJson(`${url}/v1/steering/hls?country=FR`)).body['PATHWAY-PRIORITY']).toEqual(['A', 'B']);
    expect(service.stats()).toMatchObject({ suppressed: 1, lastSeq: 6 });

    await postKill(url, false, ADMIN_TOKEN);
    expect(service.submit(demote('FR', 'cdn-a', ['cdn-b'])).outcome).toBe('applied');
    await waitFor('detector decision after the switch is off', () => sub.decisionSeqs().length === 4);
    expect((await getJson(`${url}/v1/steering/hls?country=FR`)).body['PATHWAY-PRIORITY']).toEqual(['B', 'A']);
  });
});
