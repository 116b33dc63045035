import { describe, expect, it } from 'vitest';
import { rangeAssign, type MemberSubscription } from './memory-group.js';

function render(assignment: Map<string, Array<{ topic: string; partition: number }>>): Record<string, string[]> {
  return Object.fromEntries(
    [...assignment].map(([memberId, tps]) => [memberId, tps.map((tp) => `${tp.topic}-${tp.partition}`)]),
  );
}

describe('rangeAssign (Kafka RangeAssignor)', () => {
  const partitions: Record<string, number> = { a: 3, b: 4, c: 1 };
  const count = (topic: string): number => partitions[topic] ?? 0;

  const cases: Array<{ name: string; members: MemberSubscription[]; expected: Record<string, string[]> }> = [
    { name: 'one member takes everything', members: [{ memberId: 'm1', topics: ['a'] }], expected: { m1: ['a-0', 'a-1', 'a-2'] } },
    {
      name: 'uneven split: the first members take the extra partition',
      members: [
        { memberId: 'm1', topics: ['a'] },
        { memberId: 'm2', topics: ['a'] },
      ],
      expected: { m1: ['a-0', 'a-1'], m2: ['a-2'] },
    },
    {
      name: 'more members than partitions leaves some idle',
      members: [
        { memberId: 'm1', topics: ['c'] },
        { memberId: 'm2', topics: ['c'] },
      ],
      expected: { m1: ['c-0'], m2: [] },
    },
    {
      name: 'members are sorted by id, not by list order',
      members: [
        { memberId: 'm2', topics: ['b'] },
        { memberId: 'm1', topics: ['b'] },
      ],
      expected: { m2: ['b-2', 'b-3'], m1: ['b-0', 'b-1'] },
    },
    {
      name: 'per topic, only subscribed members share it',
      members: [
        { memberId: 'm1', topics: ['a', 'b'] },
        { memberId: 'm2', topics: ['b'] },
      ],
      expected: { m1: ['a-0', 'a-1', 'a-2', 'b-0', 'b-1'], m2: ['b-2', 'b-3'] },
    },
    {
      name: 'ranges per topic stack up on the first member (range, not round-robin)',
      members: [
        { memberId: 'm1', topics: ['a', 'c'] },
        { memberId: 'm2', topics: ['a', 'c'] },
      ],
      expected: { m1: ['a-0', 'a-1', 'c-0'], m2: ['a-2'] },
    },
    { name: 'no members', members: [], expected: {} },
  ];

  it.each(cases)('$name', ({ members, expected }) => {
    expect(render(rangeAssign(members, count))).toEqual(expected);
  });

  it('assigns every partition exactly once for any member count', () => {
    for (let n = 1; n <= 9; n++) {
      const members = Array.from({ length: n }, (_, i) => ({ memberId: `m${i}`, topics: ['a', 'b', 'c'] }));
      const all = [...rangeAssign(members, count).values()].flat().map((tp) => `${tp.topic}-${tp.partition}`);
      expect(all.sort()).toEqual(['a-0', 'a-1', 'a-2', 'b-0', 'b-1', 'b-2', 'b-3', 'c-0']);
    }
  });
});
