/**
 * The session event: the one record every beacon format (native JSON, CMCD) is turned into,
 * carried on the bus as Avro (schemas/beacon-event.avsc) and consumed by the processors.
 * camelCase here; snake_case only at the Avro and ClickHouse boundary (see schemas/codec.ts).
 */

export const EVENT_TYPES = [
  'play_request', // attempt: user click or autoplay asked for playback
  'first_frame', // first frame rendered with the playhead moving: the view started
  'playing',
  'paused',
  'seeking',
  'rebuffering', // stall not caused by a seek (connection-induced)
  'bitrate_change', // rendition switch; carries bitrateKbps
  'heartbeat', // no state change; keeps the session alive, may carry bitrateKbps / droppedFrames
  'error', // errorCode, errorFatal
  'request', // one media/manifest request completed (CMCD e=rr); httpStatus, ttfbMs, ttlbMs
  'cdn_change', // playback moved to another CDN / pathway; carries cdn
  'ended', // content played to its end
  'quit', // viewer left (tab closed, navigated away, stop pressed)
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export const STREAM_TYPES = ['vod', 'live'] as const;
export type StreamType = (typeof STREAM_TYPES)[number];

export const EVENT_SOURCES = ['native', 'cmcd'] as const;
export type EventSource = (typeof EVENT_SOURCES)[number];

/** Dimensions a metric can be grouped and filtered by. Order is the storage/column order. */
export const DIMENSIONS = [
  'cdn',
  'country',
  'asn',
  'contentId',
  'streamType',
  'playerName',
  'playerVersion',
  'deviceType',
  'os',
  'browser',
  'custom1',
  'custom2',
  'custom3',
] as const;
export type Dimension = (typeof DIMENSIONS)[number];

/** Every dimension as stored: strings ('' = unknown); asn is kept as its decimal string. */
export type Dims = Record<Dimension, string>;

export interface SessionEvent {
  sessionId: string;
  /** Per-session sequence number assigned by the player, from 0. */
  seq: number;
  /** Client clock, epoch milliseconds. */
  tsMs: number;
  /** Server clock at ingest, epoch milliseconds. */
  receivedAtMs: number;
  type: EventType;
  source: EventSource;
  /** Dimensions carried by this event; '' = not sent (the session keeps what it saw before). */
  dims: Dims;
  bitrateKbps: number | null;
  playheadMs: number | null;
  /** Cumulative dropped frames reported by the player for this view. */
  droppedFrames: number | null;
  errorCode: string | null;
  errorFatal: boolean | null;
  httpStatus: number | null;
  ttfbMs: number | null;
  ttlbMs: number | null;
  /** Media start delay reported by the player (CMCD msd); overrides first_frame − play_request. */
  startupMs: number | null;
  /** Keyed hash of the client IP (never the IP itself). */
  clientHash: string;
}

export function emptyDims(): Dims {
  return {
    cdn: '',
    country: '',
    asn: '',
    contentId: '',
    streamType: '',
    playerName: '',
    playerVersion: '',
    deviceType: '',
    os: '',
    browser: '',
    custom1: '',
    custom2: '',
    custom3: '',
  };
}

/** The dimension a user named, in camelCase or snake_case (`deviceType`, `device_type`); undefined if none. */
export function dimensionNamed(name: string): Dimension | undefined {
  return DIMENSIONS.find((d) => d === name || snakeCase(d) === name);
}

/** Snake-case name of a camelCase field, as used in Avro and ClickHouse. */
export function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`).replace(/(\d+)/g, '$1');
}
