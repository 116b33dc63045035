import { QoeError } from '../errors.js';
import { appendToLog, createPartitionLog, readLog, releaseBelow, type PartitionLog } from './memory-log.js';
import { partitionForKey } from './partitioner.js';
import type { BusMessage, BusRecord, OffsetCommit, TopicMessages, TopicPartition, TopicSpec } from './types.js';

/**
 * The broker side of the memory bus: topics, partition logs, committed offsets per group, the backlog
 * bound and release of fully committed records. Synchronous, so every operation is atomic with respect
 * to everything else on the event loop.
 */

/** What the broker and the group coordinator need from a running consumer (a group member). */
export interface GroupMember {
  readonly memberId: string;
  readonly topics: readonly string[];
  owns(topic: string, partition: number): boolean;
  ownedPartitions(): TopicPartition[];
  /** Stop fetching `partitions`, wait for the in-flight batch, call onRevoke, drop them. */
  revoke(partitions: TopicPartition[]): Promise<void>;
  /** Take `partitions` from the group's committed offsets, call onAssign, start fetching them. */
  assign(partitions: TopicPartition[]): Promise<void>;
}

export interface GroupState {
  readonly groupId: string;
  /** topic → next offset to read, per partition (undefined: never committed). */
  readonly committed: Map<string, Array<number | undefined>>;
  /** Live members in join order (member ids sort the same way). */
  members: GroupMember[];
  /** Tail of the group's serialized rebalances. */
  rebalancing: Promise<void>;
}

export interface TopicState {
  readonly name: string;
  readonly partitions: PartitionLog[];
  /** Called after records are appended to any partition of the topic. */
  readonly listeners: Set<() => void>;
}

export interface OffsetReset {
  topic: string;
  partition: number;
  from: number | undefined;
  to: number;
}

export interface Broker {
  readonly maxBacklog: number;
  readonly now: () => number;
  readonly groups: Map<string, GroupState>;
  createTopic(spec: TopicSpec): void;
  topicNames(): string[];
  /** The topic, or a QoeError if it was never created. */
  topic(name: string): TopicState;
  group(groupId: string): GroupState;
  /** Append all `batches` and apply `commit`, or throw and change nothing. */
  append(batches: TopicMessages[], commit?: { groupId: string; offsets: OffsetCommit[] }): void;
  commit(groupId: string, offsets: OffsetCommit[]): void;
  committed(groupId: string, topic: string, partition: number): number | undefined;
  /** Records of the partition not yet committed by every live subscribing group (all retained if none). */
  backlog(topic: string, partition: number): number;
  /** Give a joining group a valid start for every partition of `topic`; returns the resets made. */
  initGroupOffsets(groupId: string, topic: string, fromBeginning: boolean): OffsetReset[];
  /** Release what every live subscribing group of `topic` has committed. */
  release(topic: string): void;
  read(topic: string, partition: number, fromOffset: number, max: number): BusRecord[];
  log(topic: string, partition: number): PartitionLog;
}

