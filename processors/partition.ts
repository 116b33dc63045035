import type { Dimension, Dims, SessionEvent } from '../schemas/events.js';
import {
  addError, addTtfb, addVst, bitrateBucket, dimsFromKey, dimsKey, emptyAcc, isEmptyAcc, type WindowAcc,
} from './accumulator.js';
import {
  ACTIVE_STATES, clockOffsetFor, correctedTs, mergeDims, newSession, observeSeq, pooledDimsOfKey, sharedDims, transition,
  type Session, type SessionState,
} from './session.js';
import { SessionMap } from './session-map.js';
import { windowStartOf } from './windows.js';

export interface ProcessorSettings {
  windowMs: number;
  graceMs: number;
  sessionTimeoutMs: number;
  maxSessions: number;
  maxClockAheadMs: number;
  maxClockSkewMs: number;
  ebvsMinMs: number;
  /** Dimensions kept in the window tables (QOE_WINDOW_DIMENSIONS); absent = all of them. */
  windowDims?: readonly Dimension[];
}

export interface PartitionCounters {
  events: number;
  late: number;
  reordered: number;
  duplicates: number;
  gaps: number;
  afterEnd: number;
  expired: number;
  evicted: number;
  skewCorrected: number;
}

/** The state of one input partition: its sessions and its window accumulators. */
export interface PartitionState {
  sessions: SessionMap;
  /** windowStartMs → dimsKey → accumulator, for windows not yet closed. */
  open: Map<number, Map<string, WindowAcc>>;
  /** Deltas for windows already closed (retractions, expiry EBVS): emitted at the next advance. */
  corrections: Map<number, Map<string, WindowAcc>>;
  /**
   * Windows ending at or before this have fired: their on-time rows went out when the watermark
   * passed their end; what arrives for them within the grace period goes out later as delta rows.
   */
  firedBeforeMs: number;
  /** Windows ending at or before this are closed (−Infinity before the first close). */
  closedBeforeMs: number;
  /**
   * Accumulators changed or removed since the last changelog diff; null = not tracked (no
   * changelog: embedded), and a diff then compares every accumulator.
   */
  dirtyAccs: DirtyAccs | null;
  /**
   * Sessions changed since the last changelog diff, each once (its `changed` flag): every session an
   * event named, and those advance() or an eviction changed (expired or evicted — no longer in
   * `sessions` — or extrapolated from behind the fired boundary). null = not tracked (no changelog:
   * embedded).
   */
  changed: Session[] | null;
  counters: PartitionCounters;
}

export interface WindowOutput {
  windowStartMs: number;
  dims: Dims;
  acc: WindowAcc;
  /** dimsKey(dims), when the maker has it. */
  key?: string;
}

/** Why an event is copied to the dead-letter topic. */
export type DeadLetterReason = 'late' | 'after_end';

export function emptyPartitionState(): PartitionState {
  return {
    sessions: new SessionMap(), open: new Map(), corrections: new Map(), firedBeforeMs: -Infinity, closedBeforeMs: -Infinity, dirtyAccs: null, changed: null,
    counters: { events: 0, late: 0, reordered: 0, duplicates: 0, gaps: 0, afterEnd: 0, expired: 0, evicted: 0, skewCorrected: 0 },
  };
}

/** The changelog key of an accumulator (processors/changelog.ts). */
export const accKey = (table: 'open' | 'corrections', w: number, k: string): string => `a:${table}:${w}:${k}`;

/**
 * Accumulators to diff, as table → window start → dims keys. Marking one is a lookup of strings the
 * processor already holds (accFor runs for every piece of time attributed: building its changelog
 * key there was the processor's largest own cost).
 */
export interface DirtyAccs {
  open: Map<number, Set<string>>;
  corrections: Map<number, Set<string>>;
}

export const newDirtyAccs = (): DirtyAccs => ({ open: new Map(), corrections: new Map() });

export function markAcc(d: DirtyAccs, table: 'open' | 'corrections', w: number, key: string): void {
  let keys = d[table].get(w);
  if (keys === undefined) d[table].set(w, (keys = new Set()));
  keys.add(key);
}

