import { describe, expect, it } from 'vitest';
import type { BusRecord } from '../lib/bus/types.js';
import { createMemoryBus } from '../lib/bus/memory.js';
import { normalizeEvent } from '../ingest/normalize.js';
import type { BeaconEvent } from '../ingest/beacon-schema.js';
import { planRun } from '../sim/simulate.js';
import { readFileSync } from 'node:fs';
import { projectPath } from '../lib/paths.js';
import {
  META_KEY, createTracker, decodeSessionState, heldAccs, decodeWindowState, diffPartition, encodeSessionState, encodeWindowState, markOf, movedSince,
  replayInput, replayMeta, restorePartition,
} from './changelog.js';
import { decodeSessionEvent, encodeSessionEvent } from '../schemas/codec.js';
import { SUM_FIELDS, emptyAcc } from './accumulator.js';
import { framingOf } from '../schemas/framing.js';
import { advance, applyEvent, emptyPartitionState, newDirtyAccs, type ProcessorSettings } from './partition.js';
import { accToJson, serializePartition } from './snapshot.js';
import { ACTIVE_STATES, measuredFields, newSession, upgradeSession } from './session.js';
import { DIMENSIONS, emptyDims } from '../schemas/events.js';

const cfg: ProcessorSettings = {
  windowMs: 10_000, graceMs: 2000, sessionTimeoutMs: 60_000, maxSessions: 50, maxClockAheadMs: 5000, maxClockSkewMs: 300_000, ebvsMinMs: 0,
};

