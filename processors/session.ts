import { DIMENSIONS, emptyDims, type Dimension, type Dims, type SessionEvent } from '../schemas/events.js';

/**
 * A view's state machine (docs/metrics.md "Session state machine"):
 * init → starting → playing ↔ paused | seeking | rebuffering → ended | failed | quit | (expired).
 * Pure: transitions are computed here; the partition applies their effects to window accumulators.
 */
export type SessionState = 'init' | 'starting' | 'playing' | 'paused' | 'seeking' | 'rebuffering' | 'ended' | 'failed' | 'quit';

export const ACTIVE_STATES: ReadonlySet<SessionState> = new Set(['starting', 'playing', 'paused', 'seeking', 'rebuffering']);
export const TERMINAL_STATES: ReadonlySet<SessionState> = new Set(['ended', 'failed', 'quit']);

export interface Session {
  id: string;
  state: SessionState;
  started: boolean;
  attemptTsMs: number | null;
  /** Event time of the last event applied (after clamping): the state's time is known up to here. */
  sinceMs: number;
  /**
   * ≥ sinceMs: the state's time is attributed up to here — beyond sinceMs by extrapolation to the
   * fired boundary (the state holds until an event changes it), confirmed or retracted later.
   */
  extrapolatedToMs: number;
  lastTsMs: number;
  lastSeq: number;
  /** Bitmap of recently seen seqs below lastSeq (bit i = lastSeq − 1 − i), to tell duplicates from reordering. */
  seenBelow: number;
  /** Never mutated: replaced when an event changes a dimension (pieces and outputs may share it). */
  dims: Dims;
  /** dimsKey(dims), cached: computed when dims change, not per event. */
  dimsKey: string;
  bitrateKbps: number;
  droppedFrames: number;
  clockOffsetMs: number;
  /**
   * Changelog bookkeeping (processors/changelog.ts), not part of what the session measures: the
   * offset of the input record that last moved it to the back of its partition's map (−1: none
   * known), whether the changelog holds a value for it, and whether it changed since the
   * partition's last changelog diff (it is then in `PartitionState.changed`). Kept on the session
   * rather than in maps keyed by its id: those were two hash updates per event.
   */
  touchedAt: number;
  logged: boolean;
  changed: boolean;
}

/** Most distinct strings the intern pool holds; at the bound it starts over (see intern). */
export const INTERN_POOL_MAX = 65_536;
const internPool = new Map<string, string>();

/**
 * One shared copy of equal dimension values and dims keys. Each decoded event brings fresh strings;
 * a session kept those of its first event, so 500,000 sessions on one CDN held 500,000 copies of
 * "cdn-a" (and of 12 other values and a ~100-byte key). Only what a session keeps is interned (at
 * its start, when a dimension changes, on restore), not every event. At INTERN_POOL_MAX distinct
 * strings the pool is cleared: values seen since are shared again, older copies stay as they are.
 */
export function intern(s: string): string {
  const shared = internPool.get(s);
  if (shared !== undefined) return shared;
  if (internPool.size >= INTERN_POOL_MAX) internPool.clear();
  internPool.set(s, s);
  return s;
}

export const internPoolSize = (): number => internPool.size;

/** Most distinct dimension tuples the dims pool holds; at the bound it starts over (see sharedDims). */
export const DIMS_POOL_MAX = 16_384;

/** A dimension tuple as sessions and window outputs share it: dims (never mutated) and dimsKey(dims). */
export interface SharedDims {
  readonly dims: Dims;
  readonly key: string;
}

const dimsPool = new Map<string, SharedDims>();
const keyParts: string[] = DIMENSIONS.map(() => '');
/** Per `kept` list (QOE_WINDOW_DIMENSIONS), which of DIMENSIONS it keeps, in DIMENSIONS order. */
const keptMasks = new WeakMap<readonly Dimension[], boolean[]>();

function keptMask(kept: readonly Dimension[]): boolean[] {
  let mask = keptMasks.get(kept);
  if (mask === undefined) keptMasks.set(kept, (mask = DIMENSIONS.map((d) => kept.includes(d))));
  return mask;
}

/**
 * One shared object for equal dimension tuples. An audience has a few thousand distinct tuples
 * (after QOE_WINDOW_DIMENSIONS, far fewer) and hundreds of thousands of sessions: each session held
 * a dims object and a key string of its own (two objects made per session start, and kept in the
 * old generation for the session's life). `dims` restricted to `kept` (other dimensions ''), values
 * interned. At DIMS_POOL_MAX tuples the pool is cleared: later sessions share again, older ones keep
 * their objects (equal by value, which is all anything compares).
 */
