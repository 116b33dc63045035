/**
 * The decision log: pure, synchronous, bounded. It holds
 * - the current decision per scope (bounded: at `maxScopes` the least recently updated scope is dropped,
 *   which for a player means "no decision": it stays where it is);
 * - the last `capacity` applied decisions in seq order (a ring buffer), for `?since=<seq>` resume.
 * The service (service.ts) owns the clock, the bus, the store and the sockets around it.
 */
import type { SteeringDecision, SteeringScope } from './decision.js';
import { scopeKey } from './codec.js';

export const DEFAULT_HISTORY_CAPACITY = 10_000;
export const DEFAULT_MAX_SCOPES = 100_000;

export type SinceResult =
  | { ok: true; decisions: SteeringDecision[] }
  | { ok: false; reason: 'too_old' | 'ahead'; requestedSeq: number; oldestSeq: number; lastSeq: number; message: string };

export interface DecisionLog {
  /** Seq of the last applied decision (0 when none). */
  lastSeq(): number;
  /** Seq of the oldest retained decision (lastSeq() + 1 when the history is empty). */
  oldestSeq(): number;
  /** Records an applied decision; its seq must be greater than lastSeq(). Returns the scope evicted at the bound, if any. */
  append(d: SteeringDecision): SteeringScope | undefined;
  /**
   * Start state after a restart: `current` becomes the current decision of each scope, `history` (seq
   * order, the newest part of the log) refills the ring. Only on an empty log.
   */
  restore(current: readonly SteeringDecision[], history: readonly SteeringDecision[]): void;
  /** The current decision of exactly this scope (expiry is the caller's business: see effectiveDecision). */
  get(scope: SteeringScope): SteeringDecision | undefined;
  /** Current decisions, one per scope, in seq order. */
  current(): SteeringDecision[];
  /** Every retained decision with seq > `seq`, in order; or why that cannot be answered without gaps. */
  since(seq: number): SinceResult;
  size(): { scopes: number; history: number };
}

export interface DecisionLogOptions {
  capacity?: number;
  maxScopes?: number;
}

export function createDecisionLog(opts: DecisionLogOptions = {}): DecisionLog {
  const capacity = opts.capacity ?? DEFAULT_HISTORY_CAPACITY;
  const maxScopes = opts.maxScopes ?? DEFAULT_MAX_SCOPES;
  if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('capacity must be a positive integer');
  if (!Number.isInteger(maxScopes) || maxScopes < 1) throw new RangeError('maxScopes must be a positive integer');
  const ring: Array<SteeringDecision | undefined> = new Array<SteeringDecision | undefined>(capacity);
  let head = 0; // index of the oldest entry
  let count = 0;
  let last = 0;
  // Map order = update order (delete before set), so the first key is the least recently updated scope.
  const currentByScope = new Map<string, SteeringDecision>();

  function at(i: number): SteeringDecision {
    const d = ring[(head + i) % capacity];
    if (d === undefined) throw new Error('decision log: ring slot empty');
    return d;
  }

  function oldestSeq(): number {
    return count === 0 ? last + 1 : at(0).seq;
  }

  return {
    lastSeq: () => last,
    oldestSeq,
    append(d) {
      if (!(d.seq > last)) throw new RangeError(`decision seq ${d.seq} is not after ${last}`);
      ring[(head + count) % capacity] = d;
      if (count < capacity) count += 1;
      else head = (head + 1) % capacity;
      last = d.seq;
      const key = scopeKey(d.scope);
      currentByScope.delete(key);
      currentByScope.set(key, d);
      if (currentByScope.size <= maxScopes) return undefined;
      const [oldestKey, evicted] = currentByScope.entries().next().value as [string, SteeringDecision];
      currentByScope.delete(oldestKey);
      return evicted.scope;
    },
    restore(current, history) {
      if (last !== 0 || count !== 0) throw new Error('decision log: restore() on a non-empty log');
      const tail = history.slice(-capacity);
      tail.forEach((d, i) => {
        ring[i] = d;
      });
      count = tail.length;
      for (const d of [...current].sort((a, b) => a.seq - b.seq).slice(-maxScopes)) currentByScope.set(scopeKey(d.scope), d);
      last = [...current, ...tail].reduce((m, d) => Math.max(m, d.seq), 0);
    },
    get: (scope) => currentByScope.get(scopeKey(scope)),
    current: () => [...currentByScope.values()].sort((a, b) => a.seq - b.seq),
    since(seq) {
      const oldest = oldestSeq();
      if (seq > last) {
        return {
          ok: false, reason: 'ahead', requestedSeq: seq, oldestSeq: oldest, lastSeq: last,
          message: `seq ${seq} is ahead of the last decision ${last} (another deployment or a reset log): discard local state and use the snapshot that follows`,
        };
      }
      if (seq < oldest - 1) {
        return {
          ok: false, reason: 'too_old', requestedSeq: seq, oldestSeq: oldest, lastSeq: last,
          message: `seq ${seq} is older than the retained history (oldest ${oldest}): decisions in between are gone, re-snapshot: use the snapshot that follows`,
        };
      }
      // seq >= oldest - 1: the first decision wanted is at index seq + 1 - oldest if seqs are dense;
      // they need not be (a replayed, compacted topic), so skip forward by value.
      const out: SteeringDecision[] = [];
      for (let i = 0; i < count; i += 1) {
        const d = at(i);
        if (d.seq > seq) out.push(d);
      }
      return { ok: true, decisions: out };
    },
    size: () => ({ scopes: currentByScope.size, history: count }),
  };
}

/** Decisions that hold the neutral priority never expire into anything different. */
export function isNeutralAction(d: SteeringDecision): boolean {
  return d.action === 'neutral' || d.action === 'kill_switch';
}

/** True once a decision's TTL has passed (ttlMs 0 = never). */
export function isExpired(d: SteeringDecision, nowMs: number): boolean {
  return d.ttlMs > 0 && d.issuedAtMs + d.ttlMs <= nowMs;
}

/**
 * The decision a scope is under at `nowMs`: the ASN-specific one, else the country-wide one;
 * an expired decision counts as `neutral` (priority = neutralPriority).
 */
export function effectiveDecision(
  log: Pick<DecisionLog, 'get'>,
  scope: SteeringScope,
  nowMs: number,
): { decision: SteeringDecision; expired: boolean } | undefined {
  const d = (scope.asn !== '' ? log.get(scope) : undefined) ?? log.get({ country: scope.country, asn: '' });
  if (d === undefined) return undefined;
  return { decision: d, expired: isExpired(d, nowMs) };
}
