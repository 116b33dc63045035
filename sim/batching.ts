/**
 * Pure: the population's events in global timestamp order → per-view POST batches, as players batch:
 * a view's pending events are flushed when batchSize is reached, when its oldest pending event is
 * batchIntervalMs old in simulated time, or at its terminal event.
 */
import type { SimEvent } from './emit.js';

export interface Batch {
  sessionId: string;
  /** Simulated time the player sends this batch. */
  sendAtMs: number;
  events: SimEvent[];
}

export interface BatchingOptions {
  /** 1..500 (the ingest's limit per POST). */
  batchSize: number;
  batchIntervalMs: number;
}

export const MAX_BATCH_SIZE = 500;

export function isTerminal(e: SimEvent): boolean {
  return e.type === 'ended' || e.type === 'quit' || (e.type === 'error' && e.errorFatal === true);
}

interface Tagged {
  view: number;
  event: SimEvent;
}

/** Batches in non-decreasing sendAtMs; every event exactly once; a view's batches in seq order. */
export function planBatches(views: readonly { events: readonly SimEvent[] }[], opts: BatchingOptions): Batch[] {
  if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1 || opts.batchSize > MAX_BATCH_SIZE) {
    throw new Error(`batchSize must be an integer in 1..${MAX_BATCH_SIZE}`);
  }
  if (!(opts.batchIntervalMs >= 0)) throw new Error('batchIntervalMs must be ≥ 0');
  const all: Tagged[] = [];
  views.forEach((v, view) => {
    for (const event of v.events) all.push({ view, event });
  });
  all.sort((a, b) => a.event.ts - b.event.ts || a.view - b.view || a.event.seq - b.event.seq);

  const pending = new Map<number, SimEvent[]>();
  const generation = new Map<number, number>();
  // Deadlines are pushed in non-decreasing order (a buffer opens at the current global ts), so a FIFO
  // queue with lazy invalidation is enough.
  const deadlines: { atMs: number; view: number; gen: number }[] = [];
  let head = 0;
  const out: Batch[] = [];
  const flush = (view: number, atMs: number): void => {
    const events = pending.get(view);
    if (events === undefined || events.length === 0) return;
    const first = events[0];
    if (first === undefined) return;
    out.push({ sessionId: first.sessionId, sendAtMs: atMs, events });
    pending.delete(view);
    generation.set(view, (generation.get(view) ?? 0) + 1);
  };
  const flushDue = (nowMs: number): void => {
    for (let d = deadlines[head]; d !== undefined && d.atMs <= nowMs; d = deadlines[++head]) {
      if ((generation.get(d.view) ?? 0) === d.gen) flush(d.view, d.atMs);
    }
  };
  for (const { view, event } of all) {
    flushDue(event.ts);
    let buf = pending.get(view);
    if (buf === undefined) {
      buf = [];
      pending.set(view, buf);
      deadlines.push({ atMs: event.ts + opts.batchIntervalMs, view, gen: generation.get(view) ?? 0 });
    }
    buf.push(event);
    if (buf.length >= opts.batchSize || isTerminal(event)) flush(view, event.ts);
  }
  flushDue(Number.POSITIVE_INFINITY);
  return out;
}
