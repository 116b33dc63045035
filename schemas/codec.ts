import { readFileSync } from 'node:fs';
import avro from 'avsc';
import { projectPath } from '../lib/paths.js';
import { DIMENSIONS, snakeCase, type SessionEvent } from './events.js';
import { createAvroCodec } from './framing.js';

/** Reads an .avsc file from schemas/ into an avsc Type. */
export function loadAvroType(file: string): avro.Type {
  const schema: unknown = JSON.parse(readFileSync(projectPath('schemas', file), 'utf8'));
  return avro.Type.forSchema(schema as avro.Schema);
}

type AvroRecord = Record<string, unknown>;

export const sessionEventType = loadAvroType('beacon-event.avsc');

/** qoe.beacons.v1 records: single-object encoded; earlier schema versions (schemas/history/) still read. */
export const sessionEventCodec = createAvroCodec<AvroRecord>(sessionEventType, [loadAvroType('history/beacon-event.v0.avsc')]);


const NULLABLE = ['bitrateKbps', 'playheadMs', 'droppedFrames', 'errorCode', 'errorFatal', 'httpStatus', 'ttfbMs', 'ttlbMs', 'startupMs'] as const;

export function sessionEventToAvro(e: SessionEvent): AvroRecord {
  const rec: AvroRecord = {
    session_id: e.sessionId,
    seq: e.seq,
    ts_ms: e.tsMs,
    received_at_ms: e.receivedAtMs,
    type: e.type,
    source: e.source,
    client_hash: e.clientHash,
  };
  for (const d of DIMENSIONS) rec[snakeCase(d)] = e.dims[d];
  for (const f of NULLABLE) rec[snakeCase(f)] = e[f];
  return rec;
}

export function sessionEventFromAvro(rec: AvroRecord): SessionEvent {
  const dims = {} as SessionEvent['dims'];
  for (const d of DIMENSIONS) dims[d] = rec[snakeCase(d)] as string;
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
  for (const f of NULLABLE) (e as unknown as AvroRecord)[f] = rec[snakeCase(f)] ?? null;
  return e;
}

export function encodeSessionEvent(e: SessionEvent): Buffer {
  return sessionEventCodec.encode(sessionEventToAvro(e));
}

export function decodeSessionEvent(buf: Buffer): SessionEvent {
  return sessionEventFromAvro(sessionEventCodec.decode(buf));
}
