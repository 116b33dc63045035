import { randomUUID } from 'node:crypto';
import type { Logger } from '../lib/logger.js';
import type { Bus, BusConsumer, BusMessage, BusProducer, BusRecord, ConsumerBatch, ConsumerHandlers, OffsetCommit, TopicMessages, TopicPartition } from '../lib/bus/types.js';
import { CONSUMER_GROUPS, TOPICS } from '../lib/bus/topics.js';
import { decodeSessionEvent } from '../schemas/codec.js';
import { blankSessionEvent } from '../schemas/event-reader.js';
import type { SessionEvent } from '../schemas/events.js';
import { advance, applyEvent, emptyPartitionState, type PartitionState, type ProcessorSettings } from './partition.js';
import { createMetricsRecordWriter } from './metrics-record.js';
import { deserializePartition, serializePartition, type CheckpointStore } from './snapshot.js';
import {
  BARRIER_KEY, diffPartition, markOf, movedSince, replayInput, replayMeta, restorePartition, snapshotFromEmpty, type ChangelogDiff, type ChangelogTracker,
} from './changelog.js';
import {
  createWatermarkTracker, currentWatermark, forgetPartition, markCaughtUp, observeEventTime, trackPartition, type WatermarkSettings,
} from './watermark.js';

/**
 * The sessions + windows processor: consume qoe.beacons.v1 → per-partition session state and
 * window accumulators → qoe.metrics.v1 (closed windows and corrections) and qoe.beacons.v1.dlq.
 * Outputs and input offsets are handed to the bus together (sendWithOffsets), so they commit as one.
 *
 * With the changelog (distributed runtime; see processors/changelog.ts and docs/architecture.md
 * "Output and exactly-once"), each input partition p has its own transactional producer
 * (`qoe-processor-p<p>`: a new owner of p fences a zombie one) and every transaction for p carries
 * p's outputs, p's input offset and p's changelog records (changelog partition p) — batches and the
 * watermark ticks alike: every snapshotIntervalMs a snapshot of the state that changed, in between
 * only the meta record logging what a restore must replay on top of it (changelog.ts ReplayLog).
 * On assignment, p's producer commits a barrier record to the changelog (which also fences and
 * aborts what a previous owner left open) and p's state is read back up to the barrier, and the
 * input logged since its snapshot applied again, before p's first batch. If a transaction fails, the in-memory state is ahead of what
 * committed: the consumer is closed and started again, so every partition is restored from the
 * changelog and re-read from its committed offset.
 * The changelog also records the next input offset each state covers. The group's committed offset
 * can lag it: kafkajs fetches committed offsets when the partition is assigned, concurrently with
 * the restore, and a killed owner's last transaction may still be committing then (its offsets
 * become visible only once the barrier's fencing completed it). Records below the restored offset
 * are skipped: the state already holds them (counting them again doubled totals after a kill -9).
 *
 * Without it (embedded runtime, memory bus) one producer serves all partitions and state survives
 * a graceful stop through `checkpoints`.
 */
