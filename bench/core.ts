/**
 * The processor's per-record work without the bus (what processors/processor.ts does in onBatch and
 * closeWindows): decode Avro → applyEvent → observeEventTime, and after every consumer batch
 * (maxBatchSize 2000 in the processor) advance every partition to the watermark and encode the rows
 * it emits. Processing time is simulated by each record's receivedAtMs, so runs are deterministic.
 */
import { loadConfig, type Config } from '../lib/config.js';
import { createMetricsRecordWriter } from '../processors/metrics-record.js';
import { createTracker, diffPartition, type ChangelogTracker } from '../processors/changelog.js';
import { advance, applyEvent, emptyPartitionState, newDirtyAccs, type PartitionState } from '../processors/partition.js';
import { createWatermarkTracker, currentWatermark, observeEventTime, type WatermarkTracker } from '../processors/watermark.js';
import { decodeSessionEvent } from '../schemas/codec.js';
import { blankSessionEvent } from '../schemas/event-reader.js';
import type { SessionEvent } from '../schemas/events.js';
import type { EncodedRecord } from './events.js';

export const BATCH = 2000;
/** Each record is read into this one event, as the processor does (processors/processor.ts). */
const scratch = blankSessionEvent();
export const settings = loadConfig({}).processor;

export interface CoreState {
  settings: Config['processor'];
  states: Map<number, PartitionState>;
  tracker: WatermarkTracker;
  outputs: number;
  outputBytes: number;
  deadLetters: number;
  /**
   * With `changelog`: each partition's changelog tracker (its state tracks what changed since the
   * last diff); every BATCH the state is diffed and committed as the Kafka processor's transactions do
   * (processors/changelog.ts), so what the tracker holds is in the figures.
   */
  changelog?: Map<number, ChangelogTracker>;
  changelogBytes: number;
}

/** `windowDimensions`: QOE_WINDOW_DIMENSIONS (default all). */
export function createCore(windowDimensions = 'all', opts: { changelog?: boolean } = {}): CoreState {
  const own = windowDimensions === 'all' ? settings : loadConfig({ QOE_WINDOW_DIMENSIONS: windowDimensions }).processor;
  return {
    settings: own, states: new Map(), tracker: createWatermarkTracker(), outputs: 0, outputBytes: 0, deadLetters: 0,
    ...(opts.changelog === true ? { changelog: new Map() } : {}), changelogBytes: 0,
  };
}

function stateOf(core: CoreState, partition: number): PartitionState {
  let ps = core.states.get(partition);
  if (!ps) {
    ps = emptyPartitionState();
    core.states.set(partition, ps);
    if (core.changelog !== undefined) {
      // As restorePartition leaves a state: changes tracked from here on.
      ps.dirtyAccs = newDirtyAccs();
      ps.changed = [];
      core.changelog.set(partition, createTracker(partition));
    }
  }
  return ps;
}

function apply(core: CoreState, partition: number, e: SessionEvent, offset: number): void {
  const res = applyEvent(stateOf(core, partition), core.settings, e, offset);
  observeEventTime(core.tracker, partition, Math.min(e.tsMs, e.receivedAtMs + core.settings.maxClockAheadMs), e.receivedAtMs);
  if (res.kind === 'dead_letter') core.deadLetters += 1;
}

/** closeWindows(): advance every partition to the watermark and Avro-encode the emitted rows. */
export function closeWindows(core: CoreState, nowMs: number): void {
  const wm = currentWatermark(core.tracker, core.settings, nowMs);
  advanceTo(core, wm);
}

/** Each output's record as the processor writes it (processors/processor.ts windowMessages). */
const writeMetricsRecord = createMetricsRecordWriter();

export function advanceTo(core: CoreState, watermarkMs: number): void {
  for (const [partition, ps] of core.states) {
    for (const o of advance(ps, core.settings, watermarkMs)) {
      core.outputs += 1;
      core.outputBytes += writeMetricsRecord(o, core.settings.windowMs, partition).length;
    }
    const tracker = core.changelog?.get(partition);
    if (tracker !== undefined) {
      const diff = diffPartition(ps, tracker, { maxTsMs: null, nextOffset: null });
      for (const m of diff.messages) core.changelogBytes += m.value.length;
      diff.commit();
    }
  }
}

/** Full core: decode + apply + periodic advance. */
export function runEncoded(core: CoreState, records: readonly EncodedRecord[], from = 0, to = records.length): void {
  for (let i = from; i < to; i++) {
    const r = records[i];
    if (r === undefined) continue;
    apply(core, r.partition, decodeSessionEvent(r.value, scratch), i);
    if ((i + 1) % BATCH === 0) closeWindows(core, r.receivedAtMs);
  }
}

/** Same without the Avro decode: events already decoded. */
export function runDecoded(core: CoreState, events: readonly SessionEvent[], partitions: Uint16Array): void {
  for (let i = 0; i < events.length; i++) {
    const e = events[i];
    if (e === undefined) continue;
    apply(core, partitions[i] ?? 0, e, i);
    if ((i + 1) % BATCH === 0) closeWindows(core, e.receivedAtMs);
  }
}

/** Baseline: the loop that only decodes Avro into SessionEvents. Returns a checksum so nothing is optimised away. */
export function decodeOnly(records: readonly EncodedRecord[]): number {
  let sum = 0;
  for (const r of records) sum += decodeSessionEvent(r.value, scratch).seq;
  return sum;
}

export function liveSessions(core: CoreState): number {
  let n = 0;
  for (const ps of core.states.values()) n += ps.sessions.size;
  return n;
}

export function openWindowAccs(core: CoreState): number {
  let n = 0;
  for (const ps of core.states.values()) for (const byDims of ps.open.values()) n += byDims.size;
  return n;
}
