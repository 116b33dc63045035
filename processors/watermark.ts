/**
 * Event-time watermark across input partitions (ARCHITECTURE.md "Watermarks"): per partition,
 * max event time − maxOutOfOrderMs; overall, the minimum across partitions that received a record
 * within idlePartitionMs (processing time), so a quiet partition does not stall output. When every
 * partition is idle, no event is in flight: event time follows the wall clock (now − maxOutOfOrderMs).
 * Monotonic: it never moves back.
 */
export interface WatermarkSettings {
  maxOutOfOrderMs: number;
  idlePartitionMs: number;
}

interface PartitionMark {
  maxTsMs: number;
  lastRecordAtMs: number;
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
    t.partitions.set(partition, { maxTsMs: tsMs, lastRecordAtMs: nowMs });
  }
}

/** A partition just assigned (or restored) counts as active from now. */
export function trackPartition(t: WatermarkTracker, partition: number, maxTsMs: number, nowMs: number): void {
  t.partitions.set(partition, { maxTsMs, lastRecordAtMs: nowMs });
}

export function forgetPartition(t: WatermarkTracker, partition: number): void {
  t.partitions.delete(partition);
}

export function currentWatermark(t: WatermarkTracker, s: WatermarkSettings, nowMs: number): number {
  if (t.partitions.size === 0) return t.currentMs;
  let min = Infinity;
  for (const p of t.partitions.values()) {
    if (nowMs - p.lastRecordAtMs < s.idlePartitionMs && p.maxTsMs < min) min = p.maxTsMs;
  }
  const candidate = (min === Infinity ? nowMs : min) - s.maxOutOfOrderMs;
  if (candidate > t.currentMs) t.currentMs = candidate;
  return t.currentMs;
}
