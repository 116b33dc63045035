import type { Broker, GroupMember, GroupState } from './memory-broker.js';
import type { TopicPartition } from './types.js';

/**
 * Consumer-group coordination for the memory bus: Kafka's range assignment among the live members, and
 * rebalances serialized per group. A rebalance first revokes every partition that changes owner (each
 * losing member finishes its in-flight batch and runs onRevoke), then assigns them (the new owner starts
 * from the group's committed offset, read only after the previous owner is done, and runs onAssign).
 * Partitions that keep their owner are not interrupted (incremental, like Kafka's cooperative protocol).
 */

export interface MemberSubscription {
  memberId: string;
  topics: readonly string[];
}

/**
 * Kafka's RangeAssignor: per topic, the subscribed members sorted by member id each take a consecutive
 * range of partitions; the first `partitions % members` take one extra.
 */
export function rangeAssign(
  members: readonly MemberSubscription[],
  partitionCount: (topic: string) => number,
): Map<string, TopicPartition[]> {
  const assignment = new Map<string, TopicPartition[]>(members.map((m) => [m.memberId, []]));
  const topics = [...new Set(members.flatMap((m) => m.topics))].sort();
  for (const topic of topics) {
    const subscribed = members
      .filter((m) => m.topics.includes(topic))
      .map((m) => m.memberId)
      .sort();
    const n = partitionCount(topic);
    const perMember = Math.floor(n / subscribed.length);
    const extra = n % subscribed.length;
    subscribed.forEach((memberId, i) => {
      const start = i * perMember + Math.min(i, extra);
      const length = perMember + (i < extra ? 1 : 0);
      const owned = assignment.get(memberId);
      for (let partition = start; partition < start + length; partition++) owned?.push({ topic, partition });
    });
  }
  return assignment;
}

function key(tp: TopicPartition): string {
  return `${tp.topic}\u0000${tp.partition}`;
}

function minus(a: readonly TopicPartition[], b: readonly TopicPartition[]): TopicPartition[] {
  const drop = new Set(b.map(key));
  return a.filter((tp) => !drop.has(key(tp)));
}

async function rebalance(broker: Broker, group: GroupState, leaving: readonly GroupMember[]): Promise<void> {
  const live = [...group.members];
  const target = rangeAssign(live, (topic) => broker.topic(topic).partitions.length);
  await Promise.all(
    [...leaving, ...live].map(async (member) => {
      const lost = minus(member.ownedPartitions(), target.get(member.memberId) ?? []);
      if (lost.length > 0) await member.revoke(lost);
    }),
  );
  await Promise.all(
    live.map(async (member) => {
      // A member that left while this rebalance waited is handed nothing; the next rebalance covers it.
      if (!group.members.includes(member)) return;
      const gained = minus(target.get(member.memberId) ?? [], member.ownedPartitions());
      if (gained.length > 0) await member.assign(gained);
    }),
  );
}

function enqueue(broker: Broker, group: GroupState, leaving: readonly GroupMember[]): Promise<void> {
  // member.revoke/assign report handler errors themselves and never reject; the catch keeps the chain alive.
  const next = group.rebalancing.then(() => rebalance(broker, group, leaving)).catch(() => undefined);
  group.rebalancing = next;
  return next;
}

/** Add `member` to its group and wait until the resulting rebalance has assigned its partitions. */
export function joinGroup(broker: Broker, groupId: string, member: GroupMember): Promise<void> {
  const group = broker.group(groupId);
  group.members.push(member);
  // The group now pins its topics from its committed offsets; anything below every live floor can go.
  for (const topic of member.topics) broker.release(topic);
  return enqueue(broker, group, []);
}

/** Remove `member`: its partitions are revoked (after its in-flight batch) and handed to the others. */
export async function leaveGroup(broker: Broker, groupId: string, member: GroupMember): Promise<void> {
  const group = broker.group(groupId);
  group.members = group.members.filter((m) => m !== member);
  await enqueue(broker, group, [member]);
  // The group may no longer pin records it had not committed; release what the remaining groups allow.
  for (const topic of member.topics) broker.release(topic);
}
