/**
 * CMCD records → SessionEvents (source 'cmcd'). Deterministic and free of I/O and clocks: the only
 * thing it touches is the per-session translation state it is handed (state.ts).
 *
 * One record becomes at most one event, whose `seq` is the record's `sn`: a retried record is then
 * a duplicate for the processors too, and they see no false gaps. Records that change nothing
 * (mute, ad markers, `sta=d`, …) become heartbeats for the same reason. The mapping is documented
 * key by key in docs/cmcd.md.
 */
import { emptyDims, type Dims, type EventType, type SessionEvent } from '../../schemas/events.js';
import type { CmcdPlayerState, CmcdRecord, TypedNumber } from './parse.js';
import type { Member } from './sf.js';
import { observeSn, touchSession, type CmcdTranslationState, type SessionTranslation } from './state.js';

export type CmcdMode = 'event' | 'request';

/**
 * Request-mode records go to their own session id, `<sid>` + this suffix: CTA-5004-B numbers `sn`
 * independently per mode, so sharing a session with event mode would make the sequences collide.
 */
export const REQUEST_MODE_SESSION_SUFFIX = '#request';

export interface CmcdCounters {
  records: number;
  events: number;
  duplicates: number;
  gaps: number;
  reordered: number;
  missingSid: number;
  /** Sessions dropped from the translation state to stay within its bound. */
  evicted: number;
  cdnChanges: number;
  /** Σ `bsd` (video or untagged) reported: a cross-check of rebuffer time derived from `sta=r`. */
  reportedStarvationMs: number;
}

export function emptyCmcdCounters(): CmcdCounters {
  return { records: 0, events: 0, duplicates: 0, gaps: 0, reordered: 0, missingSid: 0, evicted: 0, cdnChanges: 0, reportedStarvationMs: 0 };
}

export interface CmcdTranslateContext {
  mode: CmcdMode;
  /** Server clock when the request arrived; also the event time of records without `ts`. */
  receivedAtMs: number;
  clientHash: string;
  /** Dimensions taken from the HTTP request rather than the record (User-Agent, country header). */
  requestDims: Partial<Dims>;
  /** Custom CMCD keys (e.g. `com.example-tier`) whose value fills custom1..custom3. */
  customDims?: Partial<Record<'custom1' | 'custom2' | 'custom3', string>>;
}

export type CmcdTranslateOutcome = { kind: 'event'; event: SessionEvent } | { kind: 'drop'; reason: 'duplicate' | 'missing_sid' };

/** `sta` → event type; `p` is first_frame the first time (decided by the caller). */
const STATE_EVENTS: Record<Exclude<CmcdPlayerState, 'p' | 'f'>, EventType> = {
  s: 'play_request',
  k: 'seeking',
  r: 'rebuffering',
  a: 'paused',
  // "Waiting: the player is waiting for a user action or another event": not a stall, so not rebuffering.
  w: 'paused',
  e: 'ended',
  q: 'quit',
  // Preloading comes before any play request: not an attempt yet.
  d: 'heartbeat',
};

/**
 * The bitrate the viewer sees: `pb` (playhead bitrate) when sent, else `br` (the selected
 * representation, which leads the playhead by the buffer). Video first, then muxed, then untagged;
 * an untagged request-mode `br` counts only when the requested object is video or muxed.
 */
export function pickBitrateKbps(r: CmcdRecord, mode: CmcdMode): number | null {
  const pick = (list: TypedNumber[] | undefined, allowUntagged: boolean): number | null =>
    list?.find((x) => x.ot === 'v')?.value ?? list?.find((x) => x.ot === 'av')?.value ?? (allowUntagged ? list?.find((x) => x.ot === null)?.value : undefined) ?? null;
  const untaggedOk = mode === 'event' || r.ot === undefined || r.ot === 'v' || r.ot === 'av';
  return pick(r.pb, untaggedOk) ?? pick(r.br, untaggedOk);
}

function customValue(m: Member | undefined): string {
  if (m?.kind !== 'item') return '';
  const b = m.bare;
  return b.type === 'string' || b.type === 'token' ? b.value : b.type === 'boolean' ? String(b.value) : b.type === 'bytes' ? '' : String(b.value);
}

function buildDims(r: CmcdRecord, s: SessionTranslation, ctx: CmcdTranslateContext): Dims {
  const dims: Dims = { ...emptyDims(), ...ctx.requestDims };
  dims.cdn = s.cdn;
  dims.contentId = s.contentId;
  dims.streamType = s.streamType;
  for (const [dim, key] of Object.entries(ctx.customDims ?? {}) as Array<['custom1' | 'custom2' | 'custom3', string]>) {
    dims[dim] = customValue(r.custom.get(key));
  }
  return dims;
}

/** Event type of an event-mode record (and what it does to the translation state). */
function eventTypeOf(r: CmcdRecord, s: SessionTranslation, cdnChanged: boolean): { type: EventType; fatal: boolean } {
  if (r.e === 'e') {
    if (r.sta === 'f') s.lastSta = 'f';
    return { type: 'error', fatal: r.sta === 'f' };
  }
  if (r.e === 'rr') return { type: 'request', fatal: false };
  // `sta` is on play-state reports (e=ps) but also on interval and other reports (CTA-5004-B 8.2.2
  // reports sta=s then sta=p on e=t): a state not yet reported is a transition whatever `e` says.
  if (r.sta !== undefined && (r.e === 'ps' || r.sta !== s.lastSta)) {
    const sta = r.sta;
    s.lastSta = sta;
    if (sta === 'f') return { type: 'error', fatal: true };
    if (sta === 'p') {
      const first = !s.played;
      s.played = true;
      return { type: first ? 'first_frame' : 'playing', fatal: false };
    }
    return { type: STATE_EVENTS[sta], fatal: false };
  }
  if (r.e === 'bc') return { type: 'bitrate_change', fatal: false };
  if (r.e === 'h' || cdnChanged) return { type: 'cdn_change', fatal: false };
  return { type: 'heartbeat', fatal: false };
}