export function sharedDims(dims: Dims, kept: readonly Dimension[] = DIMENSIONS): SharedDims {
  const mask = kept === DIMENSIONS ? null : keptMask(kept);
  // Joined from a reused array: one flat string (appending with += made a rope of ~25 pieces).
  for (let i = 0; i < DIMENSIONS.length; i++) {
    keyParts[i] = mask === null || mask[i] === true ? (dims[DIMENSIONS[i] as Dimension] ?? '') : '';
  }
  const key = keyParts.join('\u0000');
  const found = dimsPool.get(key);
  if (found !== undefined && sameDims(found.dims, dims, mask)) return found;
  const own = emptyDims();
  for (let i = 0; i < DIMENSIONS.length; i++) {
    const k = DIMENSIONS[i] as Dimension;
    if (mask === null || mask[i] === true) own[k] = intern(dims[k] ?? '');
  }
  // Another tuple with this key (a value holding the separator, U+0000): not shared.
  if (found !== undefined) return { dims: own, key };
  if (dimsPool.size >= DIMS_POOL_MAX) dimsPool.clear();
  const shared: SharedDims = { dims: own, key: intern(key) };
  dimsPool.set(shared.key, shared);
  return shared;
}

function sameDims(pooled: Dims, dims: Dims, mask: boolean[] | null): boolean {
  for (let i = 0; i < DIMENSIONS.length; i++) {
    const k = DIMENSIONS[i] as Dimension;
    if (pooled[k] !== (mask === null || mask[i] === true ? (dims[k] ?? '') : '')) return false;
  }
  return true;
}

export const dimsPoolSize = (): number => dimsPool.size;

/** The shared dims of a window output's key (dimsKey of some dims), or undefined if not pooled. */
export const pooledDimsOfKey = (key: string): Dims | undefined => dimsPool.get(key)?.dims;

/** A session read from a checkpoint or changelog, with its dims and key shared (dims replaced, not mutated). */
export function internSession(s: Session): Session {
  const shared = sharedDims(s.dims);
  s.dims = shared.dims;
  s.dimsKey = shared.key;
  return s;
}

export function newSession(id: string, dims: Dims, tsMs: number, clockOffsetMs: number, kept: readonly Dimension[] = DIMENSIONS): Session {
  const own = sharedDims(dims, kept);
  return {
    id, state: 'init', started: false, attemptTsMs: null, sinceMs: tsMs, extrapolatedToMs: tsMs, lastTsMs: tsMs, lastSeq: -1, seenBelow: 0,
    dims: own.dims, dimsKey: own.key, bitrateKbps: 0, droppedFrames: 0, clockOffsetMs, touchedAt: -1, logged: false, changed: false,
  };
}

/** A session's fields without the changelog bookkeeping (what checkpoints store and tests compare). */
export function measuredFields(s: Session): Omit<Session, 'touchedAt' | 'logged' | 'changed'> {
  const { touchedAt: _t, logged: _l, changed: _c, ...rest } = s;
  return rest;
}

/** `s` (from a checkpoint or an earlier version's changelog) with the bookkeeping fields set (mutates and returns it). */
export function withBookkeeping(s: Session, touchedAt: number, logged: boolean): Session {
  s.touchedAt = touchedAt;
  s.logged = logged;
  s.changed = false;
  return s;
}

/**
 * A session as stored by an earlier version (changelog, checkpoint file) in today's shape. Before
 * windows fired on time, extrapolation moved `sinceMs` itself and kept the pieces in `extrapolated`:
 * the first piece starts at the last event, and the old `sinceMs` is where attribution reached.
 */
export function upgradeSession(raw: Session & { extrapolated?: Array<{ fromMs: number }> }): Session {
  if (typeof raw.extrapolatedToMs === 'number') return raw;
  const { extrapolated, ...s } = raw;
  const first = extrapolated?.[0];
  return { ...s, sinceMs: first === undefined ? s.sinceMs : first.fromMs, extrapolatedToMs: s.sinceMs };
}

/** What a single event does to its session, beyond the time attributed before it. */
export interface Transition {
  next: SessionState;
  attempt?: boolean;
  play?: boolean;
  vsf?: boolean;
  vpf?: boolean;
  ebvs?: boolean;
  ended?: boolean;
  rebufferStart?: boolean;
  seekStart?: boolean;
}

/**
 * The transitions, one frozen object each: transition() runs for every event, and a fresh object per
 * call was a steady share of the processor's allocation (bench/README.md, eighth session).
 */
const T = {
  init: { next: 'init' }, starting: { next: 'starting' }, playing: { next: 'playing' }, paused: { next: 'paused' },
  seeking: { next: 'seeking' }, rebuffering: { next: 'rebuffering' }, ended: { next: 'ended' }, failed: { next: 'failed' },
  quit: { next: 'quit' },
  attempt: { next: 'starting', attempt: true },
  play: { next: 'playing', play: true },
  vsf: { next: 'failed', vsf: true },
  ebvs: { next: 'quit', ebvs: true },
  vpf: { next: 'failed', vpf: true },
  endedAfterPlay: { next: 'ended', ended: true },
  seekStart: { next: 'seeking', seekStart: true },
  rebufferStart: { next: 'rebuffering', rebufferStart: true },
} as const satisfies Record<string, Transition>;
for (const t of Object.values(T)) Object.freeze(t);

/** The transition with no effect into `state`. */
const STAY: Readonly<Record<SessionState, Transition>> = T;