export function createBroker(opts: { maxBacklog: number; now: () => number; logStartOffsets?: Readonly<Record<string, readonly number[]>> }): Broker {
  const topics = new Map<string, TopicState>();
  const groups = new Map<string, GroupState>();

  function topic(name: string): TopicState {
    const state = topics.get(name);
    if (state === undefined) {
      throw new QoeError('QOE_ERR_INTERNAL', `unknown topic ${name}`, { details: { topic: name } });
    }
    return state;
  }

  function log(name: string, partition: number): PartitionLog {
    const partitionLog = topic(name).partitions[partition];
    if (partitionLog === undefined) {
      throw new QoeError('QOE_ERR_INTERNAL', `unknown partition ${name}/${partition}`, {
        details: { topic: name, partition },
      });
    }
    return partitionLog;
  }

  function group(groupId: string): GroupState {
    let state = groups.get(groupId);
    if (state === undefined) {
      state = { groupId, committed: new Map(), members: [], rebalancing: Promise.resolve() };
      groups.set(groupId, state);
    }
    return state;
  }

  function committed(groupId: string, name: string, partition: number): number | undefined {
    return groups.get(groupId)?.committed.get(name)?.[partition];
  }

  function liveGroups(name: string): GroupState[] {
    return [...groups.values()].filter((g) => g.members.some((m) => m.topics.includes(name)));
  }

  /** The lowest offset some live subscribing group still needs; undefined when no group subscribes. */
  function retentionFloor(name: string, partition: number): number | undefined {
    const live = liveGroups(name);
    if (live.length === 0) return undefined;
    const start = log(name, partition).logStartOffset;
    return Math.max(start, Math.min(...live.map((g) => g.committed.get(name)?.[partition] ?? start)));
  }

  function backlog(name: string, partition: number): number {
    const partitionLog = log(name, partition);
    return partitionLog.highWatermark - (retentionFloor(name, partition) ?? partitionLog.logStartOffset);
  }

  function release(name: string): void {
    const state = topic(name);
    state.partitions.forEach((partitionLog, partition) => {
      const floor = retentionFloor(name, partition);
      if (floor !== undefined) releaseBelow(partitionLog, floor);
    });
  }

  function validateOffsets(offsets: OffsetCommit[]): void {
    for (const { topic: name, partition, offset } of offsets) {
      const partitionLog = log(name, partition);
      if (!Number.isInteger(offset) || offset < partitionLog.logStartOffset || offset > partitionLog.highWatermark) {
        throw new QoeError('QOE_ERR_INTERNAL', `offset ${offset} out of range for ${name}/${partition}`, {
          details: { topic: name, partition, offset, ...rangeOf(partitionLog) },
        });
      }
    }
  }

  function setCommitted(groupId: string, offsets: OffsetCommit[]): void {
    const state = group(groupId);
    for (const { topic: name, partition, offset } of offsets) {
      let perPartition = state.committed.get(name);
      if (perPartition === undefined) {
        perPartition = new Array<number | undefined>(topic(name).partitions.length).fill(undefined);
        state.committed.set(name, perPartition);
      }
      perPartition[partition] = offset;
    }
    for (const name of new Set(offsets.map((o) => o.topic))) release(name);
  }

  function commit(groupId: string, offsets: OffsetCommit[]): void {
    validateOffsets(offsets);
    setCommitted(groupId, offsets);
  }

  function append(batches: TopicMessages[], txCommit?: { groupId: string; offsets: OffsetCommit[] }): void {
    const routed = routeMessages(batches, topic);
    if (txCommit !== undefined) validateOffsets(txCommit.offsets);
    for (const [state, byPartition] of routed) {
      for (const [partition, messages] of byPartition) {
        const current = backlog(state.name, partition);
        if (current + messages.length > opts.maxBacklog) {
          throw new QoeError('QOE_ERR_BUS_FULL', undefined, {
            details: { topic: state.name, partition, backlog: current, requested: messages.length, maxBacklog: opts.maxBacklog },
          });
        }
      }
    }
    for (const [state, byPartition] of routed) {
      for (const [partition, messages] of byPartition) {
        const partitionLog = log(state.name, partition);
        for (const m of messages) {
          appendToLog(partitionLog, { topic: state.name, partition, key: m.key, value: m.value, timestampMs: m.timestampMs ?? opts.now() });
        }
      }
    }
    if (txCommit !== undefined) setCommitted(txCommit.groupId, txCommit.offsets);
    for (const state of routed.keys()) for (const listener of [...state.listeners]) listener();
  }

  function initGroupOffsets(groupId: string, name: string, fromBeginning: boolean): OffsetReset[] {
    const resets: OffsetReset[] = [];
    topic(name).partitions.forEach((partitionLog, partition) => {
      const current = committed(groupId, name, partition);
      if (current !== undefined && current >= partitionLog.logStartOffset) return;
      const to = fromBeginning ? partitionLog.logStartOffset : partitionLog.highWatermark;
      resets.push({ topic: name, partition, from: current, to });
    });
    if (resets.length > 0) setCommitted(groupId, resets.map((r) => ({ topic: r.topic, partition: r.partition, offset: r.to })));
    return resets;
  }

  function createTopic(spec: TopicSpec): void {
    if (!Number.isInteger(spec.partitions) || spec.partitions < 1) {
      throw new QoeError('QOE_ERR_CONFIG_INVALID', `topic ${spec.topic}: partitions must be a positive integer`);
    }
    const existing = topics.get(spec.topic);
    if (existing !== undefined) {
      if (existing.partitions.length === spec.partitions) return;
      throw new QoeError('QOE_ERR_CONFIG_INVALID', `topic ${spec.topic} exists with ${existing.partitions.length} partitions`, {
        details: { topic: spec.topic, partitions: existing.partitions.length, requested: spec.partitions },
      });
    }
    const partitions = Array.from({ length: spec.partitions }, (_, p) => {
      const log = createPartitionLog();
      // A restarted embedded runtime continues its offsets: rows stored downstream keep their identity.
      const start = opts.logStartOffsets?.[spec.topic]?.[p] ?? 0;
      log.logStartOffset = start;
      log.highWatermark = start;
      return log;
    });
    topics.set(spec.topic, { name: spec.topic, partitions, listeners: new Set() });
  }

  return {
    maxBacklog: opts.maxBacklog,
    now: opts.now,
    groups,
    createTopic,
    topicNames: () => [...topics.keys()],
    topic,
    group,
    append,
    commit,
    committed,
    backlog,
    initGroupOffsets,
    release,
    read: (name, partition, fromOffset, max) => readLog(log(name, partition), fromOffset, max),
    log,
  };
}

function rangeOf(partitionLog: PartitionLog): { logStartOffset: number; highWatermark: number } {
  return { logStartOffset: partitionLog.logStartOffset, highWatermark: partitionLog.highWatermark };
}

/** Group messages by topic and murmur2 partition, keeping send order within each partition. */
function routeMessages(
  batches: TopicMessages[],
  topic: (name: string) => TopicState,
): Map<TopicState, Map<number, BusMessage[]>> {
  const routed = new Map<TopicState, Map<number, BusMessage[]>>();
  for (const batch of batches) {
    const state = topic(batch.topic);
    let byPartition = routed.get(state);
    if (byPartition === undefined) {
      byPartition = new Map();
      routed.set(state, byPartition);
    }
    for (const message of batch.messages) {
      const partition = message.partition ?? partitionForKey(message.key, state.partitions.length);
      if (!Number.isInteger(partition) || partition < 0 || partition >= state.partitions.length) {
        throw new QoeError('QOE_ERR_INTERNAL', `unknown partition ${state.name}/${partition}`, { details: { topic: state.name, partition } });
      }
      const list = byPartition.get(partition);
      if (list === undefined) byPartition.set(partition, [message]);
      else list.push(message);
    }
  }
  return routed;
}
