import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { planBatches, type Batch } from './batching.js';
import type { SimEvent } from './emit.js';
import { generatePopulation } from './model.js';
import { createRng } from './prng.js';
import { beaconsUrl, parseRetryAfter, sendBatches, type FetchLike } from './send.js';
import { planRun, simulate, summaryLine } from './simulate.js';
import { canonicalTruth, canonicalWindows, replayEvents } from './testing/replay.js';

const START = 1_767_225_600_000;

function batchesFor(views: number, seed = 1): Batch[] {
  return planBatches(generatePopulation({ views, seed, startMs: START, periodMs: 60_000 }), { batchSize: 20, batchIntervalMs: 5000 });
}

type Answer = { status: number; body?: string; retryAfter?: string } | 'network-error';

/** A fake server: `answer` decides per POST; records the events of every 2xx-answered POST. */
function fakeServer(answer: (events: SimEvent[], n: number) => Answer) {
  const accepted: SimEvent[] = [];
  let calls = 0;
  let inflight = 0;
  let maxInflight = 0;
  const fetch: FetchLike = async (_url, init) => {
    inflight += 1;
    maxInflight = Math.max(maxInflight, inflight);
    await new Promise((r) => setImmediate(r));
    inflight -= 1;
    const events = (JSON.parse(init.body) as { events: SimEvent[] }).events;
    const a = answer(events, calls++);
    if (a === 'network-error') throw new Error('ECONNRESET');
    if (a.status >= 200 && a.status < 300) accepted.push(...events);
    return {
      status: a.status,
      headers: { get: (name: string) => (name.toLowerCase() === 'retry-after' ? (a.retryAfter ?? null) : null) },
      text: async () => a.body ?? JSON.stringify({ accepted: events.length, rejected: 0 }),
    };
  };
  return { fetch, accepted, stats: () => ({ calls, maxInflight }) };
}

function noSleep(log: number[] = []) {
  return async (ms: number): Promise<void> => {
    log.push(ms);
  };
}

describe('sendBatches', () => {
  it('retries 503 honouring Retry-After and never resends a batch answered 2xx', async () => {
    const batches = batchesFor(30);
    const seen = new Set<string>();
    const server = fakeServer((events) => {
      const key = `${events[0]?.sessionId}:${events[0]?.seq}`;
      if (!seen.has(key)) {
        seen.add(key);
        return { status: 503, retryAfter: '2' };
      }
      return { status: 202 };
    });
    const sleeps: number[] = [];
    const stats = await sendBatches(batches, { target: 'http://x', fetch: server.fetch, sleep: noSleep(sleeps) });
    const events = batches.reduce((n, b) => n + b.events.length, 0);
    expect(stats).toMatchObject({ batches: batches.length, events, accepted: events, rejected: 0, retries: batches.length, requests: 2 * batches.length, failedBatches: 0 });
    expect(new Set(sleeps)).toEqual(new Set([2000]));
    const keys = server.accepted.map((e) => `${e.sessionId}:${e.seq}`);
    expect(new Set(keys).size).toBe(keys.length);
    expect(keys.length).toBe(events);
  });

  it('keeps at most `concurrency` POSTs in flight and each view in seq order despite random failures', async () => {
    const batches = batchesFor(40, 2);
    const rng = createRng(1, 'failures');
    const server = fakeServer(() => {
      const r = rng();
      if (r < 0.15) return { status: 503 };
      if (r < 0.2) return { status: 429, retryAfter: '0' };
      if (r < 0.25) return 'network-error';
      return { status: 202 };
    });
    const stats = await sendBatches(batches, { target: 'http://x', concurrency: 3, maxRetries: 50, fetch: server.fetch, sleep: noSleep() });
    expect(server.stats().maxInflight).toBeLessThanOrEqual(3);
    expect(server.stats().maxInflight).toBeGreaterThan(1);
    expect(stats.failedBatches).toBe(0);
    expect(stats.retries).toBeGreaterThan(0);
    const next = new Map<string, number>();
    for (const e of server.accepted) {
      expect(e.seq).toBe(next.get(e.sessionId) ?? 0);
      next.set(e.sessionId, e.seq + 1);
    }
    expect(server.accepted.length).toBe(stats.events);
  });

  it('starts no new batch while one waits to be retried', async () => {
    const batches = batchesFor(20, 6).slice(0, 12);
    const order: string[] = [];
    let failedOnce = false;
    const server = fakeServer((events) => {
      const key = `${events[0]?.sessionId}:${events[0]?.seq}`;
      order.push(key);
      if (!failedOnce) {
        failedOnce = true;
        return { status: 503, retryAfter: '1' };
      }
      return { status: 202 };
    });
    await sendBatches(batches, { target: 'http://x', concurrency: 4, fetch: server.fetch, sleep: noSleep() });
    const first = `${batches[0]?.events[0]?.sessionId}:${batches[0]?.events[0]?.seq}`;
    const fifth = `${batches[4]?.events[0]?.sessionId}:${batches[4]?.events[0]?.seq}`;
    expect(order.lastIndexOf(first)).toBeGreaterThan(0);
    expect(order.indexOf(fifth)).toBeGreaterThan(order.lastIndexOf(first));
  });

  it('gives up on non-retryable answers and after maxRetries, counting the lost events', async () => {
    const batches = batchesFor(5, 3);
    const total = batches.reduce((n, b) => n + b.events.length, 0);
    const bad = await sendBatches(batches, { target: 'http://x', maxConsecutiveFailures: 1000, fetch: fakeServer(() => ({ status: 400, body: 'nope' })).fetch, sleep: noSleep() });
    expect(bad).toMatchObject({ failedBatches: batches.length, failedEvents: total, retries: 0, accepted: 0 });
    expect(bad.lastError).toMatch(/HTTP 400/);
    const busy = await sendBatches(batches.slice(0, 2), { target: 'http://x', maxRetries: 3, maxConsecutiveFailures: 1000, fetch: fakeServer(() => ({ status: 503 })).fetch, sleep: noSleep() });
    expect(busy).toMatchObject({ failedBatches: 2, retries: 6, requests: 8 });
  });

  it('stops the run after maxConsecutiveFailures batches in a row are given up', async () => {
    const batches = batchesFor(10, 5);
    const total = batches.reduce((n, b) => n + b.events.length, 0);
    const server = fakeServer(() => 'network-error');
    const stats = await sendBatches(batches, { target: 'http://x', maxRetries: 1, concurrency: 1, fetch: server.fetch, sleep: noSleep() });
    expect(stats.aborted).toBe(true);
    expect(server.stats().calls).toBe(3 * 2);
    expect(stats).toMatchObject({ failedBatches: batches.length, failedEvents: total, accepted: 0 });
    expect(summaryLine({ ...stats, views: 10, dryRun: false })).toMatch(/^simulate \(ABORTED\)/);
  });

  it('reads accepted/rejected as counts or rejection lists', async () => {
    const batches = batchesFor(3, 4);
    const lists = fakeServer((events) => ({ status: 202, body: JSON.stringify({ accepted: events.length - 1, rejected: [{ index: 0 }] }) }));
    const stats = await sendBatches(batches, { target: 'http://x', fetch: lists.fetch, sleep: noSleep() });
    expect(stats.rejected).toBe(batches.length);
    expect(stats.accepted + stats.rejected).toBe(stats.events);
  });

  it('paces by simulated time with realtime', async () => {
    const batches: Batch[] = [0, 1_000, 1_000, 4_000].map((sendAtMs, i) => ({ sessionId: `s${i}`, sendAtMs, events: [{ sessionId: `s${i}`, seq: 0, ts: sendAtMs, type: 'play_request' }] }));
    let clock = 0;
    const sleeps: number[] = [];
    await sendBatches(batches, {
      target: 'http://x',
      realtime: true,
      fetch: fakeServer(() => ({ status: 202 })).fetch,
      now: () => clock,
      sleep: async (ms) => {
        sleeps.push(ms);
        clock += ms;
      },
    });
    expect(sleeps).toEqual([1_000, 3_000]);
    // With an origin before the first batch, the first one waits too.
    clock = 0;
    sleeps.length = 0;
    await sendBatches(batches, { target: 'http://x', realtime: true, realtimeOriginMs: -500, fetch: fakeServer(() => ({ status: 202 })).fetch, now: () => clock, sleep: async (ms) => { sleeps.push(ms); clock += ms; } });
    expect(sleeps).toEqual([500, 1_000, 3_000]);
  });
});

