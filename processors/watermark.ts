/**
 * Event-time watermark across input partitions (ARCHITECTURE.md "Watermarks"): per partition,
 * max event time − maxOutOfOrderMs; overall, the minimum across partitions that received a record
 * within idlePartitionMs (processing time), so a quiet partition does not stall output. When every
 * partition is idle, no event is in flight: event time follows the wall clock (now − maxOutOfOrderMs).
 * Monotonic: it never moves back.
 *
 * A partition known to have a backlog (lag at assignment — a partition just assigned counts as
 * lagging until that lag is read, or until its first batch if the read fails — or its last batch
 * ended before the partition's high watermark)
 * is not idle however long it waits: when a processor catches up on a
 * backlog, kafkajs delivers one partition's batch after another, and a partition waiting its turn for
 * longer than idlePartitionMs must not let the watermark run past the events it is about to deliver
 * (they would all be late). Safety valve: a lagging partition silent for laggingIdleMs (the larger of
 * `LAGGING_IDLE_FACTOR` × idlePartitionMs and `LAGGING_IDLE_MIN_MS`) is idle anyway (e.g. a backlog
 * of aborted transactional records never delivered).
 *
 * Because a caught-up partition cannot be hiding records, it can be idle soon (default 1 s; Kafka
 * Streams does not wait for a caught-up partition at all, KIP-695): with light traffic a partition
 * that received one event must not hold every window back for long.
 */
export const LAGGING_IDLE_FACTOR = 10;
export const LAGGING_IDLE_MIN_MS = 50_000;

/** How long a partition with records still to read may stay silent before it is idle anyway. */
export function laggingIdleMs(s: WatermarkSettings): number {
  return Math.max(LAGGING_IDLE_FACTOR * s.idlePartitionMs, LAGGING_IDLE_MIN_MS);
}

export interface WatermarkSettings {
  maxOutOfOrderMs: number;
  idlePartitionMs: number;
}

interface PartitionMark {
  maxTsMs: number;
  lastRecordAtMs: number;
  /** Records known to be waiting for this partition. */
  lagging: boolean;
}

export interface WatermarkTracker {
  partitions: Map<number, PartitionMark>;
  currentMs: number;
}

export function createWatermarkTracker(): WatermarkTracker {
  return { partitions: new Map(), currentMs: -Infinity };
}

export function observeEventTime(t: WatermarkTracker, partition: number, tsMs: number, nowMs: number): void {
  const p = t.partitions.get(partition);
  if (p) {
    if (tsMs > p.maxTsMs) p.maxTsMs = tsMs;
    p.lastRecordAtMs = nowMs;
  } else {
    t.partitions.set(partition, { maxTsMs: tsMs, lastRecordAtMs: nowMs, lagging: false });
  }
}

/** After a batch: whether the partition is read up to its high watermark. */
export function markCaughtUp(t: WatermarkTracker, partition: number, caughtUp: boolean): void {
  const p = t.partitions.get(partition);
  if (p) p.lagging = !caughtUp;
}

/** A partition just assigned (or restored) counts as active from now. */
export function trackPartition(t: WatermarkTracker, partition: number, maxTsMs: number, nowMs: number, lagging = false): void {
  t.partitions.set(partition, { maxTsMs, lastRecordAtMs: nowMs, lagging });
}

export function forgetPartition(t: WatermarkTracker, partition: number): void {
  t.partitions.delete(partition);
}

export function currentWatermark(t: WatermarkTracker, s: WatermarkSettings, nowMs: number): number {
  if (t.partitions.size === 0) return t.currentMs;
  let min = Infinity;
  for (const p of t.partitions.values()) {
    const idleAfterMs = p.lagging ? laggingIdleMs(s) : s.idlePartitionMs;
    if (nowMs - p.lastRecordAtMs < idleAfterMs && p.maxTsMs < min) min = p.maxTsMs;
  }
  const candidate = (min === Infinity ? nowMs : min) - s.maxOutOfOrderMs;
  if (candidate > t.currentMs) t.currentMs = candidate;
  return t.currentMs;
}
