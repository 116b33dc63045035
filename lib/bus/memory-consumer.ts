import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { QoeError } from '../errors.js';
import type { Broker, GroupMember } from './memory-broker.js';
import { joinGroup, leaveGroup } from './memory-group.js';
import type { BusConsumer, ConsumerBatch, ConsumerHandlers, ConsumerOptions, OffsetCommit, TopicPartition } from './types.js';

/** Where a handler (or the bus on a handler's behalf) failed; passed to the bus's `onError`. */
export interface BusErrorContext {
  groupId: string;
  memberId: string;
  phase: 'eachBatch' | 'onAssign' | 'onRevoke' | 'autoCommit' | 'offsetReset';
  topic?: string;
  partition?: number;
}

export interface ConsumerRuntime {
  broker: Broker;
  retryBackoffMs: number;
  maxRetryBackoffMs: number;
  onError(err: unknown, context: BusErrorContext): void;
  isClosed(): boolean;
}

interface OwnedPartition {
  topic: string;
  partition: number;
  /** Next offset to deliver (ahead of the committed offset while autoCommit is off). */
  position: number;
  failures: number;
  backoff: NodeJS.Timeout | undefined;
}

/** A wake-up flag: notify() before wait() is remembered, so no append is missed between check and wait. */
function createSignal(): { notify(): void; wait(): Promise<void> } {
  let pending = false;
  let wake: (() => void) | undefined;
  return {
    notify() {
      if (wake === undefined) pending = true;
      else {
        const resolve = wake;
        wake = undefined;
        resolve();
      }
    },
    wait() {
      if (pending) {
        pending = false;
        return Promise.resolve();
      }
      return new Promise<void>((resolve) => (wake = resolve));
    },
  };
}

const tpKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

/**
 * One group member. A single delivery loop per member hands out one batch at a time, round-robin over
 * its ready partitions (like kafkajs with partitionsConsumedConcurrently = 1), so eachBatch, onAssign and
 * onRevoke of one consumer never overlap. Calling close() from inside eachBatch would wait on itself.
 */