export interface ProcessorDeps {
  bus: Bus;
  settings: ProcessorSettings & WatermarkSettings;
  log: Logger;
  now: () => number;
  checkpoints?: CheckpointStore;
  instanceId?: string;
  /** How often the watermark is re-evaluated when no records arrive. */
  tickMs?: number;
  /** Keep state in TOPICS.processorState (needs bus.readPartition). Default: on for the Kafka bus. */
  changelog?: boolean;
  /**
   * With the changelog: how long processed input may wait for its transaction (default 1000 ms).
   * A batch that fires no window and dead-letters nothing is committed with the next transaction
   * of its partition — a window firing, a later batch past this interval, the timer, a revocation
   * or stop — so a session its events touch in several batches is written to the changelog once.
   */
  commitIntervalMs?: number;
  /**
   * With the changelog: how often a partition's changed sessions and accumulators are written to it
   * (default 30000 ms). In between, a transaction writes only the meta record: the input and the
   * window moves since the last snapshot, which a restore applies again (changelog.ts ReplayLog).
   * Longer = fewer changelog records per event, more input read again after a crash.
   */
  snapshotIntervalMs?: number;
  /**
   * Kafka: a fetch of input waits until `minBytes` are ready or `maxWaitMs` passed (ConsumerOptions).
   * Default: return as soon as anything is.
   */
  fetch?: { minBytes: number; maxWaitMs: number };
  onOutcome?: (outcome: Outcome, n: number) => void;
  /** After each send of outputs that succeeded: a partition's transaction (Kafka) or the outputs' send (memory bus). */
  onCommit?: (c: ProcessorCommit) => void;
  /** After a partition's state was restored from its changelog (Kafka). */
  onRestore?: (c: { partition: number; seconds: number; records: number; replayed: number }) => void;
  /**
   * A batch, tick or (re)assignment that runs longer than this is logged as stalled, again every
   * this long while it lasts (default 30000 ms): everything else waits behind it.
   */
  stallWarnMs?: number;
}

/** What became of an input record: counted, or why it was dead-lettered. */
export type Outcome = 'ok' | 'late' | 'after_end' | 'duplicate' | 'undecodable';

export interface ProcessorCommit {
  seconds: number;
  /** Window rows sent to qoe.metrics.v1. */
  windowRows: number;
  /** Changelog records written (sessions, accumulators, tombstones, the meta record) and their value bytes. */
  changelogRecords: number;
  changelogBytes: number;
}

export interface Processor {
  start(): Promise<void>;
  stop(): Promise<void>;
  watermarkMs(): number;
  partitions(): Map<number, PartitionState>;
  /** Records on its input topics not yet committed. */
  lag(): Promise<number>;
}

/** Window moves, and input offsets, a partition's changelog may log before it takes a snapshot: restore applies them again. */
const MAX_REPLAY_ADVANCES = 64;
const MAX_REPLAY_OFFSETS = 500_000;

/** Records a batch processes between yields to the event loop (~0.1 s of work). */
const YIELD_EVERY = 5000;

const countOf = (batches: TopicMessages[], topic: string): number => {
  let n = 0;
  for (const b of batches) if (b.topic === topic) n += b.messages.length;
  return n;
};

