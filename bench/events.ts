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