describe('helpers', () => {
  it('parses Retry-After seconds and HTTP dates', () => {
    expect(parseRetryAfter('3', 0)).toBe(3000);
    expect(parseRetryAfter(null, 0)).toBeNull();
    expect(parseRetryAfter('soon', 0)).toBeNull();
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', now)).toBe(5000);
  });

  it('builds the beacons URL once', () => {
    expect(beaconsUrl('http://h:1')).toBe('http://h:1/v1/beacons');
    expect(beaconsUrl('http://h:1/')).toBe('http://h:1/v1/beacons');
    expect(beaconsUrl('http://h:1/v1/beacons')).toBe('http://h:1/v1/beacons');
  });
});

describe('simulate against a real socket', () => {
  let close: (() => Promise<void>) | null = null;
  afterEach(async () => {
    await close?.();
    close = null;
  });

  it('delivers every event once through 503s; the received events replay to the truth', async () => {
    const received: SimEvent[] = [];
    let n = 0;
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        n += 1;
        if (req.method !== 'POST' || req.url !== '/v1/beacons') {
          res.writeHead(404).end();
          return;
        }
        if (n % 7 === 0) {
          res.writeHead(503, { 'retry-after': '0' }).end();
          return;
        }
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { events: SimEvent[] };
        received.push(...body.events);
        res.writeHead(202, { 'content-type': 'application/json' }).end(JSON.stringify({ accepted: body.events.length, rejected: 0 }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    close = () => new Promise<void>((resolve) => server.close(() => resolve()));
    const { port } = server.address() as AddressInfo;

    const opts = { views: 60, seed: 42, startMs: START, periodMs: 60_000, requests: true, concurrency: 4, batchSize: 10 };
    const { truth, stats } = await simulate({ ...opts, target: `http://127.0.0.1:${port}` });
    expect(stats.failedEvents).toBe(0);
    expect(stats.retries).toBeGreaterThan(0);
    expect(stats.accepted).toBe(truth.events);
    expect(received.length).toBe(truth.events);
    expect(new Set(received.map((e) => `${e.sessionId}:${e.seq}`)).size).toBe(received.length);
    expect(canonicalWindows(replayEvents(received, truth.windowMs))).toEqual(canonicalTruth(truth));
    expect(truth).toEqual(planRun(opts).truth);
    expect(summaryLine(stats)).toMatch(/^simulate: views=60 events=\d+ batches=\d+ requests=\d+ retries=\d+ accepted=\d+ rejected=0 failed=0/);
  });

  it('is a dry run without a target', async () => {
    const { truth, stats } = await simulate({ views: 5, seed: 1, startMs: START });
    expect(stats.dryRun).toBe(true);
    expect(stats.events).toBe(truth.events);
    expect(summaryLine(stats)).toMatch(/dry run/);
  });
});
