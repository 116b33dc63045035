/**
 * The small per-session memory CMCD translation needs (what `sta` was, whether the first frame was
 * seen, the last CDN, `sn` bookkeeping), in a bounded map evicted least-recently-used first.
 * Per process: with several ingest instances a session's records may land on different ones; see
 * docs/cmcd.md for what that costs (a `first_frame` reported as `playing`, nothing worse).
 */
import type { CmcdPlayerState } from './parse.js';

export const DEFAULT_MAX_SESSIONS = 50_000;

export interface SessionTranslation {
  /** Highest `sn` seen, -1 before any. */
  lastSn: number;
  /** Bit i set = `sn` (lastSn − 1 − i) was seen: tells a retry (duplicate) from a reordered record. */
  seenBelow: number;
  /** seq for the next record that carries no `sn`. */
  nextSeq: number;
  /** `sta` of the last state event emitted. */
  lastSta: CmcdPlayerState | null;
  /** A first_frame was emitted. */
  played: boolean;
  /** `msd` received before the first frame, waiting for it. */
  pendingMsd: number | null;
  cdn: string;
  contentId: string;
  streamType: string;
}

export interface CmcdTranslationState {
  readonly maxSessions: number;
  /** Map order = least recently used first. */
  readonly sessions: Map<string, SessionTranslation>;
}

export function createCmcdTranslationState(maxSessions: number = DEFAULT_MAX_SESSIONS): CmcdTranslationState {
  if (!Number.isInteger(maxSessions) || maxSessions < 1) throw new RangeError(`maxSessions must be a positive integer, got ${maxSessions}`);
  return { maxSessions, sessions: new Map() };
}

function newSessionTranslation(): SessionTranslation {
  return { lastSn: -1, seenBelow: 0, nextSeq: 0, lastSta: null, played: false, pendingMsd: null, cdn: '', contentId: '', streamType: '' };
}

/** The session's translation (created if absent, marked most recently used); `evicted` = how many were dropped for room. */
export function touchSession(state: CmcdTranslationState, key: string): { session: SessionTranslation; evicted: number } {
  let session = state.sessions.get(key);
  let evicted = 0;
  if (session) {
    state.sessions.delete(key);
  } else {
    session = newSessionTranslation();
    while (state.sessions.size >= state.maxSessions) {
      const oldest = state.sessions.keys().next();
      if (oldest.done === true) break;
      state.sessions.delete(oldest.value);
      evicted += 1;
    }
  }
  state.sessions.set(key, session);
  return { session, evicted };
}

export type SnVerdict = 'next' | 'gap' | 'duplicate' | 'reordered';

/**
 * Classifies a record's `sn` ("a monotonically increasing integer … reset to zero on the start of a
 * new session-id … per each combination of mode and target", CTA-5004-B) and records it.
 */
export function observeSn(s: SessionTranslation, sn: number): SnVerdict {
  if (sn > s.lastSn) {
    const shift = sn - s.lastSn;
    s.seenBelow = shift > 31 ? 0 : ((s.seenBelow << shift) | (s.lastSn >= 0 ? 1 << (shift - 1) : 0)) >>> 0;
    // The first sn of a session may be above 0 (a player that numbered earlier reports elsewhere): not a gap.
    const verdict: SnVerdict = s.lastSn >= 0 && shift > 1 ? 'gap' : 'next';
    s.lastSn = sn;
    return verdict;
  }
  if (sn === s.lastSn) return 'duplicate';
  const bit = s.lastSn - 1 - sn;
  if (bit > 31) return 'duplicate'; // too old to tell: a late retry is the likelier story
  const mask = (1 << bit) >>> 0;
  if ((s.seenBelow & mask) !== 0) return 'duplicate';
  s.seenBelow = (s.seenBelow | mask) >>> 0;
  return 'reordered';
}
