/**
 * Pure: a validated native beacon batch → SessionEvents. Dimensions are merged batch-level then
 * event-level (the event's own value wins), '' stands for "not sent", asn becomes its decimal string,
 * optional measures become null.
 */
import { DIMENSIONS, emptyDims, type Dims, type SessionEvent } from '../schemas/events.js';
import type { BeaconBatch, BeaconDims, BeaconEvent } from './beacon-schema.js';

export interface NormalizeContext {
  /** Server clock when the request arrived, one value for the whole request. */
  receivedAtMs: number;
  /** clientHash(secret, ip) of the sender. */
  clientHash: string;
}

function dimValue(v: string | number | undefined): string | undefined {
  return typeof v === 'number' ? String(v) : v;
}

export function mergeDims(batchDims: BeaconDims | undefined, event: BeaconDims): Dims {
  const dims = emptyDims();
  for (const d of DIMENSIONS) {
    dims[d] = dimValue(event[d]) ?? dimValue(batchDims?.[d]) ?? '';
  }
  return dims;
}

export function normalizeEvent(e: BeaconEvent, batchDims: BeaconDims | undefined, ctx: NormalizeContext): SessionEvent {
  return {
    sessionId: e.sessionId,
    seq: e.seq,
    tsMs: e.ts,
    receivedAtMs: ctx.receivedAtMs,
    type: e.type,
    source: 'native',
    dims: mergeDims(batchDims, e),
    bitrateKbps: e.bitrateKbps ?? null,
    playheadMs: e.playheadMs ?? null,
    droppedFrames: e.droppedFrames ?? null,
    errorCode: e.errorCode ?? null,
    errorFatal: e.errorFatal ?? null,
    httpStatus: e.httpStatus ?? null,
    ttfbMs: e.ttfbMs ?? null,
    ttlbMs: e.ttlbMs ?? null,
    startupMs: e.startupMs ?? null,
    clientHash: ctx.clientHash,
  };
}

export function normalizeBatch(batch: BeaconBatch, ctx: NormalizeContext): SessionEvent[] {
  return batch.events.map((e) => normalizeEvent(e, batch.dims, ctx));
}