export function createProcessor(deps: ProcessorDeps): Processor {
  const { bus, settings, log, now } = deps;
  const useChangelog = deps.changelog ?? (bus.kind === 'kafka' && bus.readPartition !== undefined);
  const group = CONSUMER_GROUPS.processor;
  const states = new Map<number, PartitionState>();
  const trackers = new Map<number, ChangelogTracker>();
  /** Input partition → next offset its (changelog) state covers. */
  const nextInput = new Map<number, number>();
  /**
   * Input partition → the offset after the last record processed and not yet committed, and since
   * when (Date.now()) records have waited. Every transaction of the partition carries this offset
   * with the state that holds those records: state and offset never part.
   */
  const uncommitted = new Map<number, { offset: number; sinceMs: number }>();
  const commitIntervalMs = deps.commitIntervalMs ?? 1000;
  const due = (partition: number, t: number): boolean => {
    const u = uncommitted.get(partition);
    return u !== undefined && t - u.sinceMs >= commitIntervalMs;
  };
  const snapshotIntervalMs = deps.snapshotIntervalMs ?? 30_000;
  /**
   * Input partition → its last snapshot in the changelog: the input offset the state written there
   * covers (null: none yet) and when it was taken (Date.now()). Transactions in between log what a
   * restore must apply again: the input since `offset`, and the window moves in `advances`.
   */
  const snapshots = new Map<number, { offset: number | null; atMs: number }>();
  /** Input partition → window moves since its last snapshot, as [input position, watermark] (changelog.ts ReplayLog). */
  const advances = new Map<number, Array<[number, number]>>();
  /** The offset after the last input record of the partition processed (null: none yet). */
  const position = (partition: number): number | null => uncommitted.get(partition)?.offset ?? nextInput.get(partition) ?? null;
  /** Whether the partition's changelog state lags its state here (input or window moves since its last snapshot). */
  const sinceSnapshot = (partition: number): boolean => {
    const snap = snapshots.get(partition);
    return snap !== undefined && (snap.offset !== position(partition) || (advances.get(partition)?.length ?? 0) > 0);
  };
  const snapshotDue = (partition: number, t: number): boolean => sinceSnapshot(partition) && t - (snapshots.get(partition)?.atMs ?? t) >= snapshotIntervalMs;
  const producers = new Map<number, BusProducer>();
  const tracker = createWatermarkTracker();
  const scratch = blankSessionEvent();
  const writeMetricsRecord = createMetricsRecordWriter();
  /** A record's value read where it lies (Kafka's fetched records: no Buffer per record), into `scratch`. */
  const readInPlace = (bytes: Buffer, start: number, end: number): SessionEvent => decodeSessionEvent(bytes, scratch, start, end);
  // On Kafka every chunk is a transaction (≈ 5 round trips) plus a changelog diff that writes each
  // session and accumulator the chunk touched once, however many of its events the chunk held: the
  // larger the chunk, the more of both it amortises. A chunk is one partition's share of a fetch, up
  // to 10 MiB as stored (also kafkajs's bound on a whole fetch): against kafkajs's default of 1 MiB,
  // 42 % fewer changelog records and ~20 % more events per core (bench/README.md, 2026-11-30 fifth
  // session). Compressed (gzip, the default), 10 MiB holds ~125,000 beacons: a cap of 100,000
  // records cut such a fetch in two transactions, each writing the sessions both touched — the whole
  // fetched batch is one chunk (21 % fewer changelog records again; ninth session). The records are
  // in memory either way (kafkajs decodes the whole fetch), so the fetch's bytes stay the bound.
  // A backlog is where chunks get that large; live, a fetch holds what arrived since the last one.
  // Embedded, a chunk is processed without yielding: small ones keep ingest responsive.
  const maxBatchSize = bus.kind === 'kafka' ? Number.MAX_SAFE_INTEGER : 2000;
  const maxBytesPerPartition = bus.kind === 'kafka' ? 10 * 1024 * 1024 : undefined;
  const newConsumer = (): BusConsumer => bus.consumer({
    groupId: group, topics: [TOPICS.beacons], autoCommit: false, maxBatchSize, maxBytesPerPartition,
    ...(deps.fetch === undefined ? {} : { minBytes: deps.fetch.minBytes, maxWaitMs: deps.fetch.maxWaitMs }),
  });
  let consumer = newConsumer();
  const shared = useChangelog ? undefined : bus.producer({ transactionalId: `qoe-processor-${deps.instanceId ?? 'embedded'}` });
  let timer: NodeJS.Timeout | undefined;
  let stopping = false;
  /** Set when a transaction failed: state is ahead of the log until the consumer restarted. */
  let broken = false;
  let restarting: Promise<void> = Promise.resolve();
  // Batches and ticks touch the same state: run them one at a time.
  let chain: Promise<void> = Promise.resolve();
  /** The task the chain runs now (for the stall watchdog). */
  let running: { what: string; partition: number | undefined; sinceMs: number; warnedAtMs: number } | undefined;
  /** Kafka calls in flight within the running task (a tick commits partitions side by side). */
  const steps = new Set<string>();
  async function step<T>(what: string, fn: () => Promise<T>): Promise<T> {
    steps.add(what);
    try {
      return await fn();
    } finally {
      steps.delete(what);
    }
  }
  const serial = (what: string, partition: number | undefined, fn: () => Promise<void>): Promise<void> => {
    const next = chain.then(async () => {
      running = { what, partition, sinceMs: Date.now(), warnedAtMs: -Infinity };
      try {
        await fn();
      } finally {
        running = undefined;
      }
    });
    chain = next.catch(() => undefined);
    return next;
  };
  const stallWarnMs = deps.stallWarnMs ?? 30_000;
  /** Logs the running task when it has run stallWarnMs (and every stallWarnMs after that). */
  function watchStall(): void {
    const r = running;
    const t = Date.now();
    if (r === undefined || t - r.sinceMs < stallWarnMs || t - r.warnedAtMs < stallWarnMs) return;
    r.warnedAtMs = t;
    log.warn({ task: r.what, partition: r.partition, waitingOn: [...steps], runningMs: t - r.sinceMs },
      'processor task has not finished; batches and window firing wait behind it');
  }
  /** At most one timer tick waits in the chain: a stalled task must not pile them up. */
  let tickQueued = false;

  function stateOf(partition: number): PartitionState {
    let ps = states.get(partition);
    if (!ps) {
      ps = emptyPartitionState();
      states.set(partition, ps);
    }
    return ps;
  }

  function producerOf(partition: number): BusProducer {
    if (shared !== undefined) return shared;
    let p = producers.get(partition);
    if (p === undefined) {
      p = bus.producer({ transactionalId: `qoe-processor-p${partition}` });
      producers.set(partition, p);
    }
    return p;
  }

  function windowMessages(partition: number, ps: PartitionState, wm: number): BusMessage[] {
    const fired = ps.firedBeforeMs;
    const closed = ps.closedBeforeMs;
    const out = advance(ps, settings, wm);
    // A move of the window boundaries is logged for replay (advance() changes nothing otherwise).
    if (useChangelog && (ps.firedBeforeMs !== fired || ps.closedBeforeMs !== closed)) {
      let moves = advances.get(partition);
      if (moves === undefined) advances.set(partition, (moves = []));
      moves.push([position(partition) ?? -1, wm]);
    }
    return out.map((o) => ({
      key: `${o.windowStartMs}:${partition}`,
      value: writeMetricsRecord(o, settings.windowMs, partition),
    }));
  }

  function closeWindows(): BusMessage[] {
    const wm = currentWatermark(tracker, settings, now());
    return [...states].flatMap(([partition, ps]) => windowMessages(partition, ps, wm));
  }

  /**
   * Without a changelog (embedded), closed windows exist only in the outputs once advance() has
   * taken them out of the state: a refused send (the bus at its bound) keeps them here, and the next
   * send — the batch's redelivery or a tick — carries them first. Bounded by the windows that can close
   * while the bus is full; meanwhile input stays uncommitted, so ingest answers 503.
   */
  let unsent: TopicMessages[] = [];

  async function sendKeeping(partition: number, outputs: TopicMessages[], offsets: OffsetCommit[]): Promise<void> {
    const batches = [...unsent, ...outputs].filter((b) => b.messages.length > 0);
    if (batches.length === 0 && offsets.length === 0) return;
    const t0 = performance.now();
    try {
      await producerOf(partition).sendWithOffsets(batches, group, offsets);
      deps.onCommit?.({ seconds: (performance.now() - t0) / 1000, windowRows: countOf(batches, TOPICS.metrics), changelogRecords: 0, changelogBytes: 0 });
      unsent = [];
    } catch (err) {
      unsent = batches;
      throw err;
    }
  }

  /**
   * The transaction of one partition: outputs, the input offset of what it processed since the last
   * one (none: nothing), and its changelog records — a snapshot (what changed since the last one,
   * from the state's marks) when `snapshot` is set or one is due, else only the meta record with
   * what a restore must replay on top of the last snapshot.
   */
  async function commitPartition(partition: number, outputs: TopicMessages[], snapshot = false): Promise<void> {
    const ps = stateOf(partition);
    const t = trackers.get(partition);
    const input = uncommitted.get(partition);
    const offset = input?.offset;
    const offsets = offset === undefined ? [] : [{ topic: TOPICS.beacons, partition, offset }];
    if (t === undefined) {
      await sendKeeping(partition, outputs, offsets);
      if (uncommitted.get(partition) === input) uncommitted.delete(partition);
      return;
    }
    const nextOffset = offset ?? nextInput.get(partition) ?? null;
    const maxTsMs = tracker.partitions.get(partition)?.maxTsMs ?? null;
    const snap = snapshots.get(partition);
    const moves = advances.get(partition) ?? [];
    const taken = moves.length;
    let diff: ChangelogDiff | null = null;
    if (!snapshot && nextOffset !== null && snap?.offset != null && Date.now() - snap.atMs < snapshotIntervalMs
      && taken <= MAX_REPLAY_ADVANCES && nextOffset - snap.offset <= MAX_REPLAY_OFFSETS) {
      diff = replayMeta(t, { maxTsMs, nextOffset, replay: { from: snap.offset, advances: moves } });
    }
    const snapshotted = diff === null;
    diff ??= diffPartition(ps, t, { maxTsMs, nextOffset });
    const batches = [...outputs, { topic: TOPICS.processorState, messages: diff.messages }].filter((b) => b.messages.length > 0);
    if (batches.length === 0 && offsets.length === 0) return;
    const t0 = performance.now();
    try {
      await step(`transaction of partition ${partition}`, () => producerOf(partition).sendWithOffsets(batches, group, offsets));
    } catch (err) {
      restart(err);
      return;
    }
    if (deps.onCommit !== undefined) {
      let changelogBytes = 0;
      for (const m of diff.messages) changelogBytes += m.value.length;
      deps.onCommit({ seconds: (performance.now() - t0) / 1000, windowRows: countOf(batches, TOPICS.metrics), changelogRecords: diff.messages.length, changelogBytes });
    }
    diff.commit();
    if (snapshotted) {
      snapshots.set(partition, { offset: nextOffset, atMs: Date.now() });
      moves.splice(0, taken);
    }
    if (offset !== undefined) nextInput.set(partition, offset);
    if (uncommitted.get(partition) === input) uncommitted.delete(partition);
  }

  async function onBatch(batch: ConsumerBatch): Promise<void> {
    if (broken) return;
    const p = batch.partition;
    const t = trackers.get(p);
    if (useChangelog && t === undefined) {
      // onAssign did not restore this partition (it failed): processing it from empty state would count twice.
      restart(new Error(`partition ${p} has no restored state`));
      return;
    }
    const ps = stateOf(p);
    const first = batch.records[0];
    const snap = snapshots.get(p);
    if (t !== undefined && first !== undefined && snap?.offset === null && position(p) === null) {
      // No input processed by any owner: the state before this record (empty, or the changelog's
      // snapshot and the moves logged since) is where replay starts.
      if (t.base === undefined) {
        snapshotFromEmpty(t, ps);
        advances.set(p, []);
      }
      snapshots.set(p, { offset: first.offset, atMs: Date.now() });
    }
    const dead: BusMessage[] = [];
    const now0 = now();
    const covered = nextInput.get(p) ?? -1;
    let skipped = 0;
    // Outcomes are counted here and reported once per batch (a labelled counter per event hashed its labels each time).
    const outcomes = new Map<Outcome, number>();
    const count = (o: Outcome): void => void outcomes.set(o, (outcomes.get(o) ?? 0) + 1);
    for (let i = 0; i < batch.records.length; i++) {
      // A transaction spans a whole fetch (tens of thousands of records): let timers, heartbeats
      // and requests in between (tasks on the state wait in the chain all the same).
      if (i > 0 && i % YIELD_EVERY === 0) await new Promise<void>((resolve) => setImmediate(resolve));
      const r = batch.records[i] as BusRecord;
      if (r.offset < covered) {
        skipped += 1;
        continue;
      }
      let reason: string | null = null;
      let payload: unknown = null;
      try {
        // Read into one event overwritten per record: applyEvent keeps nothing of it, and a
        // dead-lettered one is written out below before the next record is read.
        const e = r.readValue === undefined ? decodeSessionEvent(r.value, scratch) : r.readValue(readInPlace);
        const res = applyEvent(ps, settings, e, r.offset);
        observeEventTime(tracker, p, Math.min(e.tsMs, e.receivedAtMs + settings.maxClockAheadMs), now0);
        if (res.kind === 'dead_letter') {
          reason = res.reason;
          payload = e;
        }
        count(res.kind === 'dead_letter' ? res.reason : res.kind);
      } catch (err) {
        reason = 'undecodable';
        payload = r.value.toString('base64');
        count('undecodable');
        log.warn({ err, partition: r.partition, offset: r.offset }, 'undecodable beacon record');
      }
      if (reason !== null) {
        const value = Buffer.from(JSON.stringify({ reason, partition: r.partition, offset: r.offset, deadAtMs: now0, event: payload }));
        dead.push({ key: r.key, value });
      }
    }
    for (const [o, n] of outcomes) deps.onOutcome?.(o, n);
    if (skipped > 0) log.info({ partition: p, skipped, from: batch.records[0]?.offset, covered }, 'skipped input records the restored state already holds');
    const last = batch.records[batch.records.length - 1];
    if (last !== undefined) {
      markCaughtUp(tracker, p, (batch.nextOffset ?? last.offset + 1) >= batch.highWatermark);
      uncommitted.set(p, { offset: last.offset + 1, sinceMs: uncommitted.get(p)?.sinceMs ?? Date.now() });
    }
    // With the changelog a transaction holds one partition's outputs only; the others fire in the
    // tick below, and so does this partition's input when nothing here needs a transaction now.
    const metrics = useChangelog ? windowMessages(p, ps, currentWatermark(tracker, settings, now())) : closeWindows();
    if (!useChangelog || metrics.length > 0 || dead.length > 0 || due(p, Date.now())) {
      await commitPartition(p, [{ topic: TOPICS.metrics, messages: metrics }, { topic: TOPICS.beaconsDlq, messages: dead }]);
    }
    // The watermark this batch moved may fire windows on the other partitions too: now, side by
    // side, rather than at the next tick one after another (freshness).
    if (useChangelog) await tick();
  }

  /** Fires what the watermark closed; commits the partitions that fired, moved, or whose input is due (all of it: `flush`). */
  async function tick(flush = false): Promise<void> {
    if (broken) return;
    if (!useChangelog) {
      await sendKeeping(0, [{ topic: TOPICS.metrics, messages: closeWindows() }], []);
      return;
    }
    const wm = currentWatermark(tracker, settings, now());
    const t = Date.now();
    // Every partition has its own transactional producer: their transactions run side by side, so
    // a window fires on all partitions at about the same time (freshness), not one round trip apart.
    const commits: Array<Promise<void>> = [];
    for (const [partition, ps] of states) {
      const before = markOf(ps);
      const metrics = windowMessages(partition, ps, wm);
      const input = flush ? uncommitted.has(partition) || sinceSnapshot(partition) : due(partition, t) || snapshotDue(partition, t);
      if (metrics.length === 0 && !movedSince(before, ps) && !input) continue;
      // Flushing (stop) leaves a snapshot: the next owner reads no input again.
      commits.push(commitPartition(partition, [{ topic: TOPICS.metrics, messages: metrics }], flush));
    }
    await Promise.all(commits);
  }

  /** Restores a partition from its changelog: barrier first (fences the previous owner), then read up to it. */
  async function restore(partition: number): Promise<void> {
    const read = bus.readPartition?.bind(bus);
    if (read === undefined) throw new Error('the bus cannot read a partition: no changelog restore');
    const nonce = randomUUID();
    const barrier = { key: BARRIER_KEY, value: Buffer.from(nonce), partition };
    await step(`barrier of partition ${partition}`, () => producerOf(partition).sendWithOffsets([{ topic: TOPICS.processorState, messages: [barrier] }], group, []));
    const t0 = Date.now();
    const records = await step(`reading the changelog of partition ${partition}`,
      () => read(TOPICS.processorState, partition, 0, (r) => r.key === BARRIER_KEY && r.value.toString('utf8') === nonce));
    let restored: ReturnType<typeof restorePartition>;
    try {
      restored = restorePartition(partition, records);
    } catch (err) {
      // E.g. a state record of a schema this version does not know (written by a newer processor).
      log.error({ err, partition, records: records.length }, 'could not restore processor state from the changelog');
      throw err;
    }
    // The input (and window moves) logged since the snapshot, applied again: the state then covers nextOffset.
    const { replay, nextOffset } = restored;
    let replayed = 0;
    if (replay !== null && nextOffset !== null) {
      const input = nextOffset > replay.from
        ? await step(`reading the input of partition ${partition} to replay`, () => read(TOPICS.beacons, partition, replay.from, (r) => r.offset >= nextOffset - 1))
        : [];
      const event = blankSessionEvent();
      const decode = (r: BusRecord): SessionEvent | null => {
        try {
          return decodeSessionEvent(r.value, event);
        } catch {
          return null;
        }
      };
      try {
        replayed = replayInput(restored.state, settings, replay, nextOffset, input, decode);
      } catch (err) {
        log.error({ err, partition, from: replay.from, nextOffset }, 'could not replay the input logged since the last snapshot');
        throw err;
      }
    }
    states.set(partition, restored.state);
    trackers.set(partition, restored.tracker);
    if (nextOffset === null) nextInput.delete(partition);
    else nextInput.set(partition, nextOffset);
    // What the changelog's records hold; after a replay the next chance takes a snapshot (a restore
    // after the next crash reads no more input than this one did).
    snapshots.set(partition, { offset: replay?.from ?? nextOffset, atMs: replayed > 0 || (replay?.advances.length ?? 0) > 0 ? -Infinity : Date.now() });
    advances.set(partition, replay?.advances.slice() ?? []);
    // Held back by this partition until it has data (or goes idle): a partition read late must not
    // find its windows closed. Lagging until onAssign has read the input lag, and until its first
    // batch if that read fails: taken for caught up, a partition waiting for its first batch went
    // idle after idlePartitionMs and let the watermark run past the backlog about to be read, to the
    // wall clock if every partition was quiet (all of it late).
    trackPartition(tracker, partition, restored.maxTsMs ?? -Infinity, now(), true);
    log.info({ partition, records: records.length, replayed, sessions: restored.state.sessions.size, ms: Date.now() - t0 }, 'restored processor state from the changelog');
    deps.onRestore?.({ partition, seconds: (Date.now() - t0) / 1000, records: records.length, replayed });
  }

  async function onAssign(partitions: TopicPartition[]): Promise<void> {
    if (useChangelog) {
      await Promise.all(partitions.map((p) => restore(p.partition)));
      // Partitions with a backlog hold the watermark back until read up to their end (watermark.ts);
      // those without one may go idle as soon as they are quiet.
      const lags = await consumer.lag().catch((err: unknown) => {
        log.warn({ err }, 'could not read the input lag; partitions count as backlogged until their first batch (quiet ones hold windows back for up to laggingIdleMs)');
        return [];
      });
      for (const l of lags) if (l.topic === TOPICS.beacons && states.has(l.partition)) markCaughtUp(tracker, l.partition, l.lag === 0);
      return;
    }
    for (const { partition } of partitions) {
      const snap = await deps.checkpoints?.load(partition);
      if (!snap) continue;
      states.set(partition, deserializePartition(snap.state));
      if (snap.maxTsMs !== null) trackPartition(tracker, partition, snap.maxTsMs, now());
      await deps.checkpoints?.remove(partition);
      log.info({ partition, sessions: states.get(partition)?.sessions.size }, 'restored processor checkpoint');
    }
  }

  async function dropPartition(partition: number): Promise<void> {
    states.delete(partition);
    trackers.delete(partition);
    nextInput.delete(partition);
    uncommitted.delete(partition);
    snapshots.delete(partition);
    advances.delete(partition);
    forgetPartition(tracker, partition);
    const p = producers.get(partition);
    producers.delete(partition);
    await p?.close().catch((err: unknown) => log.warn({ err, partition }, 'closing a partition producer failed'));
  }

  async function onRevoke(partitions: TopicPartition[]): Promise<void> {
    // Input processed since the last transaction: committed now, or the next owner processes it
    // again; with a snapshot, so that the next owner reads no input again to restore the state.
    if (useChangelog && !broken) {
      await Promise.all(partitions.filter((p) => (uncommitted.has(p.partition) || sinceSnapshot(p.partition)) && states.has(p.partition))
        .map((p) => commitPartition(p.partition, [], true)));
    }
    for (const { partition } of partitions) {
      const ps = states.get(partition);
      // The changelog already holds everything committed; a broken state must not be checkpointed.
      if (ps && deps.checkpoints && !useChangelog && !broken) {
        const maxTsMs = tracker.partitions.get(partition)?.maxTsMs ?? null;
        await deps.checkpoints.save({ version: 1, partition, maxTsMs, state: serializePartition(ps) });
      }
      await dropPartition(partition);
    }
  }

  const handlers: ConsumerHandlers = {
    eachBatch: (b) => serial('batch', b.partition, () => onBatch(b)),
    onAssign: (p) => serial('assign', undefined, () => onAssign(p)),
    onRevoke: (p) => serial('revoke', undefined, () => onRevoke(p)),
  };

  /** After a failed transaction: drop all state, rejoin, restore every partition from the changelog. */
  function restart(err: unknown): void {
    if (broken) return;
    broken = true;
    log.error({ err }, 'processor transaction failed; restoring state from the changelog');
    restarting = (async function rejoin() {
      for (let attempt = 0; !stopping; attempt++) {
        try {
          await consumer.close().catch((closeErr: unknown) => log.warn({ err: closeErr }, 'closing the consumer failed'));
          await serial('restart', undefined, async () => {
            for (const partition of [...new Set([...states.keys(), ...producers.keys()])]) await dropPartition(partition);
            // The watermark came from records about to be read again: start from what the changelog says.
            tracker.currentMs = -Infinity;
          });
          broken = false;
          consumer = newConsumer();
          await consumer.run(handlers);
          return;
        } catch (runErr) {
          broken = true;
          log.error({ err: runErr, attempt }, 'processor restart failed');
          await new Promise((r) => setTimeout(r, Math.min(10_000, 500 * 2 ** Math.min(attempt, 5))));
        }
      }
    })();
  }

  async function lag(): Promise<number> {
    return (await consumer.lag()).reduce((n, p) => n + p.lag, 0);
  }

  return {
    lag,
    async start() {
      await consumer.run(handlers);
      timer = setInterval(() => {
        watchStall();
        if (tickQueued) return;
        tickQueued = true;
        void serial('tick', undefined, async () => {
          tickQueued = false;
          await tick();
        }).catch((err: unknown) => log.error({ err }, 'watermark tick failed'));
      }, deps.tickMs ?? 250);
      timer.unref();
    },
    async stop() {
      stopping = true;
      if (timer) clearInterval(timer);
      await restarting;
      await chain;
      // Input processed since the last transactions: committed before the consumer leaves (drain).
      await serial('final commit', undefined, () => tick(true)).catch((err: unknown) => log.error({ err }, 'final commit failed'));
      await consumer.close();
      await shared?.close();
      for (const partition of [...producers.keys()]) await dropPartition(partition);
    },
    watermarkMs: () => tracker.currentMs,
    partitions: () => states,
  };
}
