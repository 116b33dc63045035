import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { createMemoryBus } from '../lib/bus/memory.js';
import { CONSUMER_GROUPS, TOPICS } from '../lib/bus/topics.js';
import type { Bus } from '../lib/bus/types.js';
import { silentLogger } from '../lib/logger.js';
import { encodeSessionEvent } from '../schemas/codec.js';
import { emptyDims, type EventType, type SessionEvent } from '../schemas/events.js';
import { BARRIER_KEY } from './changelog.js';
import { createProcessor, type ProcessorCommit } from './processor.js';
import { decodeMetricsRecord } from './metrics-record.js';

const T = 1_700_000_000_000;

/** Window settings of these tests: 10 s windows, no grace, no out-of-order wait, idle after 50 ms. */
const SETTINGS = {
  windowMs: 10_000, graceMs: 0, sessionTimeoutMs: 60_000, maxSessions: 1000, maxClockAheadMs: 5000,
  maxClockSkewMs: 10 ** 12, ebvsMinMs: 0, maxOutOfOrderMs: 0, idlePartitionMs: 50,
};

/** A memory bus with the processor's topics (and its changelog topic when `changelog`). */
async function memoryBus(maxBacklog: number, opts: { changelog?: boolean; partitions?: number } = {}): Promise<ReturnType<typeof createMemoryBus>> {
  const bus = createMemoryBus({ maxBacklog });
  const topics = [TOPICS.beacons, TOPICS.beaconsDlq, TOPICS.metrics, ...(opts.changelog === true ? [TOPICS.processorState] : [])];
  await bus.createTopics(topics.map((topic) => ({ topic, partitions: opts.partitions ?? 1 })));
  return bus;
}

function ev(sessionId: string, seq: number, tsMs: number, type: EventType): SessionEvent {
  return {
    sessionId, seq, tsMs, receivedAtMs: tsMs, type, source: 'native', dims: { ...emptyDims(), cdn: 'cdn-a' },
    bitrateKbps: null, playheadMs: null, droppedFrames: null, errorCode: null, errorFatal: null,
    httpStatus: null, ttfbMs: null, ttlbMs: null, startupMs: null, clientHash: '',
  };
}

