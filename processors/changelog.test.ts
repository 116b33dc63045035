import { describe, expect, it } from 'vitest';
import type { BusRecord } from '../lib/bus/types.js';
import { createMemoryBus } from '../lib/bus/memory.js';
import { normalizeEvent } from '../ingest/normalize.js';
import type { BeaconEvent } from '../ingest/beacon-schema.js';
import { planRun } from '../sim/simulate.js';
import { readFileSync } from 'node:fs';
import { projectPath } from '../lib/paths.js';
import {
  createTracker, decodeSessionState, decodeWindowState, diffPartition, encodeSessionState, encodeWindowState, markOf, movedSince,
  noteTouch, restorePartition,
} from './changelog.js';
import { SUM_FIELDS, emptyAcc } from './accumulator.js';
import { framingOf } from '../schemas/framing.js';
import { advance, applyEvent, emptyPartitionState, type ProcessorSettings } from './partition.js';
import { accToJson, serializePartition } from './snapshot.js';
import { newSession, upgradeSession } from './session.js';
import { DIMENSIONS, emptyDims } from '../schemas/events.js';

const cfg: ProcessorSettings = {
  windowMs: 10_000, graceMs: 2000, sessionTimeoutMs: 60_000, maxSessions: 50, maxClockAheadMs: 5000, maxClockSkewMs: 300_000, ebvsMinMs: 0,
};

