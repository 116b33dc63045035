/** WS /v1/steering/stream over real sockets: the ingest app listening on port 0, the `ws` client. */
import { request } from 'node:http';
import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../lib/logger.js';
import { createSteeringService, type SteeringService } from './service.js';
import { CLOSE_SLOW_CONSUMER, type StreamOptions } from './stream.js';
import { READ_TOKEN, connect, demote, listenWithSteering, testConfig, waitFor } from './testing.js';

async function setup(streamOpts: StreamOptions = {}, historyCapacity?: number): Promise<{ service: SteeringService; url: string; stats: () => ReturnType<Awaited<ReturnType<typeof listenWithSteering>>['stream']['stats']> }> {
  const service = createSteeringService({ log: silentLogger(), now: Date.now, config: testConfig(), expirySweepMs: 0, historyCapacity });
  await service.start();
  const { url, stream } = await listenWithSteering(service, streamOpts);
  return { service, url, stats: stream.stats };
}

/** Raw upgrade request: the status line the server answers with, read before any WebSocket exists. */
function upgradeStatus(url: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; wwwAuthenticate: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, {
      headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', ...headers },
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, body: '', wwwAuthenticate: undefined });
    });
    req.on('response', (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, wwwAuthenticate: res.headers['www-authenticate'] }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('steering stream: auth before upgrade', () => {
  it('answers 401 (no WebSocket) without a token or with a wrong one; 101 with a header or query token', async () => {
    const { url } = await setup();
    const none = await upgradeStatus(url, '/v1/steering/stream');
    expect(none.status).toBe(401);
    expect(none.wwwAuthenticate).toMatch(/^Bearer/);
    expect(JSON.parse(none.body)).toMatchObject({ error: { code: 'QOE_ERR_STEERING_UNAUTHORIZED' } });
    expect((await upgradeStatus(url, '/v1/steering/stream', { Authorization: 'Bearer nope-nope-nope-nope' })).status).toBe(401);
    expect((await upgradeStatus(url, '/v1/steering/stream?token=nope')).status).toBe(401);
    expect((await upgradeStatus(url, '/v1/steering/stream', { Authorization: `Bearer ${READ_TOKEN}` })).status).toBe(101);
    expect((await upgradeStatus(url, `/v1/steering/stream?token=${READ_TOKEN}`)).status).toBe(101);
    expect((await upgradeStatus(url, `/v1/steering/stream?token=${READ_TOKEN}&since=-1`)).status).toBe(400);
    expect((await upgradeStatus(url, `/v1/other?token=${READ_TOKEN}`)).status).toBe(404);
  });

  it('answers 503 before upgrade at the subscriber bound', async () => {
    const { url } = await setup({ maxSubscribers: 1 });
    const first = connect(url, `?token=${READ_TOKEN}`);
    await waitFor('first snapshot', () => first.messages.length === 1);
    expect((await upgradeStatus(url, `/v1/steering/stream?token=${READ_TOKEN}`)).status).toBe(503);
  });
});

describe('steering stream: snapshot, live, filters, resume', () => {
  it('sends a snapshot of current decisions, then live decisions in seq order', async () => {
    const { service, url } = await setup();
    service.submit(demote('US', 'cdn-a', ['cdn-b']));
    service.submit(demote('GB', 'cdn-b', ['cdn-a']));
    const c = connect(url, '', { headers: { Authorization: `Bearer ${READ_TOKEN}` } });
    await waitFor('snapshot', () => c.messages.length === 1);
    expect(c.messages[0]).toMatchObject({ version: 1, type: 'snapshot', seq: 2, killSwitch: false });
    expect(c.messages[0]?.decisions?.map((d) => d.scope.country)).toEqual(['US', 'GB']);
    service.submit(demote('FR', 'cdn-a', ['cdn-b']));
    service.submit(demote('US', 'cdn-b', ['cdn-a']));
    await waitFor('live decisions', () => c.decisionSeqs().length === 2);
    expect(c.decisionSeqs()).toEqual([3, 4]);
    expect(c.messages[1]).toMatchObject({ version: 1, type: 'decision', decision: { scope: { country: 'FR' } } });
  });

  it('filters by countries and cdns, in the snapshot and live', async () => {
    const { service, url } = await setup();
    service.submit(demote('US', 'cdn-a', ['cdn-b']));
    service.submit(demote('GB', 'cdn-c', ['cdn-d']));
    const us = connect(url, `?token=${READ_TOKEN}&countries=us,FR`);
    const cdnC = connect(url, `?token=${READ_TOKEN}&cdns=cdn-c`);
    await waitFor('snapshots', () => us.messages.length === 1 && cdnC.messages.length === 1);
    expect(us.messages[0]?.decisions?.map((d) => d.scope.country)).toEqual(['US']);
    expect(cdnC.messages[0]?.decisions?.map((d) => d.scope.country)).toEqual(['GB']);
    service.submit(demote('GB', 'cdn-a', ['cdn-b'])); // seq 3: neither
    service.submit(demote('FR', 'cdn-c', ['cdn-a'])); // seq 4: both
    service.submit(demote('US', 'cdn-b', ['cdn-a'])); // seq 5: us only
    await waitFor('filtered live', () => us.decisionSeqs().length === 2 && cdnC.decisionSeqs().length === 1);
    expect(us.decisionSeqs()).toEqual([4, 5]);
    expect(cdnC.decisionSeqs()).toEqual([4]);
  });

  it('?since=<seq> resumes with every decision after seq, then live, without gaps or duplicates', async () => {
    const { service, url } = await setup();
    const first = connect(url, `?token=${READ_TOKEN}`);
    await waitFor('snapshot', () => first.messages.length === 1);
    for (let i = 0; i < 5; i += 1) service.submit(demote(i % 2 === 0 ? 'US' : 'GB', 'cdn-a', ['cdn-b']));
    await waitFor('first five', () => first.decisionSeqs().length === 5);
    const lastSeen = Math.max(...first.decisionSeqs());
    first.ws.close();
    for (let i = 0; i < 5; i += 1) service.submit(demote('FR', 'cdn-b', ['cdn-a']));
    const resumed = connect(url, `?token=${READ_TOKEN}&since=${lastSeen}`);
    // Decisions keep arriving while the resumed client catches up.
    for (let i = 0; i < 3; i += 1) service.submit(demote('DE', 'cdn-a', ['cdn-b']));
    await waitFor('resume + live', () => resumed.decisionSeqs().length === 8);
    expect(resumed.messages.every((m) => m.type === 'decision')).toBe(true);
    expect(resumed.decisionSeqs()).toEqual([6, 7, 8, 9, 10, 11, 12, 13]);
  });

  it('an unretained seq gets an error telling the client to re-snapshot, then the snapshot', async () => {
    const { service, url } = await setup({}, 3);
    for (let i = 0; i < 10; i += 1) service.submit(demote(i % 2 === 0 ? 'US' : 'GB', 'cdn-a', ['cdn-b']));
    const c = connect(url, `?token=${READ_TOKEN}&since=2`);
    await waitFor('error + snapshot', () => c.messages.length === 2);
    expect(c.messages[0]).toMatchObject({ version: 1, type: 'error', code: 'QOE_ERR_STEERING_SEQ_UNAVAILABLE' });
    expect(c.messages[0]?.message).toMatch(/re-snapshot/);
    expect(c.messages[1]).toMatchObject({ type: 'snapshot', seq: 10 });
    service.submit(demote('FR', 'cdn-a', ['cdn-b']));
    await waitFor('live after snapshot', () => c.decisionSeqs().length === 1);
    expect(c.decisionSeqs()).toEqual([11]);
  });
});

describe('steering stream: bounds', () => {
  it('cuts off a subscriber that stops reading (4008) while a normal one receives everything', async () => {
    const { service, url, stats } = await setup({ maxBufferedBytes: 256 * 1024, closeGraceMs: 50 });
    const normal = connect(url, `?token=${READ_TOKEN}`);
    const slow = connect(url, `?token=${READ_TOKEN}`);
    await waitFor('both snapshots', () => normal.messages.length === 1 && slow.messages.length === 1);
    // The slow client's kernel buffers fill, then the server's ws buffer grows past the bound.
    (slow.ws as unknown as { _socket: Socket })._socket.pause();
    const detail = 'x'.repeat(32 * 1024);
    let sent = 0;
    while (stats().slowDisconnects === 0) {
      if (sent > 4000) throw new Error('slow subscriber never cut off');
      for (let i = 0; i < 20; i += 1) {
        service.submit(demote('US', 'cdn-a', ['cdn-b'], { reason: { metric: 'vsf_rate', cdn: 'cdn-a', value: 1, baseline: 0, score: 1, windowStartMs: 0, windowMs: 0, detail } }));
        sent += 1;
      }
      await new Promise((r) => setImmediate(r));
    }
    expect(stats().subscribers).toBe(1);
    for (let i = 0; i < 5; i += 1) service.submit(demote('GB', 'cdn-a', ['cdn-b']));
    sent += 5;
    await waitFor('normal client got every decision', () => normal.decisionSeqs().length === sent, 30_000);
    expect(normal.decisionSeqs()).toEqual(Array.from({ length: sent }, (_, i) => i + 1));
    expect(normal.closed).toBeUndefined();
    (slow.ws as unknown as { _socket: Socket })._socket.resume();
    await waitFor('slow client closed', () => slow.closed !== undefined, 10_000);
    expect([CLOSE_SLOW_CONSUMER, 1006]).toContain(slow.closed?.code);
  });

  it('terminates a peer that does not answer pings; a live one stays', async () => {
    const { url, stats } = await setup({ pingIntervalMs: 50 });
    const live = connect(url, `?token=${READ_TOKEN}`);
    const dead = connect(url, `?token=${READ_TOKEN}`, { autoPong: false });
    await waitFor('dead peer terminated', () => dead.closed !== undefined, 5000);
    expect(stats().deadPeers).toBe(1);
    await new Promise((r) => setTimeout(r, 200)); // several more ping rounds
    expect(live.closed).toBeUndefined();
    expect(stats().subscribers).toBe(1);
  });
});