function accFor(ps: PartitionState, cfg: ProcessorSettings, windowStartMs: number, dims: Dims, key = dimsKey(dims)): WindowAcc {
  const closed = windowStartMs + cfg.windowMs <= ps.closedBeforeMs;
  const table = closed ? ps.corrections : ps.open;
  if (ps.dirtyAccs !== null) markAcc(ps.dirtyAccs, closed ? 'corrections' : 'open', windowStartMs, key);
  let byDims = table.get(windowStartMs);
  if (!byDims) {
    byDims = new Map();
    table.set(windowStartMs, byDims);
  }
  let acc = byDims.get(key);
  if (!acc) {
    acc = emptyAcc();
    byDims.set(key, acc);
  }
  return acc;
}

function accAt(ps: PartitionState, cfg: ProcessorSettings, tsMs: number, dims: Dims, key?: string): WindowAcc {
  return accFor(ps, cfg, windowStartOf(tsMs, cfg.windowMs), dims, key);
}

/** Attributes [fromMs, toMs) spent in `state` to windows, with `sign` −1 for a retraction. */
function attribute(
  ps: PartitionState, cfg: ProcessorSettings, fromMs: number, toMs: number,
  state: SessionState, dims: Dims, bitrateKbps: number, sign: 1 | -1, key = dimsKey(dims),
): void {
  if (!ACTIVE_STATES.has(state) || toMs <= fromMs) return;
  // [fromMs, toMs) split at window boundaries, each millisecond in exactly one piece; walked without
  // building the pieces (this runs for every event).
  for (let start = fromMs; start < toMs; ) {
    const w = windowStartOf(start, cfg.windowMs);
    const end = Math.min(toMs, w + cfg.windowMs);
    const acc = accFor(ps, cfg, w, dims, key);
    const ms = sign * (end - start);
    start = end;
    acc.activeMs += ms;
    switch (state) {
      case 'starting': acc.startingMs += ms; break;
      case 'paused': acc.pausedMs += ms; break;
      case 'seeking': acc.seekMs += ms; break;
      case 'rebuffering': acc.rebufferMs += ms; break;
      case 'playing': {
        acc.playingMs += ms;
        if (bitrateKbps > 0) {
          const b = bitrateBucket(bitrateKbps);
          acc.bitrateMs.set(b, (acc.bitrateMs.get(b) ?? 0) + ms);
          acc.bitsPlayed += bitrateKbps * ms;
        }
        break;
      }
    }
  }
}

function touch(ps: PartitionState, s: Session, inputOffset: number): void {
  // Least recently updated first: expiry and eviction scan from the front.
  ps.sessions.touch(s);
  s.touchedAt = inputOffset;
}

/** Notes that `s` changed since the last changelog diff (when the partition tracks it). */
function markChanged(ps: PartitionState, s: Session): void {
  if (ps.changed === null || s.changed) return;
  s.changed = true;
  ps.changed.push(s);
}

export type ApplyOutcome = { kind: 'ok' } | { kind: 'dead_letter'; reason: DeadLetterReason; tsMs: number } | { kind: 'duplicate' };
/** The outcomes without data, shared (one per event was the core's most frequent allocation). */
const OK: ApplyOutcome = Object.freeze({ kind: 'ok' });
const DUPLICATE: ApplyOutcome = Object.freeze({ kind: 'duplicate' });

/**
 * Applies one event to its session and the window accumulators. `inputOffset`: the event's input
 * record (the changelog restores sessions in the order of the records that last moved them; −1 = none).
 */
