// First: kafkajs patched before anything loads it, as the Kafka bus requires (lib/bus/kafkajs-patches.ts).
import '../../lib/bus/kafkajs-patches.js';
import { Agent, request } from 'node:http';
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { decodeSessionEvent } from '../../schemas/codec.js';

/**
 * A beacon client for durability tests: posts batches of native events with unique
 * (sessionId, seq) pairs over real sockets and books every event by how its POST was answered, so a
 * test can compare what ingest acknowledged with what is on qoe.beacons.v1.
 */

export type PostOutcome = 'accepted' | 'refused' | 'failed';

export interface PostResult {
  outcome: PostOutcome;
  status: number;
  retryAfter: string | undefined;
  ms: number;
  keys: string[];
}

export interface BeaconLedger {
  /** (sessionId#seq) answered 202. */
  accepted: Set<string>;
  /** Answered 503 (with Retry-After). */
  refused: Set<string>;
  /** No answer or another status: outcome unknown to the client. */
  failed: Set<string>;
  /** Latency of every answer, by outcome. */
  latencies: Record<PostOutcome, number[]>;
  /** Any non-202/503 status seen, with its count. */
  otherStatuses: Map<number, number>;
}

export function createLedger(): BeaconLedger {
  return { accepted: new Set(), refused: new Set(), failed: new Set(), latencies: { accepted: [], refused: [], failed: [] }, otherStatuses: new Map() };
}

const agent = new Agent({ keepAlive: true, maxSockets: 256 });

function beaconBody(sessionId: string, firstSeq: number, n: number, ts: number): string {
  const events = [];
  for (let i = 0; i < n; i++) {
    const seq = firstSeq + i;
    events.push(seq === 0 ? { sessionId, seq, ts: ts + i, type: 'play_request', playheadMs: 0 } : { sessionId, seq, ts: ts + i, type: 'heartbeat', playheadMs: seq * 1000, bitrateKbps: 2400 });
  }
  return JSON.stringify({ dims: { cdn: 'cdn-a', country: 'FR', deviceType: 'desktop' }, events });
}

/** One POST /v1/beacons; never throws (a socket error or client timeout is outcome 'failed'). */
export function postBatch(
  url: string,
  batch: { sessionId: string; firstSeq: number; n: number; ts?: number },
  opts: { timeoutMs?: number } = {},
): Promise<PostResult> {
  const body = beaconBody(batch.sessionId, batch.firstSeq, batch.n, batch.ts ?? Date.now());
  const keys = Array.from({ length: batch.n }, (_, i) => `${batch.sessionId}#${batch.firstSeq + i}`);
  const t0 = performance.now();
  return new Promise((resolve) => {
    let settled = false;
    const done = (outcome: PostOutcome, status: number, retryAfter: string | undefined): void => {
      if (settled) return;
      settled = true;
      resolve({ outcome, status, retryAfter, ms: performance.now() - t0, keys });
    };
    const req = request(`${url}/v1/beacons`, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        const retryAfter = res.headers['retry-after'];
        done(status === 202 ? 'accepted' : status === 503 ? 'refused' : 'failed', status, typeof retryAfter === 'string' ? retryAfter : undefined);
      });
      res.on('error', () => done('failed', 0, undefined));
    });
    req.on('error', () => done('failed', 0, undefined));
    if (opts.timeoutMs !== undefined) {
      req.setTimeout(opts.timeoutMs, () => {
        req.destroy();
        done('failed', 0, undefined);
      });
    }
    req.end(body);
  });
}

/** Adds `from`'s booked events to `into`. */
export function merge(into: BeaconLedger, from: BeaconLedger): void {
  for (const k of ['accepted', 'refused', 'failed'] as const) {
    for (const key of from[k]) into[k].add(key);
    into.latencies[k].push(...from.latencies[k]);
  }
}

export function book(ledger: BeaconLedger, r: PostResult): void {
  const set = ledger[r.outcome];
  for (const k of r.keys) set.add(k);
  ledger.latencies[r.outcome].push(r.ms);
  if (r.status !== 202 && r.status !== 503) ledger.otherStatuses.set(r.status, (ledger.otherStatuses.get(r.status) ?? 0) + 1);
}

