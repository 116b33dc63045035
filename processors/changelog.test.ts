import { describe, expect, it } from 'vitest';
import type { BusRecord } from '../lib/bus/types.js';
import { createMemoryBus } from '../lib/bus/memory.js';
import { normalizeEvent } from '../ingest/normalize.js';
import type { BeaconEvent } from '../ingest/beacon-schema.js';
import { planRun } from '../sim/simulate.js';
import { createTracker, diffPartition, markOf, movedSince, noteTouch, restorePartition } from './changelog.js';
import { advance, applyEvent, emptyPartitionState, type ProcessorSettings } from './partition.js';
import { serializePartition } from './snapshot.js';
import { newSession, upgradeSession } from './session.js';
import { emptyDims } from '../schemas/events.js';

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
