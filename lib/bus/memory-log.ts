import type { BusRecord } from './types.js';

/**
 * One partition's retained records: offsets [logStartOffset, highWatermark), dense. Released records
 * (committed by every subscribing group) advance logStartOffset, like Kafka's retention moving the log
 * start; offsets never restart.
 */
export interface PartitionLog {
  logStartOffset: number;
  highWatermark: number;
  /** records[head + (offset − logStartOffset)] is the record at `offset`. */
  records: BusRecord[];
  head: number;
}

export function createPartitionLog(): PartitionLog {
  return { logStartOffset: 0, highWatermark: 0, records: [], head: 0 };
}

export function retainedCount(log: PartitionLog): number {
  return log.highWatermark - log.logStartOffset;
}

export function appendToLog(log: PartitionLog, record: Omit<BusRecord, 'offset'>): BusRecord {
  const full: BusRecord = { ...record, offset: log.highWatermark };
  log.records.push(full);
  log.highWatermark += 1;
  return full;
}

/** Up to `max` consecutive records from `fromOffset` (clamped to the log start). */
export function readLog(log: PartitionLog, fromOffset: number, max: number): BusRecord[] {
  const from = Math.max(fromOffset, log.logStartOffset);
  const start = log.head + (from - log.logStartOffset);
  const end = Math.min(start + max, log.head + retainedCount(log));
  return start < end ? log.records.slice(start, end) : [];
}

/** Drop every record below `offset`; returns how many were released. */
export function releaseBelow(log: PartitionLog, offset: number): number {
  const upTo = Math.min(offset, log.highWatermark);
  const count = upTo - log.logStartOffset;
  if (count <= 0) return 0;
  log.head += count;
  log.logStartOffset = upTo;
  // Compact once released slots are at least half the array: each copy moves no more records than were
  // released since the last one (amortised O(1)), and released records stay referenced at most that long.
  if (log.head * 2 >= log.records.length) {
    log.records = log.records.slice(log.head);
    log.head = 0;
  }
  return count;
}