/**
 * `clients` loops posting `eventsPerPost` events of fresh sessions until `until()` says stop; every
 * answer is booked. Returns the number of POSTs made.
 */
export async function postLoop(
  url: string,
  ledger: BeaconLedger,
  opts: { clients: number; eventsPerPost: number; until: () => boolean; prefix: string; timeoutMs?: number; pauseMs?: number },
): Promise<number> {
  let posts = 0;
  async function client(c: number): Promise<void> {
    for (let i = 0; !opts.until(); i++) {
      const r = await postBatch(url, { sessionId: `${opts.prefix}-${c}-${i}`, firstSeq: 0, n: opts.eventsPerPost }, opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs });
      posts += 1;
      book(ledger, r);
      if (opts.pauseMs !== undefined) await new Promise((res) => setTimeout(res, opts.pauseMs));
    }
  }
  await Promise.all(Array.from({ length: opts.clients }, (_, c) => client(c)));
  return posts;
}

/**
 * Every (sessionId#seq) on the topic with how many times it occurs (at how many offsets): a
 * read_committed kafkajs consumer in a throwaway group reads every partition from the start to the
 * end offsets taken first (independent of lib/bus, the code under test).
 */
export async function readBeaconKeys(brokers: string[], topic: string, timeoutMs = 60_000): Promise<Map<string, number>> {
  const kafka = new Kafka({ clientId: 'qoe-test-reader', brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const ends = new Map<number, number>();
  try {
    for (const o of await admin.fetchTopicOffsets(topic)) ends.set(o.partition, Number(o.high));
  } finally {
    await admin.disconnect();
  }
  const counts = new Map<string, number>();
  // A consumer group re-delivers what it read since its last commit after a rebalance (this one never
  // commits): each record is counted once by its position, so only a record written twice counts twice.
  const read = new Set<string>();
  let redelivered = 0;
  const next = new Map<number, number>([...ends.keys()].map((p) => [p, 0]));
  const done = (): boolean => [...ends].every(([p, end]) => (next.get(p) ?? 0) >= end);
  if (done()) return counts;
  const consumer = kafka.consumer({ groupId: `qoe-test-reader-${randomUUID()}`, readUncommitted: false, maxWaitTimeInMs: 200 });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    let finish: () => void = () => undefined;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          next.set(batch.partition, Math.max(next.get(batch.partition) ?? 0, Number(m.offset) + 1));
          const at = `${batch.partition}:${m.offset}`;
          if (read.has(at)) redelivered += 1;
          if (m.value === null || read.has(at)) continue;
          read.add(at);
          const e = decodeSessionEvent(m.value);
          const k = `${e.sessionId}#${e.seq}`;
          counts.set(k, (counts.get(k) ?? 0) + 1);
        }
        if (done()) finish();
      },
    });
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`reading ${topic} timed out at ${JSON.stringify([...next])} of ${JSON.stringify([...ends])}`);
      await Promise.race([finished, new Promise((r) => setTimeout(r, 200))]);
    }
  } finally {
    await consumer.disconnect();
  }
  if (redelivered > 0) console.log(`reading ${topic}: the consumer delivered ${redelivered} records a second time (counted once)`);
  return counts;
}

/** Compares the ledger with the topic: accepted events missing, duplicated, and unexpected ones. */
export function compareWithTopic(ledger: BeaconLedger, onTopic: Map<string, number>): { missing: string[]; duplicated: string[]; unexplained: string[]; refusedButWritten: number } {
  const missing: string[] = [];
  const duplicated: string[] = [];
  for (const k of ledger.accepted) {
    const n = onTopic.get(k) ?? 0;
    if (n === 0) missing.push(k);
    else if (n > 1) duplicated.push(k);
  }
  const unexplained: string[] = [];
  let refusedButWritten = 0;
  for (const [k, n] of onTopic) {
    if (ledger.accepted.has(k)) continue;
    if (n > 1) duplicated.push(k);
    if (ledger.refused.has(k) || ledger.failed.has(k)) refusedButWritten += 1;
    else unexplained.push(k);
  }
  return { missing, duplicated, unexplained, refusedButWritten };
}

export function percentile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
}
