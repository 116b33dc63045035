import type { Logger } from '../lib/logger.js';
import type { Bus, BusMessage, ConsumerBatch, TopicPartition } from '../lib/bus/types.js';
import { CONSUMER_GROUPS, TOPICS } from '../lib/bus/topics.js';
import { decodeSessionEvent } from '../schemas/codec.js';
import { advance, applyEvent, emptyPartitionState, type PartitionState, type ProcessorSettings } from './partition.js';
import { encodeMetricsRecord, toMetricsRecord } from './metrics-record.js';
import { deserializePartition, serializePartition, type CheckpointStore } from './snapshot.js';
import {
  createWatermarkTracker, currentWatermark, forgetPartition, observeEventTime, trackPartition, type WatermarkSettings,
} from './watermark.js';

/**
 * The sessions + windows processor: consume qoe.beacons.v1 → per-partition session state and
 * window accumulators → qoe.metrics.v1 (closed windows and corrections) and qoe.beacons.v1.dlq.
 * Outputs and input offsets are handed to the bus together (sendWithOffsets), so they commit as one.
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
  onOutcome?: (outcome: 'ok' | 'late' | 'after_end' | 'duplicate' | 'undecodable', n: number) => void;
}

export interface Processor {
  start(): Promise<void>;
  stop(): Promise<void>;
  watermarkMs(): number;
  partitions(): Map<number, PartitionState>;
  /** Records on its input topics not yet committed. */
  lag(): Promise<number>;
}

export function createProcessor(deps: ProcessorDeps): Processor {
  const { bus, settings, log, now } = deps;
  const states = new Map<number, PartitionState>();
  const tracker = createWatermarkTracker();
  const consumer = bus.consumer({ groupId: CONSUMER_GROUPS.processor, topics: [TOPICS.beacons], autoCommit: false, maxBatchSize: 2000 });
  const producer = bus.producer({ transactionalId: `qoe-processor-${deps.instanceId ?? 'embedded'}` });
  let timer: NodeJS.Timeout | undefined;
  // Batches and ticks touch the same state: run them one at a time.
  let chain: Promise<void> = Promise.resolve();
  const serial = (fn: () => Promise<void>): Promise<void> => {
    const next = chain.then(fn);
    chain = next.catch(() => undefined);
    return next;
  };

  function stateOf(partition: number): PartitionState {
    let ps = states.get(partition);
    if (!ps) {
      ps = emptyPartitionState();
      states.set(partition, ps);
    }
    return ps;
  }

  function closeWindows(): BusMessage[] {
    const wm = currentWatermark(tracker, settings, now());
    const out: BusMessage[] = [];
    for (const [partition, ps] of states) {
      for (const o of advance(ps, settings, wm)) {
        const value = encodeMetricsRecord(toMetricsRecord(o, settings.windowMs, partition));
        out.push({ key: `${o.windowStartMs}:${partition}`, value });
      }
    }
    return out;
  }

  async function onBatch(batch: ConsumerBatch): Promise<void> {
    const ps = stateOf(batch.partition);
    const dead: BusMessage[] = [];
    const t = now();
    for (const r of batch.records) {
      let reason: string | null = null;
      let payload: unknown = null;
      try {
        const e = decodeSessionEvent(r.value);
        const res = applyEvent(ps, settings, e);
        observeEventTime(tracker, batch.partition, Math.min(e.tsMs, e.receivedAtMs + settings.maxClockAheadMs), t);
        if (res.kind === 'dead_letter') {
          reason = res.reason;
          payload = e;
        }
        deps.onOutcome?.(res.kind === 'dead_letter' ? res.reason : res.kind, 1);
      } catch (err) {
        reason = 'undecodable';
        payload = r.value.toString('base64');
        deps.onOutcome?.('undecodable', 1);
        log.warn({ err, partition: r.partition, offset: r.offset }, 'undecodable beacon record');
      }
      if (reason !== null) {
        const value = Buffer.from(JSON.stringify({ reason, partition: r.partition, offset: r.offset, deadAtMs: t, event: payload }));
        dead.push({ key: r.key, value });
      }
    }
    const last = batch.records[batch.records.length - 1];
    const metrics = closeWindows();
    await producer.sendWithOffsets(
      [{ topic: TOPICS.metrics, messages: metrics }, { topic: TOPICS.beaconsDlq, messages: dead }].filter((b) => b.messages.length > 0),
      CONSUMER_GROUPS.processor,
      last ? [{ topic: batch.topic, partition: batch.partition, offset: last.offset + 1 }] : [],
    );
  }

  async function onAssign(partitions: TopicPartition[]): Promise<void> {
    for (const { partition } of partitions) {
      const snap = await deps.checkpoints?.load(partition);
      if (!snap) continue;
      states.set(partition, deserializePartition(snap.state));
      if (snap.maxTsMs !== null) trackPartition(tracker, partition, snap.maxTsMs, now());
      await deps.checkpoints?.remove(partition);
      log.info({ partition, sessions: states.get(partition)?.sessions.size }, 'restored processor checkpoint');
    }
  }

  async function onRevoke(partitions: TopicPartition[]): Promise<void> {
    for (const { partition } of partitions) {
      const ps = states.get(partition);
      if (!ps) continue;
      if (deps.checkpoints) {
        const maxTsMs = tracker.partitions.get(partition)?.maxTsMs ?? null;
        await deps.checkpoints.save({ version: 1, partition, maxTsMs, state: serializePartition(ps) });
      }
      states.delete(partition);
      forgetPartition(tracker, partition);
    }
  }

  async function lag(): Promise<number> {
    return (await consumer.lag()).reduce((n, p) => n + p.lag, 0);
  }

  return {
    lag,
    async start() {
      await consumer.run({
        eachBatch: (b) => serial(() => onBatch(b)),
        onAssign: (p) => serial(() => onAssign(p)),
        onRevoke: (p) => serial(() => onRevoke(p)),
      });
      timer = setInterval(() => {
        void serial(async () => {
          const metrics = closeWindows();
          if (metrics.length > 0) await producer.send(TOPICS.metrics, metrics);
        }).catch((err: unknown) => log.error({ err }, 'watermark tick failed'));
      }, deps.tickMs ?? 250);
      timer.unref();
    },
    async stop() {
      if (timer) clearInterval(timer);
      await chain;
      await consumer.close();
      await producer.close();
    },
    watermarkMs: () => tracker.currentMs,
    partitions: () => states,
  };
}