/**
 * The transition table. `ebvsMinMs`: exits before start shorter than this are not scored as EBVS.
 * The result is shared and frozen: read it, do not keep or change it.
 */
export function transition(s: Session, e: SessionEvent, tsMs: number, ebvsMinMs: number): Readonly<Transition> {
  const from = s.state;
  if (TERMINAL_STATES.has(from)) return STAY[from];
  const fatal = e.type === 'error' && e.errorFatal === true;
  switch (from) {
    case 'init':
      if (e.type === 'play_request') return T.attempt;
      if (e.type === 'first_frame' || e.type === 'playing') return T.playing;
      if (e.type === 'paused' || e.type === 'seeking' || e.type === 'rebuffering') return STAY[e.type];
      if (fatal) return T.failed;
      if (e.type === 'ended') return T.ended;
      if (e.type === 'quit') return T.quit;
      return T.init;
    case 'starting':
      if (e.type === 'first_frame' || e.type === 'playing') return T.play;
      if (fatal) return T.vsf;
      if (e.type === 'quit' || e.type === 'ended') {
        const startupMs = s.attemptTsMs === null ? 0 : tsMs - s.attemptTsMs;
        return startupMs >= ebvsMinMs ? T.ebvs : T.quit;
      }
      // A seek, stall or pause during startup stays inside the startup time (METRICS.md: VST).
      return T.starting;
    default:
      // started: playing | paused | seeking | rebuffering
      if (fatal) return T.vpf;
      if (e.type === 'ended') return T.endedAfterPlay;
      if (e.type === 'quit') return T.quit;
      if (e.type === 'first_frame' || e.type === 'playing') return T.playing;
      if (e.type === 'paused') return T.paused;
      if (e.type === 'seeking') return from !== 'seeking' ? T.seekStart : T.seeking;
      if (e.type === 'rebuffering') {
        // A stall reported while seeking is the seek's own buffering: seek-induced, kept apart.
        if (from === 'seeking') return T.seeking;
        return from !== 'rebuffering' ? T.rebufferStart : T.rebuffering;
      }
      return STAY[from];
  }
}

export type SeqVerdict = 'next' | 'gap' | 'duplicate' | 'reordered';

/**
 * Classifies a sequence number against what the session has seen, and records it. Players number
 * events from 0 per session; retries may duplicate, concurrent posts may reorder.
 */
export function observeSeq(s: Session, seq: number): SeqVerdict {
  if (seq > s.lastSeq) {
    const shift = seq - s.lastSeq;
    // bit 0 of seenBelow is lastSeq − 1; after moving up, the old lastSeq becomes bit (shift − 1).
    s.seenBelow = shift > 31 ? 0 : ((s.seenBelow << shift) | (s.lastSeq >= 0 ? 1 << (shift - 1) : 0)) >>> 0;
    const verdict: SeqVerdict = s.lastSeq >= 0 && shift > 1 ? 'gap' : 'next';
    s.lastSeq = seq;
    return verdict;
  }
  if (seq === s.lastSeq) return 'duplicate';
  const bit = s.lastSeq - 1 - seq;
  if (bit > 31) return 'duplicate'; // too old to tell; treat as a retry
  const mask = (1 << bit) >>> 0;
  if ((s.seenBelow & mask) !== 0) return 'duplicate';
  s.seenBelow = (s.seenBelow | mask) >>> 0;
  return 'reordered';
}

/**
 * An event's dimensions over the session's: non-empty values win. Only the dimensions `kept` in the
 * window tables (QOE_WINDOW_DIMENSIONS) are taken; the others stay ''. Copy-on-write: returns `base`
 * itself when nothing changes (the common case), a new object otherwise, which the caller hands to
 * sharedDims (that interns the values: not done here twice).
 */
export function mergeDims(base: Dims, from: Dims, kept: readonly Dimension[] = DIMENSIONS): Dims {
  let out: Dims | null = null;
  // Indexed: V8 allocated an iterator result per dimension here (allocation profile of bench/kafka.ts).
  for (let i = 0; i < kept.length; i++) {
    const k = kept[i] as Dimension;
    const v = from[k];
    if (v !== '' && v !== base[k]) {
      out ??= { ...base };
      out[k] = v;
    }
  }
  return out ?? base;
}

/**
 * Clock-skew rule (docs/metrics.md): the first event of a session fixes an offset. A client clock
 * more than `maxAheadMs` ahead of the server's receive time, or more than `maxBehindMs` behind it,
 * is wrong, not late: the session's events are shifted by (receivedAt − ts) of that first event, which
 * keeps the intervals between them. Every event is then capped at receivedAt + maxAheadMs so one bad
 * clock cannot drag the watermark into the future.
 */
export function clockOffsetFor(e: SessionEvent, maxAheadMs: number, maxBehindMs: number): number {
  const skew = e.tsMs - e.receivedAtMs;
  return skew > maxAheadMs || skew < -maxBehindMs ? -skew : 0;
}

export function correctedTs(e: SessionEvent, offsetMs: number, maxAheadMs: number): number {
  return Math.min(e.tsMs + offsetMs, e.receivedAtMs + maxAheadMs);
}
