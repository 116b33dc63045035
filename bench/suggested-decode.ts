/**
 * NOT used by qoe-stream: the fix the processor benchmark suggests for schemas/codec.ts, measured side
 * by side with the real decodeSessionEvent. The real one calls snakeCase() (two regex replaces) for
 * each of 22 fields of every record; here the Avro field names are computed once.
 */
import { sessionEventType } from '../schemas/codec.js';
import { DIMENSIONS, snakeCase, type SessionEvent } from '../schemas/events.js';

type AvroRecord = Record<string, unknown>;
const NULLABLE = ['bitrateKbps', 'playheadMs', 'droppedFrames', 'errorCode', 'errorFatal', 'httpStatus', 'ttfbMs', 'ttlbMs', 'startupMs'] as const;
const DIM_NAMES = DIMENSIONS.map((d) => [d, snakeCase(d)] as const);
const NULLABLE_NAMES = NULLABLE.map((f) => [f, snakeCase(f)] as const);

export function decodePrecomputed(buf: Buffer): SessionEvent {
  const rec = sessionEventType.fromBuffer(buf) as AvroRecord;
  const dims = {} as SessionEvent['dims'];
  for (const [d, col] of DIM_NAMES) dims[d] = rec[col] as string;
  const e = {
    sessionId: rec.session_id as string,
    seq: rec.seq as number,
    tsMs: rec.ts_ms as number,
    receivedAtMs: rec.received_at_ms as number,
    type: rec.type as SessionEvent['type'],
    source: rec.source as SessionEvent['source'],
    clientHash: rec.client_hash as string,
    dims,
  } as SessionEvent;
  for (const [f, col] of NULLABLE_NAMES) (e as unknown as AvroRecord)[f] = rec[col] ?? null;
  return e;
}