async function waitFor(cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('processor at the bus bound', () => {
  it('keeps closed windows it could not send and delivers them once the bus has room: nothing lost, nothing doubled', async () => {
    // A tiny bound: the metrics topic fills while nobody consumes it.
    const bus = await memoryBus(4);
    // Event time around T; after the traffic, the wall clock jumps hours ahead and keeps running.
    let clock = T;
    let jumpedAt = 0;
    const processor = createProcessor({
      bus, log: silentLogger(), now: () => clock + (jumpedAt === 0 ? 0 : Date.now() - jumpedAt), tickMs: 20,
      settings: SETTINGS,
    });
    // A sink stand-in that subscribes (so its backlog counts) but does not commit yet.
    const received: Array<Record<string, unknown>> = [];
    let draining = false;
    const sink = bus.consumer({ groupId: CONSUMER_GROUPS.sink, topics: [TOPICS.metrics], autoCommit: false });
    await sink.run({
      eachBatch: async (b) => {
        if (!draining) throw new Error('sink down');
        for (const r of b.records) received.push(decodeMetricsRecord(r.value));
        await sink.commit([{ topic: b.topic, partition: b.partition, offset: (b.records.at(-1)?.offset ?? 0) + 1 }]);
      },
    });
    await processor.start();
    const producer = bus.producer();
    const view = (i: number): Array<{ key: string; value: Buffer }> => {
      const t0 = T + i * 10_000;
      return [ev(`s${i}`, 0, t0, 'play_request'), ev(`s${i}`, 1, t0, 'first_frame'), ev(`s${i}`, 2, t0 + 10_000, 'ended')]
        .map((e) => ({ key: e.sessionId, value: encodeSessionEvent(e) }));
    };
    // Each view closes the previous view's window: after a few, the metrics topic is at its bound, the
    // processor's sends are refused, its input stays uncommitted, and the next send is refused too
    // (what ingest turns into 503 + Retry-After).
    const VIEWS = 12;
    let refusedAt = -1;
    for (let i = 0; i < VIEWS; i++) {
      try {
        await producer.send(TOPICS.beacons, view(i));
      } catch (err) {
        expect((err as { code?: string }).code).toBe('QOE_ERR_BUS_FULL');
        refusedAt = i;
        break;
      }
      await new Promise((r) => setTimeout(r, 30));
    }
    expect(refusedAt).toBeGreaterThan(0);
    expect(received).toHaveLength(0);
    // The sink comes back: the processor's kept windows go out first, then the rest of the traffic.
    draining = true;
    for (let i = refusedAt; i < VIEWS; i++) {
      for (;;) {
        try {
          await producer.send(TOPICS.beacons, view(i));
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    }
    clock = T + 10 * 3_600_000; // then idle: the wall-clock watermark closes every window
    jumpedAt = Date.now();
    await waitFor(async () => received.reduce((n, r) => n + Number(r.ended), 0) >= VIEWS && (await processor.lag()) === 0, 30_000)
      .catch(async (err: unknown) => {
        throw new Error(`${String(err)}: ended=${received.reduce((n, r) => n + Number(r.ended), 0)} attempts=${received.reduce((n, r) => n + Number(r.attempts), 0)} lag=${await processor.lag()}`);
      });
    await new Promise((r) => setTimeout(r, 200));
    const total = (f: string): number => received.reduce((n, r) => n + Number(r[f]), 0);
    expect(total('attempts')).toBe(VIEWS);
    expect(total('ended')).toBe(VIEWS);
    expect(total('playing_ms')).toBe(VIEWS * 10_000);
    await processor.stop();
    await sink.close();
    await bus.close();
  });
});

describe('processor with a changelog: restored state and an older committed offset', () => {
  it('skips the input records its restored state already holds: counted once', async () => {
    const bus = await memoryBus(10_000, { changelog: true });
    let clock = T;
    let jumpedAt = 0;
    const now = (): number => clock + (jumpedAt === 0 ? 0 : Date.now() - jumpedAt);
    const settings = SETTINGS;
    // What the processors report of their transactions and restores, checked against the topics below.
    const commits: ProcessorCommit[] = [];
    const restores: Array<{ partition: number; records: number }> = [];
    const start = async (instanceId: string): Promise<ReturnType<typeof createProcessor>> => {
      const p = createProcessor({
        bus, log: silentLogger(), now, tickMs: 20, settings, changelog: true, instanceId,
        onCommit: (c) => commits.push(c), onRestore: (r) => restores.push(r),
      });
      await p.start();
      return p;
    };
    // Another group that reads the input and never commits: the memory bus keeps the records.
    const holder = bus.consumer({ groupId: 'holder', topics: [TOPICS.beacons], autoCommit: false });
    await holder.run({ eachBatch: async () => undefined });
    const producer = bus.producer();
    const sendViews = async (from: number, to: number): Promise<void> => {
      for (let i = from; i < to; i++) {
        const t0 = T + i * 10_000;
        const events = [ev(`s${i}`, 0, t0, 'play_request'), ev(`s${i}`, 1, t0, 'first_frame'), ev(`s${i}`, 2, t0 + 10_000, 'ended')];
        await producer.send(TOPICS.beacons, events.map((e) => ({ key: e.sessionId, value: encodeSessionEvent(e) })));
      }
    };
    const sessions = (p: ReturnType<typeof createProcessor>): number => [...p.partitions().values()].reduce((n, ps) => n + ps.sessions.size, 0);

    // First owner: six views, then the wall clock runs hours ahead, so every window closes and every
    // session expires (what is left of them is only in the changelog's counters and the outputs).
    const first = await start('a');
    await sendViews(0, 6);
    await waitFor(async () => (await first.lag()) === 0);
    clock = T + 10 * 3_600_000;
    jumpedAt = Date.now();
    await waitFor(() => sessions(first) === 0 && [...first.partitions().values()].every((ps) => ps.open.size === 0));
    await first.stop();

    // The next owner is handed an older committed offset than its restored state covers (as kafkajs
    // can be, when the previous owner's last transaction commits during the restore).
    await bus.consumer({ groupId: CONSUMER_GROUPS.processor, topics: [TOPICS.beacons] }).commit([{ topic: TOPICS.beacons, partition: 0, offset: 0 }]);
    const second = await start('b');
    await waitFor(async () => (await second.lag()) === 0 && second.partitions().size === 1);
    // An hour later: had the records been counted again, their windows would be out by now.
    clock += 3_600_000;
    await waitFor(() => sessions(second) === 0 && [...second.partitions().values()].every((ps) => ps.open.size === 0 && ps.corrections.size === 0));
    await new Promise((r) => setTimeout(r, 100));
    await second.stop();

    const rows = (await bus.readPartition(TOPICS.metrics, 0, 0)).map((r) => decodeMetricsRecord(r.value));
    const total = (f: string): number => rows.reduce((n, r) => n + Number(r[f]), 0);
    expect(total('attempts')).toBe(6);
    expect(total('ended')).toBe(6);
    expect(total('playing_ms')).toBe(6 * 10_000);
    expect(await bus.readPartition(TOPICS.beaconsDlq, 0, 0)).toEqual([]);

    // Reported: every window row and changelog record that reached the topics, once.
    const changelog = (await bus.readPartition(TOPICS.processorState, 0, 0)).filter((r) => r.key !== BARRIER_KEY);
    const sum = (f: (c: ProcessorCommit) => number): number => commits.reduce((n, c) => n + f(c), 0);
    expect(sum((c) => c.windowRows)).toBe(rows.length);
    expect(sum((c) => c.changelogRecords)).toBe(changelog.length);
    expect(sum((c) => c.changelogBytes)).toBe(changelog.reduce((n, r) => n + r.value.length, 0));
    expect(commits.every((c) => c.seconds >= 0 && c.seconds < 10)).toBe(true);
    // Two owners, one restore each, reading up to its own barrier: the first only that, the second
    // everything the first wrote too.
    const all = await bus.readPartition(TOPICS.processorState, 0, 0);
    const barriers = all.flatMap((r, i) => (r.key === BARRIER_KEY ? [i] : []));
    expect(barriers).toHaveLength(2);
    expect(restores).toEqual([
      { partition: 0, records: 1, replayed: 0, seconds: expect.any(Number) },
      { partition: 0, records: (barriers[1] ?? 0) + 1, replayed: 0, seconds: expect.any(Number) },
    ]);
    await holder.close();
    await bus.close();
  });
});

describe('processor with a changelog: input committed with the next transaction (commitIntervalMs)', () => {
  const settings = SETTINGS;
  async function setup(commitIntervalMs: number) {
    const bus = await memoryBus(10_000, { changelog: true });
    const commits: ProcessorCommit[] = [];
    // The clock stays inside the events' window: no window fires, nothing but the input needs a transaction.
    const p = createProcessor({
      bus, log: silentLogger(), now: () => T + 5000, tickMs: 20, settings, changelog: true, instanceId: 'ci', commitIntervalMs,
      onCommit: (c) => commits.push(c),
    });
    await p.start();
    const producer = bus.producer();
    const events = (): number => [...p.partitions().values()].reduce((n, ps) => n + ps.counters.events, 0);
    /** Sends one batch and waits until the processor has applied it. */
    const batch = async (...list: SessionEvent[]): Promise<void> => {
      const before = events();
      await producer.send(TOPICS.beacons, list.map((e) => ({ key: e.sessionId, value: encodeSessionEvent(e) })));
      await waitFor(() => events() === before + list.length);
    };
    // The group's committed input offset, read as another process would.
    const committedLag = async (): Promise<number> =>
      (await bus.consumer({ groupId: CONSUMER_GROUPS.processor, topics: [TOPICS.beacons] }).lag()).reduce((n, l) => n + l.lag, 0);
    const sessionRecords = async (id: string): Promise<number> =>
      (await bus.readPartition(TOPICS.processorState, 0, 0)).filter((r) => r.key === `s:${id}`).length;
    return { bus, p, commits, batch, committedLag, sessionRecords };
  }

  it('writes a session its events touch in several batches once, in the transaction that commits their input', async () => {
    const { bus, p, commits, batch, committedLag, sessionRecords } = await setup(60_000);
    // Three batches touch s0: processed, and waiting for a transaction (no window fires, the interval is far).
    await batch(ev('s0', 0, T + 1000, 'play_request'), ev('s0', 1, T + 1100, 'first_frame'));
    await batch(ev('s0', 2, T + 2000, 'heartbeat'));
    await batch(ev('s0', 3, T + 3000, 'heartbeat'));
    await new Promise((r) => setTimeout(r, 200)); // ten ticks
    expect(await committedLag()).toBe(4);
    expect(commits).toHaveLength(0);
    expect(await sessionRecords('s0')).toBe(0);
    // Stopping commits them: one transaction, s0 written once for the three batches, the input's offset with it.
    await p.stop();
    expect(commits).toHaveLength(1);
    expect(await committedLag()).toBe(0);
    expect(await sessionRecords('s0')).toBe(1);
    await bus.close();
  });

  it('commits waiting input once the interval has passed, with no window to fire', async () => {
    const { bus, p, commits, batch, committedLag } = await setup(300);
    await batch(ev('s1', 0, T + 1000, 'play_request'));
    const processedAt = Date.now();
    await waitFor(async () => (await committedLag()) === 0);
    // The timer's tick committed it, not before its time (the tick runs every 20 ms).
    expect(Date.now() - processedAt).toBeGreaterThanOrEqual(250);
    expect(commits).toHaveLength(1);
    await p.stop();
    await bus.close();
  });
});

describe('processor with a changelog: snapshots, and input replayed on restore', () => {
  it('rebuilds its state after a failed transaction from the last snapshot and the input logged since: counted once', async () => {
    const inner = await memoryBus(10_000, { changelog: true });
    // A processor transaction fails once on demand (as when a broker fences or times it out).
    let failNext = false;
    const bus: Bus = {
      ...inner,
      producer(opts) {
        const p = inner.producer(opts);
        return {
          ...p,
          async sendWithOffsets(batches, groupId, offsets) {
            if (failNext && opts?.transactionalId !== undefined) {
              failNext = false;
              throw new Error('injected transaction failure');
            }
            await p.sendWithOffsets(batches, groupId, offsets);
          },
        };
      },
    };
    let clock = T;
    let jumpedAt = 0;
    const commits: ProcessorCommit[] = [];
    const restores: Array<{ partition: number; records: number; replayed: number }> = [];
    const p = createProcessor({
      bus, log: silentLogger(), now: () => clock + (jumpedAt === 0 ? 0 : Date.now() - jumpedAt), tickMs: 20, changelog: true, instanceId: 'r',
      commitIntervalMs: 0, snapshotIntervalMs: 600_000, onCommit: (c) => commits.push(c), onRestore: (r) => restores.push(r),
      settings: { ...SETTINGS, idlePartitionMs: 3_600_000 },
    });
    // Another group that reads the input and never commits: the memory bus keeps the records (Kafka: retention).
    const holder = inner.consumer({ groupId: 'holder', topics: [TOPICS.beacons], autoCommit: false });
    await holder.run({ eachBatch: async () => undefined });
    await p.start();
    const producer = bus.producer();
    const events = (): number => [...p.partitions().values()].reduce((n, ps) => n + ps.counters.events, 0);
    // View i: 10 s of playing from T + 10 s × i; each view's events move the watermark past the previous view's window.
    const sendView = async (i: number): Promise<void> => {
      const t0 = T + i * 10_000;
      const list = [ev(`s${i}`, 0, t0, 'play_request'), ev(`s${i}`, 1, t0, 'first_frame'), ev(`s${i}`, 2, t0 + 10_000, 'ended')];
      await producer.send(TOPICS.beacons, list.map((e) => ({ key: e.sessionId, value: encodeSessionEvent(e) })));
    };
    const VIEWS = 8;
    for (let i = 0; i < VIEWS - 1; i++) {
      const before = events();
      await sendView(i);
      await waitFor(() => events() === before + 3);
    }
    await waitFor(() => commits.length >= VIEWS - 1);
    // No snapshot yet (the empty partition before its first record is the first): every transaction
    // wrote only the meta record, the replay log.
    expect(commits.every((c) => c.changelogRecords === 1)).toBe(true);
    expect(commits.some((c) => c.windowRows > 0)).toBe(true);
    // The next transaction fails: the processor drops its state and restores the partition.
    failNext = true;
    await sendView(VIEWS - 1);
    await waitFor(() => restores.length === 2 && p.partitions().size === 1 && events() >= 3);
    // Restored from the empty state plus all the input before the failed batch.
    expect(restores[1]?.replayed).toBe(3 * (VIEWS - 1));
    // Then every window closes and every session expires.
    clock = T + 10 * 3_600_000;
    jumpedAt = Date.now();
    await waitFor(() => [...p.partitions().values()].every((ps) => ps.sessions.size === 0 && ps.open.size === 0 && ps.corrections.size === 0));
    await new Promise((r) => setTimeout(r, 100));
    await p.stop();
    const rows = (await inner.readPartition(TOPICS.metrics, 0, 0)).map((r) => decodeMetricsRecord(r.value));
    const total = (f: string): number => rows.reduce((n, r) => n + Number(r[f]), 0);
    expect(total('attempts')).toBe(VIEWS);
    expect(total('plays')).toBe(VIEWS);
    expect(total('ended')).toBe(VIEWS);
    expect(total('playing_ms')).toBe(VIEWS * 10_000);
    expect(await inner.readPartition(TOPICS.beaconsDlq, 0, 0)).toEqual([]);
    await holder.close();
    await inner.close();
  });
});

describe('processor stall watchdog', () => {
  it('logs a transaction that does not finish, and queues at most one tick behind it', async () => {
    const bus = await memoryBus(10_000, { changelog: true });
    // Transactions of the processor's partition producer hang once `hang` is set (restore's barrier goes through).
    let hang = false;
    let release: () => void = () => undefined;
    const hung = new Promise<void>((r) => (release = r));
    let hungSends = 0;
    const producerOf = bus.producer.bind(bus);
    bus.producer = (opts) => {
      const p = producerOf(opts);
      return { ...p, sendWithOffsets: async (batches, group, offsets) => {
        if (hang) {
          hungSends += 1;
          await hung;
        }
        return p.sendWithOffsets(batches, group, offsets);
      } };
    };
    const lines: Array<Record<string, unknown>> = [];
    const log = pino({ level: 'warn' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    const settings = SETTINGS;
    let clock = T;
    // Every tick reads the clock: counting reads counts the ticks that ran.
    let clockReads = 0;
    const now = (): number => {
      clockReads += 1;
      return clock;
    };
    // commitIntervalMs 0: the batch's input is committed at once (its transaction is the one that hangs).
    const p = createProcessor({ bus, log, now, tickMs: 10, settings, changelog: true, instanceId: 'w', stallWarnMs: 300, commitIntervalMs: 0 });
    await p.start();
    await waitFor(() => p.partitions().size === 1);
    hang = true;
    await bus.producer().send(TOPICS.beacons, [ev('s1', 0, T, 'play_request')].map((e) => ({ key: e.sessionId, value: encodeSessionEvent(e) })));
    // The batch's transaction hangs; ticks every 10 ms for ~1 s, a warning every 300 ms.
    const hungAt = Date.now();
    await new Promise((r) => setTimeout(r, 1000));
    const hungMs = Date.now() - hungAt;
    clock += 60_000;
    const stalls = lines.filter((l) => l.msg === 'processor task has not finished; batches and window firing wait behind it');
    expect(stalls.length).toBeGreaterThanOrEqual(2);
    // One per 300 ms, not one per tick (~100).
    expect(stalls.length).toBeLessThanOrEqual(Math.ceil(hungMs / 300));
    expect(stalls[0]).toMatchObject({ task: 'batch', partition: 0, waitingOn: ['transaction of partition 0'] });
    expect(Number(stalls[0]!.runningMs)).toBeGreaterThanOrEqual(300);
    // Only the hung batch reached the producer.
    expect(hungSends).toBe(1);
    hang = false;
    // ~100 timer ticks fired while it hung: had each queued a tick, ~100 would run now, back to back.
    const readsBefore = clockReads;
    release();
    // One turn of the event loop: what was queued runs now, the timer adds at most a tick or two.
    await new Promise((r) => setImmediate(r));
    expect(clockReads - readsBefore).toBeLessThan(25);
    // Released: the queued tick and the rest run; the event is processed and committed.
    await waitFor(async () => (await p.lag()) === 0);
    const warnedBefore = stalls.length;
    await new Promise((r) => setTimeout(r, 400));
    expect(lines.filter((l) => l.msg === 'processor task has not finished; batches and window firing wait behind it')).toHaveLength(warnedBefore);
    await p.stop();
    await bus.close();
  });
});

describe('processor on a large fetch', () => {
  it('lets the event loop run between chunks of one batch (timers, heartbeats), and counts every event once', async () => {
    // Kafka fetches bring up to ~50,000 beacons per partition in one batch; the memory bus is made to
    // hand out 12,000 at once here. The processor yields every 5,000 records of a batch.
    const bus = await memoryBus(100_000);
    const wide = { ...bus, consumer: (o: Parameters<typeof bus.consumer>[0]) => bus.consumer({ ...o, maxBatchSize: 50_000 }) };
    const EVENTS = 12_000;
    const messages = Array.from({ length: EVENTS }, (_, i) => {
      const e = ev(`s${i % 400}`, Math.floor(i / 400), T + i, i < 400 ? 'play_request' : 'heartbeat');
      return { key: e.sessionId, value: encodeSessionEvent(e) };
    });
    await bus.producer().send(TOPICS.beacons, messages);
    const processor = createProcessor({
      bus: wide, log: silentLogger(), now: () => T, tickMs: 60_000,
      settings: SETTINGS,
    });
    // What the event loop saw of the partition's event count, at every turn while the batch ran.
    const seen = new Set<number>();
    let watching = true;
    const watch = (): void => {
      seen.add(processor.partitions().get(0)?.counters.events ?? 0);
      if (watching) setImmediate(watch);
    };
    watch();
    await processor.start();
    await waitFor(() => processor.partitions().get(0)?.counters.events === EVENTS);
    watching = false;
    await new Promise((r) => setTimeout(r, 50));
    const counted = processor.partitions().get(0)?.counters.events;
    await processor.stop();
    expect(counted).toBe(EVENTS);
    // One batch (no count between 0 and the end but the yields'), seen at both of its yields.
    expect([...seen].filter((n) => n > 0 && n < EVENTS).sort((a, b) => a - b)).toEqual([5000, 10_000]);
  });
});

describe('processor with a changelog when the input lag cannot be read at assignment', () => {
  it('holds the watermark for a partition still waiting for its first batch: its backlog is not late', async () => {
    const bus = await memoryBus(10_000, { changelog: true, partitions: 2 });
    // Backlogs of the same hour on both partitions; the wall clock is an hour past them.
    const VIEWS = 20;
    const messages = Array.from({ length: VIEWS }, (_, i) => {
      const t0 = T + i * 60_000;
      return [ev(`s${i}`, 0, t0, 'play_request'), ev(`s${i}`, 1, t0 + 1000, 'first_frame'), ev(`s${i}`, 2, t0 + 31_000, 'ended')]
        .map((e) => ({ key: e.sessionId, value: encodeSessionEvent(e), partition: i % 2 }));
    }).flat();
    await bus.producer().send(TOPICS.beacons, messages);
    // The lag request fails (e.g. the admin connection), and partition 1's first batch comes late
    // (as a partition waiting for its turn behind another's backlog).
    let firstOfPartition1 = true;
    const slow: typeof bus = {
      ...bus,
      consumer: (o) => {
        const c = bus.consumer(o);
        return {
          ...c,
          lag: async () => {
            throw new Error('admin unavailable');
          },
          run: (h) => c.run({
            ...h,
            eachBatch: async (b) => {
              if (b.partition === 1 && firstOfPartition1) {
                firstOfPartition1 = false;
                await new Promise((r) => setTimeout(r, 400));
              }
              await h.eachBatch(b);
            },
          }),
        };
      },
    };
    const settings = SETTINGS;
    const started = Date.now();
    const now = (): number => T + 3_600_000 + (Date.now() - started);
    const processor = createProcessor({ bus: slow, log: silentLogger(), now, tickMs: 20, settings, changelog: true, instanceId: 'lagless' });
    await processor.start();
    const events = (): number => [...processor.partitions().values()].reduce((n, ps) => n + ps.counters.events, 0);
    await waitFor(() => events() === messages.length);
    const late = [...processor.partitions().values()].reduce((n, ps) => n + ps.counters.late, 0);
    await processor.stop();
    const dead = (await Promise.all([0, 1].map((p) => bus.readPartition(TOPICS.beaconsDlq, p, 0)))).flat();
    expect(firstOfPartition1).toBe(false);
    expect({ late, dead: dead.length }).toEqual({ late: 0, dead: 0 });
    await bus.close();
  });
});
