import type { BusMessage, BusRecord } from '../lib/bus/types.js';
import { emptyAcc, type WindowAcc } from './accumulator.js';
import { accKey, emptyPartitionState, type PartitionCounters, type PartitionState } from './partition.js';
import { upgradeSession, type Session } from './session.js';

/**
 * The processor's state changelog (qoe.processor-state.v1, compacted; changelog partition p holds the
 * state of input partition p). Kafka Streams style: one record per entity, written only when it
 * changed, in the same transaction as the outputs and input offsets it goes with. Keys:
 * - `s:<sessionId>` → { t, s }: the session, and `t` = offset of the input record that last moved it
 *   to the back of the partition's session map (restore rebuilds the map in that order, so expiry
 *   and eviction scan sessions exactly as the live processor did);
 * - `a:<open|corrections>:<windowStartMs>:<dimsKey>` → the window accumulator;
 * - `m` → partition meta: closedBeforeMs, firedBeforeMs, counters, max event time (for the watermark),
 *   and the next input offset the state covers (see processor.ts: a restarted owner can be handed an
 *   older committed offset than the state it restored, and skips what the state already holds);
 * - `r` → restore barrier (see processor.ts), ignored here.
 * An empty value is a tombstone (session expired, window emitted). Values are JSON.
 */
export const META_KEY = 'm';
export const BARRIER_KEY = 'r';

export interface ChangelogMeta {
  v: 1;
  closedBeforeMs: number | null;
  /** Absent in records written before windows fired on time: then equal to closedBeforeMs. */
  firedBeforeMs?: number | null;
  counters: PartitionCounters;
  maxTsMs: number | null;
  /** Next input offset of the partition this state covers; absent in records written before it was kept. */
  nextOffset?: number | null;
}

type Table = 'open' | 'corrections';

type AccJson = Omit<WindowAcc, 'vstHist' | 'ttfbHist' | 'bitrateMs' | 'errors'> & {
  vstHist: Array<[number, number]>;
  ttfbHist: Array<[number, number]>;
  bitrateMs: Array<[number, number]>;
  errors: Array<[string, number]>;
};

interface AccRecord {
  table: Table;
  w: number;
  k: string;
  acc: AccJson;
}

interface SessionRecord {
  t: number;
  s: Session;
}

/**
 * What decides whether a commit must diff every session rather than the ones its batch touched:
 * moving the fired boundary extrapolates every active session, moving the closed boundary or an
 * eviction can change sessions the batch never touched.
 */
export interface StateMark {
  firedBeforeMs: number;
  closedBeforeMs: number;
  evicted: number;
}

export function markOf(ps: PartitionState): StateMark {
  return { firedBeforeMs: ps.firedBeforeMs, closedBeforeMs: ps.closedBeforeMs, evicted: ps.counters.evicted };
}

export function movedSince(mark: StateMark, ps: PartitionState): boolean {
  return ps.firedBeforeMs !== mark.firedBeforeMs || ps.closedBeforeMs !== mark.closedBeforeMs || ps.counters.evicted !== mark.evicted;
}

/** What the changelog holds for one partition as of the last committed transaction. */
export interface ChangelogTracker {
  readonly partition: number;
  /** session id → committed value. */
  sessions: Map<string, string>;
  /** accumulator key → committed value. */
  accs: Map<string, string>;
  meta: string | undefined;
  /** session id → offset of the input record that last touched it (see the module comment). */
  touched: Map<string, number>;
}

export interface ChangelogDiff {
  messages: BusMessage[];
  /** Records the diff as committed; call after the transaction carrying `messages` succeeded. */
  commit(): void;
}

export function createTracker(partition: number): ChangelogTracker {
  return { partition, sessions: new Map(), accs: new Map(), meta: undefined, touched: new Map() };
}

/** The input record at `offset` touched session `id` (applyEvent moved it to the back of the map). */
export function noteTouch(t: ChangelogTracker, id: string, offset: number): void {
  t.touched.set(id, offset);
}

function accToJson(a: WindowAcc): AccJson {
  return { ...a, vstHist: [...a.vstHist], ttfbHist: [...a.ttfbHist], bitrateMs: [...a.bitrateMs], errors: [...a.errors] };
}

function accFromJson(j: AccJson): WindowAcc {
  return { ...emptyAcc(), ...j, vstHist: new Map(j.vstHist), ttfbHist: new Map(j.ttfbHist), bitrateMs: new Map(j.bitrateMs), errors: new Map(j.errors) };
}

const sessionKey = (id: string): string => `s:${id}`;

/**
 * The changelog records that bring the committed state up to `ps`. `sessions`: the ids that may have
 * changed (the batch's events), or 'all' after windows closed or a session was evicted (expiry and
 * extrapolation touch sessions no event named).
 */