describe('processor state changelog', () => {
  it('restores exactly the live state after any committed batch (sessions in LRU order, windows, meta)', () => {
    const run = planRun({ views: 120, seed: 3, startMs: 1_767_225_600_000, periodMs: 60_000 });
    const events = run.views.flatMap((v) => v.events).sort((a, b) => a.ts - b.ts);
    const ps = emptyPartitionState();
    // Incremental diffs (only the accumulators and sessions partition.ts marked), as the processor runs them.
    ps.dirtyAccs = newDirtyAccs();
    ps.changed = [];
    const tracker = createTracker(0);
    const log: BusRecord[] = [];
    let offset = 0;
    let moves = 0;
    // Batches small enough that a window often fires in one batch and closes in a later one.
    for (let i = 0; i < events.length; i += 17) {
      const before = markOf(ps);
      let maxTs = -Infinity;
      for (const e of events.slice(i, i + 17)) {
        const se = normalizeEvent(e as BeaconEvent, undefined, { receivedAtMs: e.ts, clientHash: 'x' });
        applyEvent(ps, cfg, se, offset);
        offset += 1;
        maxTs = Math.max(maxTs, se.tsMs);
      }
      advance(ps, cfg, maxTs - 1000);
      if (movedSince(before, ps)) moves += 1;
      const diff = diffPartition(ps, tracker, { maxTsMs: maxTs, nextOffset: offset });
      for (const m of diff.messages) log.push({ topic: 'cl', partition: 0, offset: log.length, key: m.key, value: m.value, timestampMs: 0 });
      diff.commit();
      const restored = restorePartition(0, log);
      expect(serializePartition(restored.state)).toEqual(serializePartition(ps));
      expect([...restored.state.sessions.keys()]).toEqual([...ps.sessions.keys()]);
      expect(restored.maxTsMs).toBe(maxTs);
      // The next input offset the state covers, as committed with it (a restart skips what is below).
      expect(restored.nextOffset).toBe(offset);
      // What the changelog holds: exactly the live sessions and accumulators (the rest tombstoned).
      const held = new Set<string>();
      for (const r of log) if (r.key.startsWith('s:')) void (r.value.length === 0 ? held.delete(r.key.slice(2)) : held.add(r.key.slice(2)));
      expect([...held].sort()).toEqual([...ps.sessions.keys()].sort());
      expect([...ps.sessions.values()].every((s) => s.logged && !s.changed)).toBe(true);
      expect(heldAccs(tracker)).toBe([...ps.open.values(), ...ps.corrections.values()].reduce((n, m) => n + m.size, 0));
    }
    expect(ps.counters.evicted).toBeGreaterThan(0);
    expect(ps.counters.expired).toBeGreaterThan(0);
    expect(moves).toBeGreaterThan(5);
    expect(log.some((r) => r.value.length === 0)).toBe(true);
  });

  it('rebuilds exactly the live state from a snapshot and the input and window moves logged since, after any transaction', () => {
    const run = planRun({ views: 120, seed: 11, startMs: 1_767_225_600_000, periodMs: 60_000 });
    const events = run.views.flatMap((v) => v.events).sort((a, b) => a.ts - b.ts)
      .map((e) => normalizeEvent(e as BeaconEvent, undefined, { receivedAtMs: e.ts, clientHash: 'x' }));
    // The input partition as the processor reads it: one Avro record per event.
    const input: BusRecord[] = events.map((e, offset) => ({ topic: 'in', partition: 0, offset, key: e.sessionId, value: encodeSessionEvent(e), timestampMs: 0 }));
    const ps = emptyPartitionState();
    ps.dirtyAccs = newDirtyAccs();
    ps.changed = [];
    const tracker = createTracker(0);
    const log: BusRecord[] = [];
    const append = (diff: ReturnType<typeof diffPartition>): void => {
      for (const m of diff.messages) log.push({ topic: 'cl', partition: 0, offset: log.length, key: m.key, value: m.value, timestampMs: 0 });
      diff.commit();
    };
    let offset = 0;
    let maxTs = -Infinity;
    let snapshotAt: number | null = null;
    let moves: Array<[number, number]> = [];
    const replays: Array<{ records: number; advances: number }> = [];
    const advanceLogged = (wm: number): void => {
      const before = markOf(ps);
      advance(ps, cfg, wm);
      if (ps.firedBeforeMs !== before.firedBeforeMs || ps.closedBeforeMs !== before.closedBeforeMs) moves.push([offset, wm]);
    };
    // Batches of uneven sizes; the watermark moves after each (as a batch end does), sometimes twice
    // at one position (a timer tick between batches), sometimes not at all; a snapshot every fifth transaction.
    for (let b = 0, i = 0; i < events.length; b++) {
      const size = 3 + ((b * 7919) % 37);
      for (const e of events.slice(i, i + size)) {
        applyEvent(ps, cfg, e, offset);
        offset += 1;
        maxTs = Math.max(maxTs, e.tsMs);
      }
      i += size;
      if (b % 4 !== 3) advanceLogged(maxTs - 3000);
      if (b % 3 === 0) advanceLogged(maxTs - 1000);
      const between = snapshotAt === null || b % 5 === 0 ? null : replayMeta(tracker, { maxTsMs: maxTs, nextOffset: offset, replay: { from: snapshotAt, advances: moves } });
      if (between === null) {
        append(diffPartition(ps, tracker, { maxTsMs: maxTs, nextOffset: offset }));
        snapshotAt = offset;
        moves = [];
      } else {
        // Only the meta record: the changed sessions and accumulators wait for the snapshot.
        expect(between.messages.every((m) => m.key === META_KEY)).toBe(true);
        // Not JSON to a version that knows no replay log (it would take the snapshot for the whole state).
        for (const m of between.messages) expect(() => JSON.parse(m.value.toString('utf8'))).toThrow(SyntaxError);
        append(between);
      }
      const restored = restorePartition(0, log);
      expect(restored.nextOffset).toBe(offset);
      expect(restored.maxTsMs).toBe(maxTs);
      if (restored.replay !== null) {
        const applied = replayInput(restored.state, cfg, restored.replay, offset, input, (r) => decodeSessionEvent(r.value));
        expect(applied).toBe(offset - restored.replay.from);
        replays.push({ records: applied, advances: restored.replay.advances.length });
      }
      expect(serializePartition(restored.state)).toEqual(serializePartition(ps));
      expect([...restored.state.sessions.keys()]).toEqual([...ps.sessions.keys()]);
    }
    // The replays covered input, window moves, evictions and expiries.
    expect(replays.filter((r) => r.records > 0 && r.advances > 0).length).toBeGreaterThan(20);
    expect(ps.counters.evicted).toBeGreaterThan(0);
    expect(ps.counters.expired).toBeGreaterThan(0);
    // Input the replay needs that is gone (retention) is an error, not a silently smaller state.
    const restored = restorePartition(0, log);
    expect(() => replayInput(restored.state, cfg, { from: offset - 10, advances: [] }, offset, input.slice(0, offset - 5), (r) => decodeSessionEvent(r.value)))
      .toThrow(/input records .* are gone/);
  });

  interface Run {
    ps: ReturnType<typeof emptyPartitionState>;
    tracker: ReturnType<typeof createTracker>;
    log: BusRecord[];
    maxTs: number;
    offset: number;
  }

  const simulated = (() => {
    const run = planRun({ views: 60, seed: 5, startMs: 1_767_225_600_000, periodMs: 60_000 });
    return run.views.flatMap((v) => v.events).sort((a, b) => a.ts - b.ts);
  })();

  function fresh(): Run {
    const ps = emptyPartitionState();
    ps.dirtyAccs = newDirtyAccs();
    ps.changed = [];
    return { ps, tracker: createTracker(0), log: [], maxTs: -Infinity, offset: 0 };
  }

  /** Feeds simulated events [from, to) into `r` in batches of 25, committing each batch's diff to r.log as the processor does. */
  function feed(r: Run, from: number, to: number): Run {
    for (let i = from; i < to; i += 25) {
      for (const e of simulated.slice(i, Math.min(i + 25, to))) {
        const se = normalizeEvent(e as BeaconEvent, undefined, { receivedAtMs: e.ts, clientHash: 'x' });
        applyEvent(r.ps, cfg, se, r.offset);
        r.offset += 1;
        r.maxTs = Math.max(r.maxTs, se.tsMs);
      }
      advance(r.ps, cfg, r.maxTs - 1000);
      const diff = diffPartition(r.ps, r.tracker, { maxTsMs: r.maxTs, nextOffset: r.offset });
      for (const m of diff.messages) r.log.push({ topic: 'cl', partition: 0, offset: r.log.length, key: m.key, value: m.value, timestampMs: 0 });
      diff.commit();
    }
    return r;
  }

  it('writes sessions and accumulators as Avro (single-object) and the meta record as JSON', () => {
    const { log } = feed(fresh(), 0, 600);
    const values = log.filter((r) => r.value.length > 0);
    expect(values.some((r) => r.key.startsWith('s:')) && values.some((r) => r.key.startsWith('a:'))).toBe(true);
    for (const r of values) {
      if (r.key === 'm') expect(JSON.parse(r.value.toString('utf8'))).toHaveProperty('v', 1);
      else expect(framingOf(r.value)).toBe('single-object');
    }
  });

  it('a window firing rewrites only the sessions behind it after a straggler, not those that follow the boundary', () => {
    const r = feed(fresh(), 0, 500);
    const oldFired = r.ps.firedBeforeMs;
    const newFired = oldFired + cfg.windowMs;
    // Stragglers: heartbeats 100 ms before the fired boundary (within grace) for two sessions that
    // followed it, committed as a batch. Each leaves its session behind the boundary.
    const stragglers = [...r.ps.sessions.values()]
      .filter((s) => ACTIVE_STATES.has(s.state) && s.sinceMs < oldFired - 100 && s.extrapolatedToMs === oldFired).slice(0, 2);
    expect(stragglers).toHaveLength(2);
    for (const s of stragglers) {
      const e = { sessionId: s.id, seq: s.lastSeq + 1, ts: oldFired - 100, type: 'heartbeat', bitrateKbps: 400 };
      expect(applyEvent(r.ps, cfg, normalizeEvent(e as BeaconEvent, undefined, { receivedAtMs: e.ts, clientHash: 'x' }), r.offset++).kind).toBe('ok');
      expect(s.extrapolatedToMs).toBe(oldFired - 100);
    }
    const late = diffPartition(r.ps, r.tracker, { maxTsMs: r.maxTs, nextOffset: r.offset });
    expect(late.messages.filter((m) => m.key.startsWith('s:')).map((m) => m.key.slice(2)).sort()).toEqual(stragglers.map((s) => s.id).sort());
    for (const m of late.messages) r.log.push({ topic: 'cl', partition: 0, offset: r.log.length, key: m.key, value: m.value, timestampMs: 0 });
    late.commit();
    const active = [...r.ps.sessions.values()].filter((s) => ACTIVE_STATES.has(s.state));
    // The ones advance() moves and that are not at max(last event, boundary): a straggler put them behind it.
    const expected = active.filter((s) => s.extrapolatedToMs < newFired && s.extrapolatedToMs !== Math.max(s.sinceMs, oldFired)).map((s) => s.id);
    // Sessions advance() moves, written while they followed the boundary: the old format rewrote each.
    expect(active.filter((s) => s.extrapolatedToMs < newFired && s.extrapolatedToMs === Math.max(s.sinceMs, oldFired)).length).toBeGreaterThan(3);
    // Every session's changelog value before the window fires, to tell which ones it changes.
    const encoded = (): Map<string, string> =>
      new Map([...r.ps.sessions.values()].map((s) => [s.id, encodeSessionState(s, s.touchedAt, r.ps.firedBeforeMs).toString('hex')]));
    const valuesBefore = encoded();
    // Move the watermark one window on, no events: every active session is extrapolated to the new boundary.
    const before = markOf(r.ps);
    advance(r.ps, cfg, newFired);
    expect(movedSince(before, r.ps)).toBe(true);
    const valuesAfter = encoded();
    const changed = [...valuesBefore.keys()].filter((id) => valuesAfter.get(id) !== valuesBefore.get(id)).sort();
    // What advance() marked, with no batch naming a session (a tick), as the processor diffs it: every
    // session whose value changed, and only those.
    const diff = diffPartition(r.ps, r.tracker, { maxTsMs: r.maxTs, nextOffset: r.offset });
    const written = diff.messages.filter((m) => m.key.startsWith('s:')).map((m) => m.key.slice(2)).sort();
    expect(written).toEqual(changed);
    const rewritten = diff.messages.filter((m) => m.key.startsWith('s:') && m.value.length > 0).map((m) => m.key.slice(2));
    expect(rewritten.sort()).toEqual(expected.filter((id) => r.ps.sessions.has(id)).sort());
    expect(rewritten.sort()).toEqual(stragglers.map((s) => s.id).sort());
    diff.commit();
    for (const m of diff.messages) r.log.push({ topic: 'cl', partition: 0, offset: r.log.length, key: m.key, value: m.value, timestampMs: 0 });
    expect(serializePartition(restorePartition(0, r.log).state)).toEqual(serializePartition(r.ps));
  });

  /** The changelog of an earlier version, compacted: one JSON value per entity of `r`'s state, and its meta. */
  function legacyLog(r: Run): BusRecord[] {
    const values: Array<[string, string]> = [...r.ps.sessions.values()].map((s) => [`s:${s.id}`, JSON.stringify({ t: s.touchedAt, s: measuredFields(s) })]);
    for (const table of ['open', 'corrections'] as const) {
      for (const [w, byDims] of r.ps[table]) for (const [k, acc] of byDims) values.push([`a:${table}:${w}:${k}`, JSON.stringify({ table, w, k, acc: accToJson(acc) })]);
    }
    const meta = r.log.filter((x) => x.key === 'm').at(-1);
    return [...values.map(([key, v], i) => ({ topic: 'cl', partition: 0, offset: i, key, value: Buffer.from(v), timestampMs: 0 })), ...(meta ? [meta] : [])];
  }

  it('restores state written as JSON by earlier versions, alone or under newer Avro records, and rewrites it as Avro on change', () => {
    const half = feed(fresh(), 0, 500);
    const legacy = legacyLog(half);
    expect(legacy.filter((x) => x.key.startsWith('s:')).every((x) => x.value[0] === 0x7b)).toBe(true);
    const fromJson = restorePartition(0, legacy);
    expect(serializePartition(fromJson.state)).toEqual(serializePartition(half.ps));
    expect([...fromJson.state.sessions.keys()]).toEqual([...half.ps.sessions.keys()]);
    expect(fromJson.maxTsMs).toBe(half.maxTs);
    expect(fromJson.nextOffset).toBe(half.offset);
    // An upgraded processor goes on from the JSON state: its Avro records land on top of the JSON ones.
    const upgraded = feed({ ps: fromJson.state, tracker: fromJson.tracker, log: [...legacy], maxTs: half.maxTs, offset: half.offset }, 500, 1000);
    const live = feed(feed(fresh(), 0, 500), 500, 1000);
    expect(serializePartition(upgraded.ps)).toEqual(serializePartition(live.ps));
    const mixed = restorePartition(0, upgraded.log);
    expect(serializePartition(mixed.state)).toEqual(serializePartition(live.ps));
    expect([...mixed.state.sessions.keys()]).toEqual([...live.ps.sessions.keys()]);
    expect(mixed.nextOffset).toBe(live.offset);
    // A full diff of the restored JSON state writes each entity once, as Avro, and restores to the same state.
    const again = restorePartition(0, legacy);
    const held = again.state.sessions.size + heldAccs(again.tracker);
    const first = diffPartition(again.state, again.tracker, { maxTsMs: half.maxTs, nextOffset: half.offset, all: true });
    const entities = first.messages.filter((m) => m.key !== 'm');
    expect(entities).toHaveLength(held);
    expect(entities.every((m) => framingOf(m.value) === 'single-object')).toBe(true);
    const rewritten = restorePartition(0, [...legacy, ...entities.map((m, i) => ({ topic: 'cl', partition: 0, offset: legacy.length + i, key: m.key, value: m.value, timestampMs: 0 }))]);
    expect(serializePartition(rewritten.state)).toEqual(serializePartition(half.ps));
  });

  it('the state schemas hold every field of a session and an accumulator', () => {
    const schema = (file: string) => JSON.parse(readFileSync(projectPath('schemas', file), 'utf8')) as { fields: Array<{ name: string; type: { fields?: Array<{ name: string }> } }> };
    const session = schema('state-session.avsc').fields;
    // dimsKey is derived from dims on restore; t is the changelog's own field (the session's touchedAt).
    expect(session.map((f) => f.name).sort()).toEqual([...Object.keys(measuredFields(newSession('s', emptyDims(), 0, 0))).filter((k) => k !== 'dimsKey'), 't'].sort());
    expect(session.find((f) => f.name === 'dims')?.type.fields?.map((f) => f.name)).toEqual([...DIMENSIONS]);
    const win = schema('state-window.avsc').fields;
    const sums = win.find((f) => f.name === 'sums')?.type.fields?.map((f) => f.name);
    expect(sums).toEqual([...SUM_FIELDS]);
    expect([...(sums ?? []), ...win.map((f) => f.name).filter((n) => !['table', 'w', 'k', 'sums'].includes(n))].sort()).toEqual(Object.keys(emptyAcc()).sort());
    // Values JSON could not carry survive: negative and fractional sums, infinities, a null attempt time.
    const acc = { ...emptyAcc(), playingMs: -2500.25, bitsPlayed: 1e15 + 0.5 };
    acc.errors = new Map([['1:E42', 3]]);
    acc.vstHist.set(480, -1);
    expect(decodeWindowState(encodeWindowState('corrections', -10_000, 'k', acc))).toEqual({ table: 'corrections', w: -10_000, k: 'k', acc });
    const s = { ...newSession('x', { ...emptyDims(), cdn: 'c', custom3: 'é' }, 5, -7.5), extrapolatedToMs: Infinity };
    // Read back from the changelog: held there, last moved by input record t.
    expect(decodeSessionState(encodeSessionState(s, 42, 0), 0)).toEqual({ t: 42, s: { ...s, touchedAt: 42, logged: true } });
    // Following the boundary: an active session takes max(sinceMs, the restored boundary); an ended
    // one, or one put behind the boundary by a straggler, keeps its own value.
    const playing = { ...s, state: 'playing' as const, sinceMs: 12_000, extrapolatedToMs: 20_000 };
    expect(decodeSessionState(encodeSessionState(playing, 1, 20_000), 30_000).s.extrapolatedToMs).toBe(30_000);
    expect(decodeSessionState(encodeSessionState({ ...playing, sinceMs: 25_000, extrapolatedToMs: 25_000 }, 1, 20_000), 20_000).s.extrapolatedToMs).toBe(25_000);
    expect(decodeSessionState(encodeSessionState({ ...playing, sinceMs: 15_000, extrapolatedToMs: 15_000 }, 1, 20_000), 20_000).s.extrapolatedToMs).toBe(15_000);
    const ended = { ...playing, state: 'ended' as const };
    expect(decodeSessionState(encodeSessionState(ended, 1, 20_000), 30_000).s.extrapolatedToMs).toBe(20_000);
  });

  it('memory bus: explicit partitions and readPartition up to a barrier', async () => {
    const bus = createMemoryBus({ maxBacklog: 1000 });
    await bus.createTopics([{ topic: 'cl', partitions: 3 }]);
    const producer = bus.producer();
    await producer.send('cl', [{ key: 'a', value: Buffer.from('1'), partition: 2 }, { key: 'r', value: Buffer.from('x'), partition: 2 }, { key: 'b', value: Buffer.from('2'), partition: 2 }]);
    const all = await bus.readPartition('cl', 2, 0);
    expect(all.map((r) => r.key)).toEqual(['a', 'r', 'b']);
    const upTo = await bus.readPartition('cl', 2, 0, (r) => r.key === 'r');
    expect(upTo.map((r) => r.key)).toEqual(['a', 'r']);
    expect(await bus.readPartition('cl', 1, 0)).toEqual([]);
    await expect(producer.send('cl', [{ key: 'a', value: Buffer.from('1'), partition: 3 }])).rejects.toThrow();
    await bus.close();
  });
});