/**
 * Request-mode records (no `e`): one per object request. They count as requests when they describe
 * an object; session-only records (`cid`, `sid`, `v`) are heartbeats. Their `sta` is not applied:
 * views are counted from event mode only, so a player reporting both modes is not counted twice.
 */
function requestModeType(r: CmcdRecord): { type: EventType; fatal: boolean } {
  const describesObject = r.ot !== undefined || r.br !== undefined || r.d !== undefined || r.rc !== undefined || r.url !== undefined;
  return { type: describesObject ? 'request' : 'heartbeat', fatal: false };
}

/** Translates one parsed record. */
export function translateCmcdRecord(state: CmcdTranslationState, r: CmcdRecord, ctx: CmcdTranslateContext, counters: CmcdCounters): CmcdTranslateOutcome {
  counters.records += 1;
  if (r.sid === undefined || r.sid === '') {
    counters.missingSid += 1;
    return { kind: 'drop', reason: 'missing_sid' };
  }
  const sessionId = ctx.mode === 'request' ? r.sid + REQUEST_MODE_SESSION_SUFFIX : r.sid;
  const { session: s, evicted } = touchSession(state, sessionId);
  counters.evicted += evicted;

  let seq: number;
  if (r.sn === undefined) {
    seq = s.nextSeq;
  } else {
    const verdict = observeSn(s, r.sn);
    if (verdict === 'duplicate') {
      counters.duplicates += 1;
      return { kind: 'drop', reason: 'duplicate' };
    }
    if (verdict === 'gap') counters.gaps += 1;
    if (verdict === 'reordered') counters.reordered += 1;
    seq = r.sn;
  }
  s.nextSeq = Math.max(s.nextSeq, seq + 1);

  const cdn = r.cdn ?? r.h;
  const cdnChanged = cdn !== undefined && s.cdn !== '' && cdn !== s.cdn;
  if (cdnChanged) counters.cdnChanges += 1;
  if (cdn !== undefined) s.cdn = cdn;
  if (r.cid !== undefined) s.contentId = r.cid;
  if (r.st !== undefined) s.streamType = r.st === 'v' ? 'vod' : 'live';
  const bsd = r.bsd?.filter((x) => x.ot === 'v' || x.ot === null).reduce((sum, x) => sum + x.value, 0) ?? 0;
  counters.reportedStarvationMs += bsd;

  // "msd: this key MUST only be sent once per Session ID": it may come before the playing report.
  if (r.msd !== undefined && !s.played) s.pendingMsd = r.msd;
  const { type, fatal } = ctx.mode === 'request' ? requestModeType(r) : eventTypeOf(r, s, cdnChanged);
  let startupMs: number | null = null;
  if (type === 'first_frame') {
    startupMs = s.pendingMsd;
    s.pendingMsd = null;
  }
  const isRequest = type === 'request';
  const event: SessionEvent = {
    sessionId,
    seq,
    tsMs: within(r.ts, MIN_TS_MS, MAX_TS_MS) ?? ctx.receivedAtMs,
    receivedAtMs: ctx.receivedAtMs,
    type,
    source: 'cmcd',
    dims: buildDims(r, s, ctx),
    bitrateKbps: within(pickBitrateKbps(r, ctx.mode), 0, 1_000_000),
    playheadMs: within(r.pt, 0, Number.MAX_SAFE_INTEGER),
    droppedFrames: within(r.dfa, 0, Number.MAX_SAFE_INTEGER),
    errorCode: type === 'error' ? (r.ec?.[0] ?? null) : null,
    errorFatal: type === 'error' ? fatal : null,
    httpStatus: isRequest ? within(r.rc, 0, 599) : null,
    ttfbMs: isRequest ? within(r.ttfb, 0, MAX_DURATION_MS) : null,
    ttlbMs: isRequest ? within(r.ttlb, 0, MAX_DURATION_MS) : null,
    startupMs: within(startupMs, 0, MAX_DURATION_MS),
    clientHash: ctx.clientHash,
  };
  counters.events += 1;
  return { kind: 'event', event };
}

/*
 * The same bounds as native beacons (schemas/beacon-batch.schema.json). CMCD: "invalid values are
 * ignored" — an out-of-range number (dash.js 5.2 sends an epoch timestamp as ttfb) becomes null
 * instead of failing the record, or the batch, at encoding.
 */
const MAX_DURATION_MS = 600_000;
const MIN_TS_MS = 0;
const MAX_TS_MS = 4_102_444_800_000;

function within(v: number | null | undefined, min: number, max: number): number | null {
  return v === undefined || v === null || !Number.isFinite(v) || v < min || v > max ? null : Math.round(v);
}

export interface CmcdTranslation {
  events: SessionEvent[];
  /** Records dropped, by index in the input. Duplicates are not errors (a retry): count them apart. */
  dropped: Array<{ index: number; reason: 'duplicate' | 'missing_sid' }>;
}

export function translateCmcdRecords(state: CmcdTranslationState, records: readonly CmcdRecord[], ctx: CmcdTranslateContext, counters: CmcdCounters): CmcdTranslation {
  const events: SessionEvent[] = [];
  const dropped: CmcdTranslation['dropped'] = [];
  records.forEach((r, index) => {
    const out = translateCmcdRecord(state, r, ctx, counters);
    if (out.kind === 'event') events.push(out.event);
    else dropped.push({ index, reason: out.reason });
  });
  return { events, dropped };
}
