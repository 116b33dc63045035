import type { BusMessage, BusRecord } from '../lib/bus/types.js';
import { loadAvroType } from '../schemas/codec.js';
import type { SessionEvent } from '../schemas/events.js';
import { createAvroCodec, framingOf } from '../schemas/framing.js';
import { SUM_FIELDS, countsOf, emptyAcc, type SumField, type WindowAcc } from './accumulator.js';
import {
  accKey, advance, applyEvent, emptyPartitionState, markAcc, newDirtyAccs, type DirtyAccs, type PartitionCounters, type PartitionState, type ProcessorSettings,
} from './partition.js';
import { ACTIVE_STATES, internSession, sharedDims, upgradeSession, withBookkeeping, type Session } from './session.js';
import { accFromJson, type AccJson } from './snapshot.js';
import { createSessionStateWriter, createWindowStateWriter, type SessionAvro } from './state-writer.js';

/**
 * The processor's state changelog (qoe.processor-state.v1, compacted; changelog partition p holds the
 * state of input partition p). One record per entity, written when the processor changed it (see
 * ChangelogTracker) in a snapshot — a transaction of the processor every snapshot interval, with the
 * outputs and input offsets it goes with; the transactions in between write only the meta record,
 * whose `replay` logs the input and window moves a restore applies again (ReplayLog). Keys:
 * - `s:<sessionId>` → the session, and `t` = offset of the input record that last moved it to the
 *   back of the partition's session map (restore rebuilds the map in that order, so expiry and
 *   eviction scan sessions exactly as the live processor did);
 * - `a:<open|corrections>:<windowStartMs>:<dimsKey>` → the window accumulator;
 * - `m` → partition meta: closedBeforeMs, firedBeforeMs, counters, max event time (for the watermark),
 *   the next input offset the state covers (see processor.ts: a restarted owner can be handed an
 *   older committed offset than the state it restored, and skips what the state already holds), and
 *   what to replay to get there from the snapshot;
 * - `r` → restore barrier (see processor.ts), ignored here.
 * An empty value is a tombstone (session expired, window emitted).
 *
 * Values: sessions and accumulators are Avro, single-object encoded (schemas/state-session.avsc,
 * schemas/state-window.avsc), written about once per input event before snapshots (0.2 live with
 * them): as JSON they were three times the input's bytes and most of the Kafka path's CPU (bench/README.md). Restore also reads the JSON
 * values earlier versions wrote (told apart by the first byte); they are rewritten as Avro the next
 * time their entity changes. The meta record, one per transaction, stays JSON (behind
 * REPLAY_META_PREFIX when it carries a replay log).
 */
export const META_KEY = 'm';
/**
 * Starts a meta record that carries a replay log: versions before replay parse the meta record as
 * plain JSON, and fail on this (their restore refuses the partition, docs/operations.md) instead of
 * taking the snapshot for the whole state and counting less.
 */
export const REPLAY_META_PREFIX = 'replay:';
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
  /**
   * Input the records of this changelog do not hold yet, written by the transactions between two
   * snapshots (processor.ts): restore applies it again (replayInput). Absent or null: none. The
   * other fields then describe the state as of the snapshot, except maxTsMs (as of nextOffset).
   */
  replay?: ReplayLog | null;
}

/**
 * What turns a partition's snapshot into its state at `nextOffset`: the input records of
 * [from, nextOffset), and the window boundary moves made among them, each as [position, watermark]:
 * advance(watermark) after the records below `position`. The processor's state is a function of
 * its input and these moves alone (partition.ts: applyEvent and advance read no clock), so applying
 * them again rebuilds it exactly.
 */
export interface ReplayLog {
  from: number;
  advances: Array<[number, number]>;
}

/** The meta record's fields that describe the state itself (as of its snapshot). */
type MetaBase = Pick<ChangelogMeta, 'v' | 'closedBeforeMs' | 'firedBeforeMs' | 'counters'>;

type Table = 'open' | 'corrections';
const TABLES = ['open', 'corrections'] as const;

interface Count<K> {
  k: K;
  n: number;
}

export interface WindowAvro {
  table: Table;
  w: number;
  k: string;
  sums: Record<SumField, number>;
  vstHist: Array<Count<number>>;
  ttfbHist: Array<Count<number>>;
  bitrateMs: Array<Count<number>>;
  errors: Array<Count<string>>;
}

