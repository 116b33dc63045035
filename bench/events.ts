/**
 * Realistic session event streams for the processor benchmarks: the simulator's player population
 * (sim/model.ts), batched as players send them (sim/batching.ts), normalised as ingest does, in the
 * order ingest would receive them (batch send time), with receivedAtMs = the batch's send time.
 */
import { normalizeEvent } from '../ingest/normalize.js';
import { partitionForKey } from '../lib/bus/partitioner.js';
import { encodeSessionEvent } from '../schemas/codec.js';
import type { SessionEvent } from '../schemas/events.js';
import { planBatches } from '../sim/batching.js';
import { generatePopulation } from '../sim/model.js';

export interface StreamOptions {
  /** Views in the population (~28 events per view with the default model). */
  views: number;
  /** Attempts are spread over this period: views × mean view length / periodMs ≈ concurrent sessions. */
  periodMs: number;
  /** Keep only the first `limit` events in arrival order (the rest of the population is cut off mid-view). */
  limit: number;
  seed?: number;
  partitions?: number;
}

/** Views for `limit` events when none are given: ~28 events per view with the default model, × 1.6. */
export const defaultViews = (limit: number): number => Math.ceil((limit / 28) * 1.6);

export interface EncodedRecord {
  partition: number;
  value: Buffer;
  receivedAtMs: number;
}

export interface EventStream {
  events: SessionEvent[];
  partitions: Uint16Array;
  views: number;
}

export function simulatedStream(opts: StreamOptions): EventStream {
  const partitions = opts.partitions ?? 8;
  const views = generatePopulation({ views: opts.views, periodMs: opts.periodMs, seed: opts.seed ?? 42 });
  const batches = planBatches(views, { batchSize: 20, batchIntervalMs: 5000 });
  const events: SessionEvent[] = [];
  outer: for (const b of batches) {
    const ctx = { receivedAtMs: b.sendAtMs, clientHash: 'bench-client-hash-0123456789abcdef' };
    for (const e of b.events) {
      if (events.length >= opts.limit) break outer;
      events.push(normalizeEvent(e, undefined, ctx));
    }
  }
  const parts = new Uint16Array(events.length);
  events.forEach((e, i) => (parts[i] = partitionForKey(e.sessionId, partitions)));
  return { events, partitions: parts, views: opts.views };
}

export function encodeStream(s: EventStream): EncodedRecord[] {
  return s.events.map((e, i) => ({ partition: s.partitions[i] ?? 0, value: encodeSessionEvent(e), receivedAtMs: e.receivedAtMs }));
}

/**
 * The stream plus one heartbeat per partition `afterMs` past its newest event (a session of its own),
 * so a replay moves every partition's watermark past the data: every window fires and closes, as it
 * would while live traffic goes on. Without it, windows within the out-of-order bound of the newest
 * event stay open when the input ends (all of them, when the stream spans less than that bound).
 */
export function withFlushEvents(s: EventStream, partitions: number, afterMs: number): EventStream {
  const last = s.events[s.events.length - 1];
  if (last === undefined) return s;
  const maxTs = s.events.reduce((m, e) => Math.max(m, e.tsMs), -Infinity);
  const events = [...s.events];
  const parts = [...s.partitions];
  for (let p = 0; p < partitions; p++) {
    let n = 0;
    while (partitionForKey(`bench-flush-${p}-${n}`, partitions) !== p) n++;
    // Received when sent: an event time past receive time + QOE_MAX_CLOCK_AHEAD_MS would be capped.
    events.push({ ...last, sessionId: `bench-flush-${p}-${n}`, seq: 0, type: 'heartbeat', tsMs: maxTs + afterMs, receivedAtMs: maxTs + afterMs });
    parts.push(p);
  }
  return { events, partitions: Uint16Array.from(parts), views: s.views };
}