export function diffPartition(
  ps: PartitionState, t: ChangelogTracker, opts: { maxTsMs: number | null; sessions: Iterable<string> | 'all'; nextOffset: number | null },
): ChangelogDiff {
  const partition = t.partition;
  const changes: Array<{ kind: 'session' | 'acc' | 'meta'; id: string; key: string; value: string | null }> = [];
  const diffSession = (id: string): void => {
    const s = ps.sessions.get(id);
    const before = t.sessions.get(id);
    if (s === undefined) {
      if (before !== undefined) changes.push({ kind: 'session', id, key: sessionKey(id), value: null });
      return;
    }
    const value = JSON.stringify({ t: t.touched.get(id) ?? -1, s } satisfies SessionRecord);
    if (value !== before) changes.push({ kind: 'session', id, key: sessionKey(id), value });
  };
  if (opts.sessions === 'all') {
    for (const id of ps.sessions.keys()) diffSession(id);
    for (const id of t.sessions.keys()) if (!ps.sessions.has(id)) diffSession(id);
  } else {
    for (const id of new Set(opts.sessions)) diffSession(id);
  }
  const diffAcc = (table: Table, w: number, k: string, key: string): void => {
    const acc = ps[table].get(w)?.get(k);
    if (acc === undefined) {
      if (t.accs.has(key)) changes.push({ kind: 'acc', id: key, key, value: null });
      return;
    }
    const value = JSON.stringify({ table, w, k, acc: accToJson(acc) } satisfies AccRecord);
    if (value !== t.accs.get(key)) changes.push({ kind: 'acc', id: key, key, value });
  };
  if (ps.dirtyAccs !== null) {
    // Only what changed since the last diff (partition.ts marks every accumulator it touches or drains).
    for (const key of ps.dirtyAccs) {
      const m = /^a:(open|corrections):(-?\d+):/.exec(key);
      if (m === null) continue;
      diffAcc(m[1] as Table, Number(m[2]), key.slice(m[0].length), key);
    }
    ps.dirtyAccs.clear();
  } else {
    const live = new Set<string>();
    for (const table of ['open', 'corrections'] as const) {
      for (const [w, byDims] of ps[table]) {
        for (const k of byDims.keys()) {
          const key = accKey(table, w, k);
          live.add(key);
          diffAcc(table, w, k, key);
        }
      }
    }
    for (const key of t.accs.keys()) if (!live.has(key)) changes.push({ kind: 'acc', id: key, key, value: null });
  }
  const meta = JSON.stringify({
    v: 1, closedBeforeMs: Number.isFinite(ps.closedBeforeMs) ? ps.closedBeforeMs : null,
    firedBeforeMs: Number.isFinite(ps.firedBeforeMs) ? ps.firedBeforeMs : null, counters: ps.counters, maxTsMs: opts.maxTsMs,
    nextOffset: opts.nextOffset,
  } satisfies ChangelogMeta);
  if (meta !== t.meta) changes.push({ kind: 'meta', id: META_KEY, key: META_KEY, value: meta });
  return {
    messages: changes.map((c) => ({ key: c.key, value: c.value === null ? Buffer.alloc(0) : Buffer.from(c.value), partition })),
    commit() {
      for (const c of changes) {
        if (c.kind === 'meta') t.meta = c.value ?? undefined;
        else {
          const map = c.kind === 'session' ? t.sessions : t.accs;
          if (c.value === null) map.delete(c.id);
          else map.set(c.id, c.value);
          if (c.kind === 'session' && c.value === null) t.touched.delete(c.id);
        }
      }
    },
  };
}

export interface RestoredPartition {
  state: PartitionState;
  tracker: ChangelogTracker;
  maxTsMs: number | null;
  /** The next input offset the restored state covers (null: not recorded). */
  nextOffset: number | null;
}

/** Rebuilds a partition's state from its changelog records (offset order; the last value per key wins). */
export function restorePartition(partition: number, records: readonly BusRecord[]): RestoredPartition {
  const latest = new Map<string, Buffer>();
  for (const r of records) {
    if (r.key === BARRIER_KEY) continue;
    if (r.value.length === 0) latest.delete(r.key);
    else latest.set(r.key, r.value);
  }
  const state = emptyPartitionState();
  const tracker = createTracker(partition);
  let maxTsMs: number | null = null;
  let nextOffset: number | null = null;
  const sessions: SessionRecord[] = [];
  for (const [key, buf] of latest) {
    const text = buf.toString('utf8');
    if (key === META_KEY) {
      const m = JSON.parse(text) as ChangelogMeta;
      state.closedBeforeMs = m.closedBeforeMs ?? -Infinity;
      state.firedBeforeMs = m.firedBeforeMs ?? state.closedBeforeMs;
      state.counters = m.counters;
      maxTsMs = m.maxTsMs;
      nextOffset = m.nextOffset ?? null;
      tracker.meta = text;
    } else if (key.startsWith('s:')) {
      const rec = JSON.parse(text) as SessionRecord;
      sessions.push(rec);
      tracker.sessions.set(rec.s.id, text);
      tracker.touched.set(rec.s.id, rec.t);
    } else if (key.startsWith('a:')) {
      const rec = JSON.parse(text) as AccRecord;
      let byDims = state[rec.table].get(rec.w);
      if (byDims === undefined) state[rec.table].set(rec.w, (byDims = new Map()));
      byDims.set(rec.k, accFromJson(rec.acc));
      tracker.accs.set(key, text);
    }
  }
  // Least recently touched first, as applyEvent's touch() left the live map.
  sessions.sort((a, b) => a.t - b.t);
  for (const { s } of sessions) state.sessions.set(s.id, upgradeSession(s));
  // From here on, diffs take only the accumulators that changed.
  state.dirtyAccs = new Set();
  return { state, tracker, maxTsMs, nextOffset };
}
