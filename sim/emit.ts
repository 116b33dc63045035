/**
 * Timeline → wire events (the POST /v1/beacons event shape), per view: seq from 0, ts non-decreasing,
 * all dimensions on `play_request` only, a `heartbeat` after every `heartbeatMs` without another event.
 */
import { DIMENSIONS, type Dims } from '../schemas/events.js';
import type { Segment, ViewTimeline } from './model.js';
import type { BeaconEvent } from '../ingest/beacon-schema.js';

/** One event as POSTed: the native beacon event (camelCase; absent fields are omitted, never null). */
export type SimEvent = BeaconEvent;

type Body = Omit<SimEvent, 'sessionId' | 'seq'>;

interface Item {
  /** Events at the same ts keep this order: state changes, errors, requests, the terminal event. */
  prio: number;
  order: number;
  body: Body;
  bitrateKbps: number | null;
}

/** The dimension fields as sent: '' (unknown) is omitted, asn is a JSON integer. */
export function wireDims(dims: Dims): Partial<SimEvent> {
  const out: Partial<SimEvent> = {};
  for (const d of DIMENSIONS) {
    const v = dims[d];
    if (v === '') continue;
    if (d === 'asn') out.asn = Number(v);
    else if (d === 'streamType') out.streamType = v === 'live' ? 'live' : 'vod';
    else out[d] = v;
  }
  return out;
}

function segmentBody(s: Segment, dims: Dims): Body {
  switch (s.signal) {
    case 'play_request':
      return { ts: s.fromMs, type: 'play_request', ...wireDims(dims) };
    case 'first_frame':
    case 'bitrate_change':
      return { ts: s.fromMs, type: s.signal, bitrateKbps: s.bitrateKbps ?? 0, playheadMs: s.playheadMs };
    default:
      return { ts: s.fromMs, type: s.signal, playheadMs: s.playheadMs };
  }
}

export function emitEvents(tl: ViewTimeline, heartbeatMs: number): SimEvent[] {
  const items: Item[] = [];
  const add = (prio: number, body: Body, bitrateKbps: number | null = null): void => {
    items.push({ prio, order: items.length, body, bitrateKbps });
  };
  for (const s of tl.segments) add(0, segmentBody(s, tl.dims), s.bitrateKbps);
  for (const e of tl.errors) add(1, { ts: e.ms, type: 'error', errorCode: e.code, errorFatal: false });
  for (const r of tl.requests) {
    const timing = r.ttfbMs === null || r.ttlbMs === null ? {} : { ttfbMs: r.ttfbMs, ttlbMs: r.ttlbMs };
    add(2, { ts: r.ms, type: 'request', httpStatus: r.httpStatus, ...timing });
  }
  const end = tl.ending;
  if (end.kind === 'fatal') add(3, { ts: end.ms, type: 'error', errorCode: end.code, errorFatal: true });
  else if (end.kind !== 'abandoned') add(3, { ts: end.ms, type: end.kind });
  items.sort((a, b) => a.body.ts - b.body.ts || a.prio - b.prio || a.order - b.order);

  const bodies: Body[] = [];
  let current: number | null = null;
  let lastTs: number | null = null;
  const heartbeats = (limitMs: number, inclusive: boolean): void => {
    while (lastTs !== null && (inclusive ? lastTs + heartbeatMs <= limitMs : lastTs + heartbeatMs < limitMs)) {
      lastTs += heartbeatMs;
      bodies.push(current === null ? { ts: lastTs, type: 'heartbeat' } : { ts: lastTs, type: 'heartbeat', bitrateKbps: current });
    }
  };
  for (const it of items) {
    heartbeats(it.body.ts, false);
    if (it.bitrateKbps !== null) current = it.bitrateKbps;
    bodies.push(it.body);
    lastTs = it.body.ts;
  }
  // A silent player kept beating until it went away.
  if (end.kind === 'abandoned') heartbeats(end.ms, true);
  return bodies.map((b, seq) => ({ sessionId: tl.sessionId, seq, ...b }));
}