export function applyEvent(ps: PartitionState, cfg: ProcessorSettings, e: SessionEvent, inputOffset = -1): ApplyOutcome {
  ps.counters.events += 1;
  let s = ps.sessions.get(e.sessionId);
  if (!s) {
    const offset = clockOffsetFor(e, cfg.maxClockAheadMs, cfg.maxClockSkewMs);
    if (offset !== 0) ps.counters.skewCorrected += 1;
    const ts0 = Math.max(correctedTs(e, offset, cfg.maxClockAheadMs), ps.closedBeforeMs);
    s = newSession(e.sessionId, e.dims, ts0, offset, cfg.windowDims);
    if (ps.sessions.size >= cfg.maxSessions) evictOldest(ps, cfg);
    ps.sessions.set(s.id, s);
  }
  // Every session an event names is written to the changelog (sequence tracking may have changed it).
  markChanged(ps, s);
  const verdict = observeSeq(s, e.seq);
  if (verdict === 'duplicate') {
    ps.counters.duplicates += 1;
    return DUPLICATE;
  }
  if (verdict === 'gap') ps.counters.gaps += 1;
  const rawTs = correctedTs(e, s.clockOffsetMs, cfg.maxClockAheadMs);
  // Event time never moves a session backwards: an event before the attribution cursor is applied
  // at the cursor. Before a closed window's end it is late (counted, and copied to the dead letters).
  const tsMs = Math.max(rawTs, s.sinceMs, ps.closedBeforeMs);
  const late = rawTs < ps.closedBeforeMs;
  if (late) ps.counters.late += 1;
  else if (rawTs < s.sinceMs) ps.counters.reordered += 1;

  if (s.state === 'ended' || s.state === 'failed' || s.state === 'quit') {
    ps.counters.afterEnd += 1;
    return { kind: 'dead_letter', reason: 'after_end', tsMs: rawTs };
  }
  // The state held until this event: its time up to now is known. Time already attributed past the
  // last event (extrapolated up to the fired boundary) is confirmed up to here; beyond here, retracted.
  if (tsMs >= s.extrapolatedToMs) attribute(ps, cfg, s.extrapolatedToMs, tsMs, s.state, s.dims, s.bitrateKbps, 1, s.dimsKey);
  else attribute(ps, cfg, tsMs, s.extrapolatedToMs, s.state, s.dims, s.bitrateKbps, -1, s.dimsKey);
  s.sinceMs = tsMs;
  s.extrapolatedToMs = tsMs;
  s.lastTsMs = tsMs;
  const dims = mergeDims(s.dims, e.dims, cfg.windowDims);
  if (dims !== s.dims) {
    const shared = sharedDims(dims);
    s.dims = shared.dims;
    s.dimsKey = shared.key;
  }
  if (e.bitrateKbps !== null) s.bitrateKbps = e.bitrateKbps;

  const t = transition(s, e, tsMs, cfg.ebvsMinMs);
  const acc = accAt(ps, cfg, tsMs, s.dims, s.dimsKey);
  if (t.attempt) {
    acc.attempts += 1;
    s.attemptTsMs = tsMs;
  }
  if (t.play) {
    acc.plays += 1;
    const vst = e.startupMs ?? (s.attemptTsMs === null ? null : tsMs - s.attemptTsMs);
    if (vst !== null) addVst(acc, Math.max(0, vst));
  }
  if (t.vsf) acc.vsf += 1;
  if (t.vpf) acc.vpf += 1;
  if (t.ebvs) acc.ebvs += 1;
  if (t.ended) acc.ended += 1;
  if (t.rebufferStart) acc.rebufferCount += 1;
  if (t.seekStart) acc.seekCount += 1;
  if (e.type === 'error' && e.errorCode !== null) addError(acc, e.errorCode, e.errorFatal === true);
  if (e.type === 'request' && e.httpStatus !== null) {
    acc.requests += 1;
    if (e.httpStatus === 0 || e.httpStatus >= 400) acc.requestErrors += 1;
    if (e.ttfbMs !== null) addTtfb(acc, e.ttfbMs);
    if (e.ttlbMs !== null) acc.ttlbSumMs += e.ttlbMs;
  }
  if (e.droppedFrames !== null) {
    // Players report a cumulative count; a reset (new counter) counts from zero.
    const delta = e.droppedFrames >= s.droppedFrames ? e.droppedFrames - s.droppedFrames : e.droppedFrames;
    acc.droppedFrames += delta;
    s.droppedFrames = e.droppedFrames;
  }
  if (t.next !== 'init' && t.next !== 'starting') s.started = s.started || ACTIVE_STATES.has(t.next);
  s.state = t.next;
  touch(ps, s, inputOffset);
  return late ? { kind: 'dead_letter', reason: 'late', tsMs: rawTs } : OK;
}