export const sessionStateCodec = createAvroCodec<SessionAvro>(loadAvroType('state-session.avsc'));
const sessionStateWriter = createSessionStateWriter(sessionStateCodec);
export const windowStateCodec = createAvroCodec<WindowAvro>(loadAvroType('state-window.avsc'));

/**
 * `firedBeforeMs`: the partition's fired boundary as committed with this record. An active session
 * whose time is attributed up to max(its last event, the fired boundary) — every one, except right
 * after a straggler before the boundary — is written with extrapolatedToMs null: each window firing
 * moves it to the new boundary (partition.ts advance) and nothing else moves it until its next event,
 * so restore computes it from sinceMs and the meta record. A window firing then rewrites no session
 * that only followed the boundary: before, a third of all session records (bench/README.md).
 */
export function encodeSessionState(s: Session, t: number, firedBeforeMs: number): Buffer {
  const followsFired = ACTIVE_STATES.has(s.state) && s.extrapolatedToMs === Math.max(s.sinceMs, firedBeforeMs);
  return sessionStateWriter.write({
    t, id: s.id, state: s.state, started: s.started, attemptTsMs: s.attemptTsMs, sinceMs: s.sinceMs,
    extrapolatedToMs: followsFired ? null : s.extrapolatedToMs,
    lastTsMs: s.lastTsMs, lastSeq: s.lastSeq, seenBelow: s.seenBelow, dims: s.dims, bitrateKbps: s.bitrateKbps,
    droppedFrames: s.droppedFrames, clockOffsetMs: s.clockOffsetMs,
  }, s.dimsKey);
}

/**
 * A changelog session value (Avro, or the JSON of earlier versions) as the session and its `t`;
 * `firedBeforeMs`: the partition's fired boundary of the state being restored (its meta record).
 */
export function decodeSessionState(buf: Buffer, firedBeforeMs: number): { t: number; s: Session } {
  if (framingOf(buf) === undefined) {
    const j = JSON.parse(buf.toString('utf8')) as { t: number; s: Session };
    return { t: j.t, s: withBookkeeping(internSession(upgradeSession(j.s)), j.t, true) };
  }
  const r = sessionStateCodec.decode(buf);
  const shared = sharedDims(r.dims);
  // The shape (and key order) of newSession(): the processor's hot paths see one object shape.
  const s: Session = {
    id: r.id, state: r.state, started: r.started, attemptTsMs: r.attemptTsMs, sinceMs: r.sinceMs,
    extrapolatedToMs: r.extrapolatedToMs ?? Math.max(r.sinceMs, firedBeforeMs),
    lastTsMs: r.lastTsMs, lastSeq: r.lastSeq, seenBelow: r.seenBelow, dims: shared.dims, dimsKey: shared.key, bitrateKbps: r.bitrateKbps,
    droppedFrames: r.droppedFrames, clockOffsetMs: r.clockOffsetMs, touchedAt: r.t, logged: true, changed: false,
  };
  return { t: r.t, s };
}

function counts<K>(m: Map<K, number>): Array<Count<K>> {
  const out: Array<Count<K>> = [];
  for (const [k, n] of m) out.push({ k, n });
  return out;
}
const countMap = <K>(list: Array<Count<K>>): Map<K, number> => new Map(list.map((c) => [c.k, c.n]));

/** An accumulator as avsc takes a changelog value (its count maps as arrays of { k, n }); tests compare the window writer with avsc. */
export function windowAvro(table: Table, w: number, k: string, acc: WindowAcc): WindowAvro {
  return {
    // avsc reads the schema's fields by name: the accumulator itself serves as `sums`.
    table, w, k, sums: acc,
    vstHist: counts(acc.vstHist), ttfbHist: counts(acc.ttfbHist), bitrateMs: counts(acc.bitrateMs), errors: counts(acc.errors),
  };
}

const windowStateWriter = createWindowStateWriter(windowStateCodec);

/** A changelog accumulator value (processors/state-writer.ts: the bytes avsc writes for windowAvro()). */
export function encodeWindowState(table: Table, w: number, k: string, acc: WindowAcc): Buffer {
  return windowStateWriter(table, w, k, acc);
}