export function createMemoryConsumer(rt: ConsumerRuntime, opts: ConsumerOptions, memberId: string): BusConsumer {
  const { broker } = rt;
  const { groupId } = opts;
  const topics = [...new Set(opts.topics)];
  const fromBeginning = opts.fromBeginning ?? true;
  const autoCommit = opts.autoCommit ?? true;
  const maxBatchSize = opts.maxBatchSize ?? 1000;
  if (topics.length === 0 || !Number.isInteger(maxBatchSize) || maxBatchSize < 1) {
    throw new QoeError('QOE_ERR_CONFIG_INVALID', 'consumer needs at least one topic and a positive integer maxBatchSize');
  }

  const owned: OwnedPartition[] = [];
  const paused = new Set<string>();
  const signal = createSignal();
  const onAppend = (): void => signal.notify();
  let handlers: ConsumerHandlers | undefined;
  let state: 'idle' | 'running' | 'closing' | 'closed' = 'idle';
  let joined = false;
  let suspended = false;
  let cursor = 0;
  let current: Promise<void> | undefined;
  let loopDone: Promise<void> = Promise.resolve();
  let closing: Promise<void> | undefined;

  function report(err: unknown, phase: BusErrorContext['phase'], tp?: TopicPartition): void {
    try {
      rt.onError(err, { groupId, memberId, phase, ...(tp && { topic: tp.topic, partition: tp.partition }) });
    } catch {
      // An error hook that throws must not stop delivery.
    }
  }

  function clearBackoff(p: OwnedPartition): void {
    if (p.backoff !== undefined) clearTimeout(p.backoff);
    p.backoff = undefined;
  }

  function pickNext(): OwnedPartition | undefined {
    if (suspended || state !== 'running') return undefined;
    for (let i = 0; i < owned.length; i++) {
      const index = (cursor + i) % owned.length;
      const p = owned[index];
      if (p === undefined || p.backoff !== undefined || paused.has(tpKey(p.topic, p.partition))) continue;
      const log = broker.log(p.topic, p.partition);
      if (p.position < log.logStartOffset) {
        const lost = log.logStartOffset - p.position;
        report(new QoeError('QOE_ERR_INTERNAL', `position below log start; ${lost} records skipped`), 'offsetReset', p);
        p.position = log.logStartOffset;
      }
      if (p.position >= log.highWatermark) continue;
      cursor = index + 1;
      return p;
    }
    return undefined;
  }

  async function deliver(p: OwnedPartition, active: ConsumerHandlers): Promise<void> {
    const records = broker.read(p.topic, p.partition, p.position, maxBatchSize);
    const last = records[records.length - 1];
    if (last === undefined) return;
    const highWatermark = broker.log(p.topic, p.partition).highWatermark;
    const batch: ConsumerBatch = { topic: p.topic, partition: p.partition, records, highWatermark };
    try {
      await active.eachBatch(batch);
    } catch (err) {
      // Redeliver from the committed offset after a backoff that doubles per consecutive failure.
      p.failures += 1;
      p.position = broker.committed(groupId, p.topic, p.partition) ?? p.position;
      report(err, 'eachBatch', p);
      const delayMs = Math.min(rt.retryBackoffMs * 2 ** (p.failures - 1), rt.maxRetryBackoffMs);
      p.backoff = setTimeout(() => {
        p.backoff = undefined;
        signal.notify();
      }, delayMs);
      return;
    }
    p.failures = 0;
    p.position = last.offset + 1;
    if (!autoCommit) return;
    try {
      broker.commit(groupId, [{ topic: p.topic, partition: p.partition, offset: p.position }]);
    } catch (err) {
      report(err, 'autoCommit', p);
    }
  }

  async function loop(active: ConsumerHandlers): Promise<void> {
    while (state !== 'closed') {
      const next = pickNext();
      if (next === undefined) {
        await signal.wait();
        continue;
      }
      current = deliver(next, active);
      await current;
      current = undefined;
      // Let I/O and timers run between batches.
      await yieldToEventLoop();
    }
  }

  /** Stop handing out batches and wait for the one in flight. */
  async function quiesce(): Promise<void> {
    suspended = true;
    if (current !== undefined) await current;
  }

  function resumeDelivery(): void {
    suspended = false;
    signal.notify();
  }

  const member: GroupMember = {
    memberId,
    topics,
    owns: (topic, partition) => owned.some((p) => p.topic === topic && p.partition === partition),
    ownedPartitions: () => owned.map(({ topic, partition }) => ({ topic, partition })),
    async revoke(partitions) {
      await quiesce();
      try {
        await handlers?.onRevoke?.(partitions);
      } catch (err) {
        report(err, 'onRevoke');
      }
      const gone = new Set(partitions.map((tp) => tpKey(tp.topic, tp.partition)));
      for (let i = owned.length - 1; i >= 0; i--) {
        const p = owned[i];
        if (p !== undefined && gone.has(tpKey(p.topic, p.partition))) {
          clearBackoff(p);
          owned.splice(i, 1);
        }
      }
      resumeDelivery();
    },
    async assign(partitions) {
      await quiesce();
      for (const { topic, partition } of partitions) {
        const log = broker.log(topic, partition);
        const position = broker.committed(groupId, topic, partition) ?? (fromBeginning ? log.logStartOffset : log.highWatermark);
        owned.push({ topic, partition, position, failures: 0, backoff: undefined });
      }
      try {
        await handlers?.onAssign?.(partitions);
      } catch (err) {
        report(err, 'onAssign');
      }
      resumeDelivery();
    },
  };

  async function run(active: ConsumerHandlers): Promise<void> {
    if (rt.isClosed() || state === 'closing' || state === 'closed') throw new QoeError('QOE_ERR_BUS_CLOSED');
    if (state === 'running') throw new QoeError('QOE_ERR_INTERNAL', 'consumer is already running');
    for (const topic of topics) broker.topic(topic);
    handlers = active;
    state = 'running';
    joined = true;
    for (const topic of topics) {
      broker.topic(topic).listeners.add(onAppend);
      for (const reset of broker.initGroupOffsets(groupId, topic, fromBeginning)) {
        // A first start is not worth a report; falling behind the retained log is.
        if (reset.from !== undefined) {
          report(new QoeError('QOE_ERR_INTERNAL', `committed offset ${reset.from} was released; reset to ${reset.to}`), 'offsetReset', reset);
        }
      }
    }
    loopDone = loop(active);
    await joinGroup(broker, groupId, member);
  }

  async function commit(offsets: OffsetCommit[]): Promise<void> {
    if (state === 'closed' || rt.isClosed()) throw new QoeError('QOE_ERR_BUS_CLOSED');
    if (joined) {
      // Kafka fences commits from a member that no longer owns the partition (stale generation).
      const foreign = offsets.filter((o) => !member.owns(o.topic, o.partition));
      if (foreign.length > 0) {
        throw new QoeError('QOE_ERR_INTERNAL', 'commit for partitions not assigned to this member', { details: { foreign } });
      }
    } else if (broker.group(groupId).members.length > 0) {
      // Like Kafka, a client outside the group may commit only while the group has no live members.
      throw new QoeError('QOE_ERR_INTERNAL', `group ${groupId} has live members; commit from one of them`);
    }
    broker.commit(groupId, offsets);
  }

  function close(): Promise<void> {
    closing ??= (async () => {
      const wasRunning = state === 'running';
      state = 'closing';
      if (wasRunning) {
        await leaveGroup(broker, groupId, member);
        for (const topic of topics) broker.topic(topic).listeners.delete(onAppend);
      }
      for (const p of owned) clearBackoff(p);
      joined = false;
      state = 'closed';
      signal.notify();
      await loopDone;
    })();
    return closing;
  }

  return {
    run,
    commit,
    pause(partitions) {
      for (const tp of partitions) paused.add(tpKey(tp.topic, tp.partition));
    },
    resume(partitions) {
      for (const tp of partitions) paused.delete(tpKey(tp.topic, tp.partition));
      signal.notify();
    },
    async lag() {
      return topics.flatMap((topic) =>
        broker.topic(topic).partitions.map((log, partition) => {
          const committed = broker.committed(groupId, topic, partition) ?? (fromBeginning ? log.logStartOffset : log.highWatermark);
          return { topic, partition, lag: log.highWatermark - committed };
        }),
      );
    },
    close,
  };
}