describe('state written before windows fired on time', () => {
  it('upgrades an old session record: the extrapolation moved sinceMs and kept its pieces', () => {
    const { extrapolatedToMs: _absent, ...before } = newSession('s', emptyDims(), 1_000, 0);
    const old = {
      ...before,
      state: 'playing' as const,
      sinceMs: 20_000, // where attribution reached (the old close boundary)
      extrapolated: [{ fromMs: 13_000, toMs: 20_000, state: 'playing', dims: emptyDims(), bitrateKbps: 800 }],
    };
    const s = upgradeSession(old as unknown as Parameters<typeof upgradeSession>[0]);
    expect(s.sinceMs).toBe(13_000);
    expect(s.extrapolatedToMs).toBe(20_000);
    expect('extrapolated' in s).toBe(false);
    // Its expiry retracts exactly the extrapolated 7 s, as the old code would have.
    const ps = emptyPartitionState();
    ps.sessions.set('s', s);
    const retracted = advance(ps, { ...cfg, sessionTimeoutMs: 1000 }, 40_000).map((o) => o.acc.playingMs).reduce((a, b) => a + b, 0);
    expect(retracted).toBe(-7000);
    expect(upgradeSession({ ...old, extrapolated: [] } as unknown as Parameters<typeof upgradeSession>[0]).extrapolatedToMs).toBe(20_000);
  });
});