/** A changelog accumulator value (Avro, or the JSON of earlier versions). */
export function decodeWindowState(buf: Buffer): { table: Table; w: number; k: string; acc: WindowAcc } {
  if (framingOf(buf) === undefined) {
    const j = JSON.parse(buf.toString('utf8')) as { table: Table; w: number; k: string; acc: AccJson };
    return { table: j.table, w: j.w, k: j.k, acc: accFromJson(j.acc) };
  }
  const r = windowStateCodec.decode(buf);
  const acc = emptyAcc();
  for (const f of SUM_FIELDS) acc[f] = r.sums[f];
  acc.vstHist = countMap(r.vstHist);
  acc.ttfbHist = countsOf(r.ttfbHist.map((c) => [c.k, c.n] as const));
  acc.bitrateMs = countMap(r.bitrateMs);
  acc.errors = countsOf(r.errors.map((c) => [c.k, c.n] as const));
  return { table: r.table, w: r.w, k: r.k, acc };
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

/**
 * What the changelog holds for one partition as of the last committed transaction: which entities
 * have a value there (so one that is gone gets a tombstone), not the values themselves. What changed
 * is known from the state's dirty marks (partition.ts `changed`, `dirtyAccs`), each entity written
 * as it is now. Keeping every committed value to compare against cost ~400 B per live session, 80 %
 * on top of the session itself (`bench/memory.ts --changelog`), to skip rewriting the few entities
 * an event touched without changing them (a duplicate's session). For sessions this lives on the
 * session itself (`logged`, and `touchedAt` for the module comment's `t`).
 */
export interface ChangelogTracker {
  readonly partition: number;
  /**
   * The accumulators the changelog holds a value for, as table → window start → dims key (the
   * processor's own interned dims keys: no changelog key is built or hashed to look one up).
   */
  accs: DirtyAccs;
  /** The meta record as last written (JSON). */
  meta: string | undefined;
  /** The state fields of the meta record of the last snapshot: between snapshots every meta record repeats them. */
  base: MetaBase | undefined;
}

export interface ChangelogDiff {
  messages: BusMessage[];
  /** Records the diff as committed; call after the transaction carrying `messages` succeeded. */
  commit(): void;
}

export function createTracker(partition: number): ChangelogTracker {
  return { partition, accs: newDirtyAccs(), meta: undefined, base: undefined };
}

const sessionKey = (id: string): string => `s:${id}`;

/** A tombstone's value: one empty Buffer for all of them (a diff writes one per ended session and emitted window). */
const TOMBSTONE = Buffer.alloc(0);

/**
 * The changelog records that bring the committed state up to `ps`: the sessions in `ps.changed`
 * (the list is emptied) and the accumulators in `ps.dirtyAccs`, each as it is now — a tombstone for
 * a session or accumulator that is gone and the changelog holds. Without those marks (not tracked,
 * or `all`), every live session and accumulator is written (and a tracked `changed` still names the
 * sessions that ended). The processor always tracks: restorePartition turns tracking on.
 */
export function diffPartition(
  ps: PartitionState, t: ChangelogTracker, opts: { maxTsMs: number | null; nextOffset: number | null; all?: boolean },
): ChangelogDiff {
  const partition = t.partition;
  const messages: BusMessage[] = [];
  /** Sessions written with a value (their `logged` flag is set on commit); accumulators written, and whether as a tombstone. */
  const written: Session[] = [];
  const accs: Array<{ table: Table; w: number; k: string; gone: boolean }> = [];
  const writeSession = (s: Session): void => {
    written.push(s);
    messages.push({ key: sessionKey(s.id), value: encodeSessionState(s, s.touchedAt, ps.firedBeforeMs), partition });
  };
  const changed = ps.changed ?? [];
  for (const s of changed) {
    s.changed = false;
    if (ps.sessions.get(s.id) === s) {
      if (opts.all !== true) writeSession(s);
    } else if (s.logged && !ps.sessions.has(s.id)) {
      // Ended since the last diff, and held by the changelog (a newer session of the same id, if
      // any, is in the list too and written instead).
      messages.push({ key: sessionKey(s.id), value: TOMBSTONE, partition });
    }
  }
  if (ps.changed !== null) ps.changed = [];
  if (opts.all === true || ps.changed === null) for (const s of ps.sessions.values()) writeSession(s);
  const diffAcc = (table: Table, w: number, k: string): void => {
    const acc = ps[table].get(w)?.get(k);
    if (acc === undefined) {
      if (t.accs[table].get(w)?.has(k) !== true) return;
      accs.push({ table, w, k, gone: true });
      messages.push({ key: accKey(table, w, k), value: TOMBSTONE, partition });
      return;
    }
    accs.push({ table, w, k, gone: false });
    messages.push({ key: accKey(table, w, k), value: encodeWindowState(table, w, k, acc), partition });
  };
  for (const table of TABLES) {
    const dirty = ps.dirtyAccs?.[table];
    if (dirty !== undefined && opts.all !== true) {
      // Only what changed since the last diff (partition.ts marks every accumulator it touches or drains).
      for (const [w, keys] of dirty) for (const k of keys) diffAcc(table, w, k);
    } else {
      for (const [w, byDims] of ps[table]) for (const k of byDims.keys()) diffAcc(table, w, k);
      for (const [w, keys] of t.accs[table]) for (const k of keys) if (ps[table].get(w)?.has(k) !== true) diffAcc(table, w, k);
    }
    dirty?.clear();
  }
  const base = metaBaseOf(ps);
  const meta = JSON.stringify({ ...base, maxTsMs: opts.maxTsMs, nextOffset: opts.nextOffset } satisfies ChangelogMeta);
  const metaChanged = meta !== t.meta;
  if (metaChanged) messages.push({ key: META_KEY, value: Buffer.from(meta), partition });
  return {
    messages,
    commit() {
      t.base = base;
      if (metaChanged) t.meta = meta;
      for (const s of written) s.logged = true;
      for (const { table, w, k, gone } of accs) {
        if (!gone) markAcc(t.accs, table, w, k);
        else {
          const held = t.accs[table].get(w);
          held?.delete(k);
          if (held?.size === 0) t.accs[table].delete(w);
        }
      }
    },
  };
}

function metaBaseOf(ps: PartitionState): MetaBase {
  return {
    v: 1, closedBeforeMs: Number.isFinite(ps.closedBeforeMs) ? ps.closedBeforeMs : null,
    firedBeforeMs: Number.isFinite(ps.firedBeforeMs) ? ps.firedBeforeMs : null, counters: { ...ps.counters },
  };
}

/**
 * Takes `ps` — a partition that has no snapshot yet, as it is before its first input record — for
 * its first snapshot without writing one: replay logs then start from it (a restore finds no
 * session or accumulator record, and replays the input from that record on). Without this, a new
 * partition's first transaction wrote everything it touched (a whole first fetch, on a backlog).
 */
export function snapshotFromEmpty(t: ChangelogTracker, ps: PartitionState): void {
  if (t.base === undefined) t.base = metaBaseOf(ps);
}

/**
 * The changelog record of a transaction between snapshots: the meta record only — the last
 * snapshot's state fields, and the input and window moves since it (`replay`) that restore applies
 * again. The sessions and accumulators that changed stay marked for the next snapshot (diffPartition).
 * Null: the partition has no snapshot yet (its first transaction must be one).
 */
export function replayMeta(
  t: ChangelogTracker, opts: { maxTsMs: number | null; nextOffset: number; replay: ReplayLog },
): ChangelogDiff | null {
  const base = t.base;
  if (base === undefined) return null;
  const meta = REPLAY_META_PREFIX + JSON.stringify({ ...base, maxTsMs: opts.maxTsMs, nextOffset: opts.nextOffset, replay: opts.replay } satisfies ChangelogMeta);
  return {
    messages: meta === t.meta ? [] : [{ key: META_KEY, value: Buffer.from(meta), partition: t.partition }],
    commit() {
      t.meta = meta;
    },
  };
}

/**
 * Applies input a restored state does not hold yet (its meta record's `replay`, see ReplayLog):
 * `records` are the input partition's from `replay.from` on (those at or past `nextOffset` are
 * ignored). Outputs and dead letters are not made again: they committed with the transactions that
 * logged this input. Throws when the records do not reach `nextOffset` (input deleted before it
 * was replayed: the topic's retention is shorter than the snapshot interval). Returns how many
 * records were applied.
 */
export function replayInput(
  ps: PartitionState, cfg: ProcessorSettings, replay: ReplayLog, nextOffset: number,
  records: readonly BusRecord[], decode: (r: BusRecord) => SessionEvent | null,
): number {
  let next = 0;
  const advanceTo = (position: number): void => {
    for (; next < replay.advances.length && (replay.advances[next] as [number, number])[0] <= position; next++) {
      advance(ps, cfg, (replay.advances[next] as [number, number])[1]);
    }
  };
  let applied = 0;
  let last = replay.from - 1;
  for (const r of records) {
    if (r.offset < replay.from) continue;
    if (r.offset >= nextOffset) break;
    advanceTo(r.offset);
    last = r.offset;
    // As the processor's batch loop: a record that does not decode, or whose event throws, was
    // dead-lettered as undecodable the first time (what a throw left behind, it leaves again).
    const e = decode(r);
    if (e === null) continue;
    try {
      applyEvent(ps, cfg, e, r.offset);
    } catch {
      continue;
    }
    applied += 1;
  }
  if (last < nextOffset - 1) {
    throw new Error(`input records ${last + 1}..${nextOffset - 1} are gone: the state cannot be rebuilt from its snapshot`);
  }
  advanceTo(nextOffset);
  return applied;
}

/** How many accumulators the changelog holds a value for. */
export function heldAccs(t: ChangelogTracker): number {
  let n = 0;
  for (const table of TABLES) for (const keys of t.accs[table].values()) n += keys.size;
  return n;
}

export interface RestoredPartition {
  state: PartitionState;
  tracker: ChangelogTracker;
  maxTsMs: number | null;
  /** The next input offset the restored state covers once `replay` is applied (null: not recorded). */
  nextOffset: number | null;
  /** Input to apply again (replayInput) before the state covers nextOffset; null: none. */
  replay: ReplayLog | null;
}

/** Rebuilds a partition's state from its changelog records (offset order; the last value per key wins). */
export function restorePartition(partition: number, records: readonly BusRecord[]): RestoredPartition {
  const latest = new Map<string, Buffer>();
  for (const r of records) {
    // Each read once: a fetched record's key and value are made when read (lib/bus/kafka-shared.ts).
    const key = r.key;
    if (key === BARRIER_KEY) continue;
    const value = r.value;
    if (value.length === 0) latest.delete(key);
    else latest.set(key, value);
  }
  const state = emptyPartitionState();
  const tracker = createTracker(partition);
  let maxTsMs: number | null = null;
  let nextOffset: number | null = null;
  let replay: ReplayLog | null = null;
  const sessions: Array<{ t: number; s: Session }> = [];
  // Meta first: sessions at the fired boundary take it from there.
  const meta = latest.get(META_KEY);
  if (meta !== undefined) {
    const text = meta.toString('utf8');
    const m = JSON.parse(text.startsWith(REPLAY_META_PREFIX) ? text.slice(REPLAY_META_PREFIX.length) : text) as ChangelogMeta;
    state.closedBeforeMs = m.closedBeforeMs ?? -Infinity;
    state.firedBeforeMs = m.firedBeforeMs ?? state.closedBeforeMs;
    state.counters = m.counters;
    maxTsMs = m.maxTsMs;
    nextOffset = m.nextOffset ?? null;
    replay = m.replay ?? null;
    tracker.meta = text;
    tracker.base = { v: 1, closedBeforeMs: m.closedBeforeMs, firedBeforeMs: m.firedBeforeMs ?? m.closedBeforeMs, counters: { ...m.counters } };
  }
  for (const [key, buf] of latest) {
    if (key.startsWith('s:')) {
      sessions.push(decodeSessionState(buf, state.firedBeforeMs));
    } else if (key.startsWith('a:')) {
      const rec = decodeWindowState(buf);
      let byDims = state[rec.table].get(rec.w);
      if (byDims === undefined) state[rec.table].set(rec.w, (byDims = new Map()));
      byDims.set(rec.k, rec.acc);
      markAcc(tracker.accs, rec.table, rec.w, rec.k);
    }
  }
  // Least recently touched first, as applyEvent's touch() left the live map.
  sessions.sort((a, b) => a.t - b.t);
  for (const { s } of sessions) state.sessions.set(s.id, s);
  // From here on, diffs take only the accumulators and sessions that changed.
  state.dirtyAccs = newDirtyAccs();
  state.changed = [];
  return { state, tracker, maxTsMs, nextOffset, replay };
}