/**
 * Ends a session that went silent: time extrapolated past its last event is retracted, and an
 * attempt that never reached its first frame is an exit before video start (EBVS) in the window of
 * its last event.
 */
function expire(ps: PartitionState, cfg: ProcessorSettings, s: Session): void {
  attribute(ps, cfg, s.sinceMs, s.extrapolatedToMs, s.state, s.dims, s.bitrateKbps, -1, s.dimsKey);
  s.extrapolatedToMs = s.sinceMs;
  if (s.state === 'starting' && s.attemptTsMs !== null && s.lastTsMs - s.attemptTsMs >= cfg.ebvsMinMs) {
    accAt(ps, cfg, s.lastTsMs, s.dims).ebvs += 1;
  }
  ps.sessions.delete(s.id);
  markChanged(ps, s);
}

function evictOldest(ps: PartitionState, cfg: ProcessorSettings): void {
  const oldest = ps.sessions.oldest();
  if (oldest === undefined) return;
  ps.counters.evicted += 1;
  expire(ps, cfg, oldest);
}

/**
 * Moves event time forward to `watermarkMs`:
 * - expires sessions silent for sessionTimeoutMs;
 * - fires every window whose end ≤ watermark: its rows go out now (on time, not after the grace
 *   period), with the open states of active sessions attributed up to that boundary (a state holds
 *   until an event changes it; the next event confirms that time or retracts what it overshot, and
 *   expiry retracts it);
 * - closes every window whose end + grace ≤ watermark: later events for it are late (applied at the
 *   close boundary and dead-lettered).
 * Events that arrive for a fired window within its grace period, and retractions, accumulate as
 * deltas and go out at the next advance that moves a boundary. Every row is additive (sums,
 * histogram counts), so a window's value is the sum of its rows: exact once it has closed, and
 * complete up to the watermark from the moment it fired.
 */
export function advance(ps: PartitionState, cfg: ProcessorSettings, watermarkMs: number): WindowOutput[] {
  const newFired = windowStartOf(watermarkMs, cfg.windowMs);
  const newClosed = windowStartOf(watermarkMs - cfg.graceMs, cfg.windowMs);
  if (!(newFired > ps.firedBeforeMs) && !(newClosed > ps.closedBeforeMs)) return [];
  for (const s of ps.sessions.values()) {
    if (watermarkMs - s.lastTsMs < cfg.sessionTimeoutMs) break;
    ps.counters.expired += 1;
    expire(ps, cfg, s);
  }
  const fireTo = Math.max(newFired, ps.firedBeforeMs);
  const closeTo = Math.max(newClosed, ps.closedBeforeMs);
  for (const s of ps.sessions.values()) {
    if (!ACTIVE_STATES.has(s.state) || s.extrapolatedToMs >= fireTo) continue;
    // One that followed the boundary still does after this (the changelog writes no time for it,
    // changelog.ts encodeSessionState); one a straggler left behind it changes.
    if (s.extrapolatedToMs !== Math.max(s.sinceMs, ps.firedBeforeMs)) markChanged(ps, s);
    attribute(ps, cfg, s.extrapolatedToMs, fireTo, s.state, s.dims, s.bitrateKbps, 1, s.dimsKey);
    s.extrapolatedToMs = fireTo;
  }
  const out: WindowOutput[] = [];
  const drain = (name: 'open' | 'corrections', w: number): void => {
    const table = ps[name];
    const byDims = table.get(w);
    if (!byDims) return;
    for (const [key, acc] of byDims) {
      if (!isEmptyAcc(acc)) out.push({ windowStartMs: w, dims: pooledDimsOfKey(key) ?? dimsFromKey(key), acc, key });
      if (ps.dirtyAccs !== null) markAcc(ps.dirtyAccs, name, w, key);
    }
    table.delete(w);
  };
  for (const w of [...ps.corrections.keys()].sort((a, b) => a - b)) drain('corrections', w);
  for (const w of [...ps.open.keys()].sort((a, b) => a - b)) if (w + cfg.windowMs <= fireTo) drain('open', w);
  ps.firedBeforeMs = fireTo;
  ps.closedBeforeMs = closeTo;
  return out;
}
