import { readFileSync } from 'node:fs';
import avro from 'avsc';
import { projectPath } from '../lib/paths.js';
import type { SessionEvent } from './events.js';
import { createEventReader } from './event-reader.js';
import { HEADER_BYTES, createAvroCodec } from './framing.js';

/** Reads an .avsc file from schemas/ into an avsc Type. */
export function loadAvroType(file: string): avro.Type {
  const schema: unknown = JSON.parse(readFileSync(projectPath('schemas', file), 'utf8'));
  return avro.Type.forSchema(schema as avro.Schema);
}

type AvroRecord = Record<string, unknown>;

export const sessionEventType = loadAvroType('beacon-event.avsc');

/** qoe.beacons.v1 records: single-object encoded; earlier schema versions (schemas/history/) still read. */
export const sessionEventCodec = createAvroCodec<AvroRecord>(sessionEventType, [loadAvroType('history/beacon-event.v0.avsc')]);


/*
 * camelCase ⇄ snake_case by explicit object literals: this runs for every record on the hot path, and
 * literals give V8 one object shape (a per-field snakeCase() was a third of the processor's time).
 * schemas/schema-agreement.test.ts and the codec tests check the mapping against the .avsc.
 */
export function sessionEventToAvro(e: SessionEvent): AvroRecord {
  const d = e.dims;
  return {
    session_id: e.sessionId, seq: e.seq, ts_ms: e.tsMs, received_at_ms: e.receivedAtMs, type: e.type, source: e.source,
    cdn: d.cdn, country: d.country, asn: d.asn, content_id: d.contentId, stream_type: d.streamType,
    player_name: d.playerName, player_version: d.playerVersion, device_type: d.deviceType, os: d.os, browser: d.browser,
    custom1: d.custom1, custom2: d.custom2, custom3: d.custom3,
    bitrate_kbps: e.bitrateKbps, playhead_ms: e.playheadMs, dropped_frames: e.droppedFrames, error_code: e.errorCode,
    error_fatal: e.errorFatal, http_status: e.httpStatus, ttfb_ms: e.ttfbMs, ttlb_ms: e.ttlbMs, startup_ms: e.startupMs,
    client_hash: e.clientHash,
  };
}

type Nullable<T> = T | null | undefined;

export function sessionEventFromAvro(r: AvroRecord): SessionEvent {
  return {
    sessionId: r.session_id as string,
    seq: r.seq as number,
    tsMs: r.ts_ms as number,
    receivedAtMs: r.received_at_ms as number,
    type: r.type as SessionEvent['type'],
    source: r.source as SessionEvent['source'],
    dims: {
      cdn: r.cdn as string, country: r.country as string, asn: r.asn as string, contentId: r.content_id as string,
      streamType: r.stream_type as string, playerName: r.player_name as string, playerVersion: r.player_version as string,
      deviceType: r.device_type as string, os: r.os as string, browser: r.browser as string,
      custom1: r.custom1 as string, custom2: r.custom2 as string, custom3: r.custom3 as string,
    },
    bitrateKbps: (r.bitrate_kbps as Nullable<number>) ?? null,
    playheadMs: (r.playhead_ms as Nullable<number>) ?? null,
    droppedFrames: (r.dropped_frames as Nullable<number>) ?? null,
    errorCode: (r.error_code as Nullable<string>) ?? null,
    errorFatal: (r.error_fatal as Nullable<boolean>) ?? null,
    httpStatus: (r.http_status as Nullable<number>) ?? null,
    ttfbMs: (r.ttfb_ms as Nullable<number>) ?? null,
    ttlbMs: (r.ttlb_ms as Nullable<number>) ?? null,
    startupMs: (r.startup_ms as Nullable<number>) ?? null,
    clientHash: r.client_hash as string,
  };
}

export function encodeSessionEvent(e: SessionEvent): Buffer {
  return sessionEventCodec.encode(sessionEventToAvro(e));
}

const readCurrentEvent = createEventReader(sessionEventType);
const currentHeader = Buffer.from([0xc3, 0x01, ...sessionEventCodec.fingerprint]);

/**
 * The beacon record in `buf` from `start` to `end` (default: all of it; a fetched record's value is
 * read where it lies, lib/bus/types.ts readValue). `into`: an event from blankSessionEvent() that the
 * current schema's records are read into (see createEventReader); use what this returns, which is
 * another object for records of other versions.
 */
export function decodeSessionEvent(buf: Buffer, into?: SessionEvent, start = 0, end = buf.length): SessionEvent {
  // Records of the current schema (nearly all) are read straight into a SessionEvent; others
  // (earlier versions, a registry's framing) through avsc and the mapping above.
  if (end - start > HEADER_BYTES && isCurrentHeader(buf, start)) return readCurrentEvent(buf, start + HEADER_BYTES, into, end);
  return sessionEventFromAvro(sessionEventCodec.decode(start === 0 && end === buf.length ? buf : buf.subarray(start, end)));
}

/** Whether `buf` has the current schema's single-object header at `at` (a loop: Buffer#compare's native call cost more than the 10 bytes). */
function isCurrentHeader(buf: Buffer, at: number): boolean {
  for (let i = 0; i < HEADER_BYTES; i++) if (buf[at + i] !== currentHeader[i]) return false;
  return true;
}