describe('processor state changelog', () => {
  it('restores exactly the live state after any committed batch (sessions in LRU order, windows, meta)', () => {
    const run = planRun({ views: 120, seed: 3, startMs: 1_767_225_600_000, periodMs: 60_000 });
    const events = run.views.flatMap((v) => v.events).sort((a, b) => a.ts - b.ts);
    const ps = emptyPartitionState();
    // Incremental diffs (only the accumulators partition.ts marked), as the processor runs them.
    ps.dirtyAccs = new Set();
    const tracker = createTracker(0);
    const log: BusRecord[] = [];
    let offset = 0;
    // Batches small enough that a window often fires in one batch and closes in a later one.
    for (let i = 0; i < events.length; i += 17) {
      const before = markOf(ps);
      const touched: string[] = [];
      let maxTs = -Infinity;
      for (const e of events.slice(i, i + 17)) {
        const se = normalizeEvent(e as BeaconEvent, undefined, { receivedAtMs: e.ts, clientHash: 'x' });
        const res = applyEvent(ps, cfg, se);
        touched.push(se.sessionId);
        if (res.kind === 'ok' || (res.kind === 'dead_letter' && res.reason === 'late')) noteTouch(tracker, se.sessionId, offset);
        offset += 1;
        maxTs = Math.max(maxTs, se.tsMs);
      }
      advance(ps, cfg, maxTs - 1000);
      const all = movedSince(before, ps);
      const diff = diffPartition(ps, tracker, { maxTsMs: maxTs, sessions: all ? 'all' : touched, nextOffset: offset });
      for (const m of diff.messages) log.push({ topic: 'cl', partition: 0, offset: log.length, key: m.key, value: m.value, timestampMs: 0 });
      diff.commit();
      const restored = restorePartition(0, log);
      expect(serializePartition(restored.state)).toEqual(serializePartition(ps));
      expect([...restored.state.sessions.keys()]).toEqual([...ps.sessions.keys()]);
      expect(restored.maxTsMs).toBe(maxTs);
      // The next input offset the state covers, as committed with it (a restart skips what is below).
      expect(restored.nextOffset).toBe(offset);
      // Nothing changed since the commit: a full comparison (every session and accumulator) finds
      // nothing the incremental diff left out.
      const dirty: Set<string> | null = ps.dirtyAccs;
      ps.dirtyAccs = null;
      expect(diffPartition(ps, tracker, { maxTsMs: maxTs, sessions: 'all', nextOffset: offset }).messages).toEqual([]);
      ps.dirtyAccs = dirty;
    }
    expect(ps.counters.evicted).toBeGreaterThan(0);
    expect(log.some((r) => r.value.length === 0)).toBe(true);
  });

  /** A partition's live state and tracker after the first `n` events of a simulated run, committed as the processor does. */
  function runPartition(n: number): { ps: ReturnType<typeof emptyPartitionState>; log: BusRecord[]; maxTs: number; offset: number } {
    const run = planRun({ views: 60, seed: 5, startMs: 1_767_225_600_000, periodMs: 60_000 });
    const events = run.views.flatMap((v) => v.events).sort((a, b) => a.ts - b.ts).slice(0, n);
    const ps = emptyPartitionState();
    ps.dirtyAccs = new Set();
    const tracker = createTracker(0);
    const log: BusRecord[] = [];
    let offset = 0;
    let maxTs = -Infinity;
    for (let i = 0; i < events.length; i += 25) {
      const before = markOf(ps);
      const touched: string[] = [];
      for (const e of events.slice(i, i + 25)) {
        const se = normalizeEvent(e as BeaconEvent, undefined, { receivedAtMs: e.ts, clientHash: 'x' });
        const res = applyEvent(ps, cfg, se);
        touched.push(se.sessionId);
        if (res.kind === 'ok' || (res.kind === 'dead_letter' && res.reason === 'late')) noteTouch(tracker, se.sessionId, offset);
        offset += 1;
        maxTs = Math.max(maxTs, se.tsMs);
      }
      advance(ps, cfg, maxTs - 1000);
      const diff = diffPartition(ps, tracker, { maxTsMs: maxTs, sessions: movedSince(before, ps) ? 'all' : touched, nextOffset: offset });
      for (const m of diff.messages) log.push({ topic: 'cl', partition: 0, offset: log.length, key: m.key, value: m.value, timestampMs: 0 });
      diff.commit();
    }
    return { ps, log, maxTs, offset };
  }

  it('writes sessions and accumulators as Avro (single-object) and the meta record as JSON', () => {
    const { log } = runPartition(600);
    const values = log.filter((r) => r.value.length > 0);
    expect(values.some((r) => r.key.startsWith('s:')) && values.some((r) => r.key.startsWith('a:'))).toBe(true);
    for (const r of values) {
      if (r.key === 'm') expect(JSON.parse(r.value.toString('utf8'))).toHaveProperty('v', 1);
      else expect(framingOf(r.value)).toBe('single-object');
    }
  });

  it('restores state written as JSON by earlier versions, alone or under newer Avro records, and rewrites it as Avro on change', () => {
    const { ps, log, maxTs, offset } = runPartition(900);
    // The log as the JSON changelog of earlier versions wrote it: the same entities, JSON values.
    const legacy = log.map((r) => {
      if (r.value.length === 0 || r.key === 'm') return r;
      const json = r.key.startsWith('s:')
        ? JSON.stringify(decodeSessionState(r.value))
        : JSON.stringify((({ table, w, k, acc }) => ({ table, w, k, acc: accToJson(acc) }))(decodeWindowState(r.value)));
      return { ...r, value: Buffer.from(json) };
    });
    expect(legacy.filter((r) => r.key.startsWith('s:') && r.value.length > 0).every((r) => r.value[0] === 0x7b)).toBe(true);
    for (const records of [legacy, [...legacy.slice(0, legacy.length >> 1), ...log.slice(legacy.length >> 1)]]) {
      const restored = restorePartition(0, records);
      expect(serializePartition(restored.state)).toEqual(serializePartition(ps));
      expect([...restored.state.sessions.keys()]).toEqual([...ps.sessions.keys()]);
      expect(restored.maxTsMs).toBe(maxTs);
      expect(restored.nextOffset).toBe(offset);
    }
    // Unchanged since the restore, yet held as JSON: the next full diff rewrites each as Avro, once.
    const restored = restorePartition(0, legacy);
    const held = [...restored.tracker.sessions.keys()].length + [...restored.tracker.accs.keys()].length;
    restored.state.dirtyAccs = null;
    const first = diffPartition(restored.state, restored.tracker, { maxTsMs: maxTs, sessions: 'all', nextOffset: offset });
    expect(first.messages).toHaveLength(held);
    expect(first.messages.every((m) => framingOf(m.value) === 'single-object')).toBe(true);
    first.commit();
    expect(diffPartition(restored.state, restored.tracker, { maxTsMs: maxTs, sessions: 'all', nextOffset: offset }).messages).toEqual([]);
  });

  it('the state schemas hold every field of a session and an accumulator', () => {
    const schema = (file: string) => JSON.parse(readFileSync(projectPath('schemas', file), 'utf8')) as { fields: Array<{ name: string; type: { fields?: Array<{ name: string }> } }> };
    const session = schema('state-session.avsc').fields;
    // dimsKey is derived from dims on restore; t is the changelog's own field.
    expect(session.map((f) => f.name).sort()).toEqual([...Object.keys(newSession('s', emptyDims(), 0, 0)).filter((k) => k !== 'dimsKey'), 't'].sort());
    expect(session.find((f) => f.name === 'dims')?.type.fields?.map((f) => f.name)).toEqual([...DIMENSIONS]);
    const win = schema('state-window.avsc').fields;
    const sums = win.find((f) => f.name === 'sums')?.type.fields?.map((f) => f.name);
    expect(sums).toEqual([...SUM_FIELDS]);
    expect([...(sums ?? []), ...win.map((f) => f.name).filter((n) => !['table', 'w', 'k', 'sums'].includes(n))].sort()).toEqual(Object.keys(emptyAcc()).sort());
    // Values JSON could not carry survive: negative and fractional sums, infinities, a null attempt time.
    const acc = { ...emptyAcc(), playingMs: -2500.25, bitsPlayed: 1e15 + 0.5 };
    acc.errors.set('1:E42', 3);
    acc.vstHist.set(480, -1);
    expect(decodeWindowState(encodeWindowState('corrections', -10_000, 'k', acc))).toEqual({ table: 'corrections', w: -10_000, k: 'k', acc });
    const s = { ...newSession('x', { ...emptyDims(), cdn: 'c', custom3: 'é' }, 5, -7.5), extrapolatedToMs: Infinity };
    expect(decodeSessionState(encodeSessionState(s, 42))).toEqual({ t: 42, s });
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
