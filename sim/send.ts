/**
 * The HTTP shell: POST planned batches to /v1/beacons with bounded concurrency, as fast as the server
 * takes them (or paced by simulated time with `realtime`). 503/429/5xx and network errors are retried,
 * honouring Retry-After, a bounded number of times; a batch answered 2xx is never sent again; a view's
 * batches go out one after another so its seq order is kept on the wire. While a batch waits to be
 * retried no new batch is started: the server asked us to back off, and a fast replay that kept going
 * would leave the retried events far behind the pipeline's watermark (counted late).
 */
import type { Batch } from './batching.js';

export type FetchLike = (url: string, init: { method: string; headers: Record<string, string>; body: string; signal?: AbortSignal }) => Promise<{
  status: number;
  headers: { get(name: string): string | null };
  text(): Promise<string>;
}>;

export interface SendOptions {
  /** Base URL (…/v1/beacons is appended unless already there). */
  target: string;
  /** Maximum POSTs in flight. Default 8. */
  concurrency?: number;
  /** Retries per batch after the first attempt. Default 8. */
  maxRetries?: number;
  /** Cap on one wait (Retry-After or backoff). Default 30 s. */
  maxRetryDelayMs?: number;
  /** First backoff when no Retry-After is given; doubles per retry. Default 200 ms. */
  baseRetryDelayMs?: number;
  /** Stop the run after this many batches in a row were given up (server down, wrong URL). Default 3. */
  maxConsecutiveFailures?: number;
  /** Per-request timeout. Default 30 s. */
  timeoutMs?: number;
  /** Pace batches by their simulated send time (1 simulated ms = 1 ms). Default false. */
  realtime?: boolean;
  /**
   * With realtime: the simulated time that corresponds to the moment sending starts. Default: the first
   * batch's sendAtMs. Pass the run's startMs so that, with `--start now`, no batch leaves before its
   * simulated send time (an event ahead of the server clock is corrected by the pipeline).
   */
  realtimeOriginMs?: number;
  fetch?: FetchLike;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

export interface SendStats {
  batches: number;
  events: number;
  /** HTTP requests made (first attempts + retries). */
  requests: number;
  retries: number;
  accepted: number;
  rejected: number;
  /** Batches given up on (non-retryable status or retries exhausted). */
  failedBatches: number;
  failedEvents: number;
  /** The last failure, for the summary line. */
  lastError: string | null;
  /** The run stopped early after maxConsecutiveFailures; the unsent batches count as failed. */
  aborted: boolean;
  durationMs: number;
}

export function beaconsUrl(target: string): string {
  const base = target.replace(/\/+$/, '');
  return base.endsWith('/v1/beacons') ? base : `${base}/v1/beacons`;
}

/** Retry-After as delta-seconds or an HTTP date (RFC 9110 §10.2.3); null when absent or unreadable. */
export function parseRetryAfter(value: string | null, nowMs: number): number | null {
  if (value === null || value.trim() === '') return null;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, at - nowMs);
}

function isRetryable(status: number): boolean {
  return status === 429 || status === 408 || status >= 500;
}

/** { accepted, rejected } where rejected may be a count or a list of per-event rejections. */
function readCounts(body: string, sent: number): { accepted: number; rejected: number } {
  try {
    const parsed: unknown = JSON.parse(body);
    if (typeof parsed === 'object' && parsed !== null) {
      const rec = parsed as Record<string, unknown>;
      const rejected = typeof rec.rejected === 'number' ? rec.rejected : Array.isArray(rec.rejected) ? rec.rejected.length : 0;
      const accepted = typeof rec.accepted === 'number' ? rec.accepted : sent - rejected;
      return { accepted, rejected };
    }
  } catch {
    // not JSON (e.g. 204): count everything as accepted
  }
  return { accepted: sent, rejected: 0 };
}

const defaultSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export async function sendBatches(batches: readonly Batch[], opts: SendOptions): Promise<SendStats> {
  const url = beaconsUrl(opts.target);
  const concurrency = Math.max(1, opts.concurrency ?? 8);
  const maxRetries = opts.maxRetries ?? 8;
  const maxDelay = opts.maxRetryDelayMs ?? 30_000;
  const baseDelay = opts.baseRetryDelayMs ?? 200;
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const doFetch: FetchLike = opts.fetch ?? ((u, init) => fetch(u, init));
  const sleep = opts.sleep ?? defaultSleep;
  const now = opts.now ?? Date.now;
  const startedMs = now();
  const stats: SendStats = { batches: batches.length, events: 0, requests: 0, retries: 0, accepted: 0, rejected: 0, failedBatches: 0, failedEvents: 0, lastError: null, aborted: false, durationMs: 0 };

  for (const b of batches) stats.events += b.events.length;
  const maxConsecutive = opts.maxConsecutiveFailures ?? 3;
  let consecutiveFailures = 0;
  const fail = (b: Batch, why: string): void => {
    consecutiveFailures += 1;
    if (consecutiveFailures >= maxConsecutive) stats.aborted = true;
    stats.failedBatches += 1;
    stats.failedEvents += b.events.length;
    stats.lastError = why;
  };

  /** Batches between their first retryable failure and their end: while > 0, nothing new starts. */
  let retrying = 0;

  async function sendOne(b: Batch): Promise<void> {
    const body = JSON.stringify({ events: b.events });
    let backingOff = false;
    try {
      for (let attempt = 0; ; attempt++) {
        let waitMs: number | null = null;
        let why: string;
        stats.requests += 1;
        try {
          const res = await doFetch(url, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body,
            signal: AbortSignal.timeout(timeoutMs),
          });
          const text = await res.text();
          if (res.status >= 200 && res.status < 300) {
            const counts = readCounts(text, b.events.length);
            stats.accepted += counts.accepted;
            stats.rejected += counts.rejected;
            consecutiveFailures = 0;
            return;
          }
          why = `HTTP ${res.status}: ${text.slice(0, 200)}`;
          if (!isRetryable(res.status)) return fail(b, why);
          waitMs = parseRetryAfter(res.headers.get('retry-after'), now());
        } catch (err) {
          why = `network: ${err instanceof Error ? err.message : String(err)}`;
        }
        if (attempt >= maxRetries) return fail(b, `${why} (gave up after ${maxRetries} retries)`);
        if (!backingOff) {
          backingOff = true;
          retrying += 1;
        }
        stats.retries += 1;
        await sleep(Math.min(maxDelay, waitMs ?? baseDelay * 2 ** attempt));
      }
    } finally {
      if (backingOff) retrying -= 1;
    }
  }

  const originMs = opts.realtimeOriginMs ?? batches[0]?.sendAtMs ?? 0;
  const inflight = new Set<Promise<void>>();
  const chains = new Map<string, Promise<void>>();
  for (const [i, b] of batches.entries()) {
    if (opts.realtime === true) {
      const due = startedMs + (b.sendAtMs - originMs) - now();
      if (due > 0) await sleep(due);
    }
    while (inflight.size >= concurrency || (retrying > 0 && inflight.size > 0)) await Promise.race(inflight);
    if (stats.aborted) {
      for (const rest of batches.slice(i)) {
        stats.failedBatches += 1;
        stats.failedEvents += rest.events.length;
      }
      break;
    }
    const previous = chains.get(b.sessionId);
    const sent = previous === undefined ? sendOne(b) : previous.then(() => sendOne(b));
    chains.set(b.sessionId, sent);
    const tracked: Promise<void> = sent.finally(() => {
      inflight.delete(tracked);
      if (chains.get(b.sessionId) === sent) chains.delete(b.sessionId);
    });
    inflight.add(tracked);
  }
  await Promise.all(inflight);
  stats.durationMs = now() - startedMs;
  return stats;
}
