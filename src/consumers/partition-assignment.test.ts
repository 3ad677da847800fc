import { describe, expect, it } from 'vitest';
import { assignPartitions, parsePartitionKey, partitionKey } from './partition-assignment.ts';

const parts = (n: number) => Array.from({ length: n }, (_, i) => partitionKey({ topic: 't', partition: i }));
const counts = (m: Map<string, number>) => {
  const c = new Map<number, number>();
  for (const r of m.values()) c.set(r, (c.get(r) ?? 0) + 1);
  return c;
};

describe('assignPartitions', () => {
  it('gives every partition to one replica, balanced', () => {
    const a = assignPartitions(parts(8), [1, 2, 3], new Map());
    expect(a.size).toBe(8);
    expect([...counts(a).values()].sort()).toEqual([2, 3, 3]);
  });

  it('assigns nothing without replicas and handles more replicas than partitions', () => {
    expect(assignPartitions(parts(3), [], new Map()).size).toBe(0);
    const a = assignPartitions(parts(2), [1, 2, 3], new Map());
    expect(new Set(a.values()).size).toBe(2);
  });

  it('is sticky: scaling up moves only what the new replica needs', () => {
    const one = assignPartitions(parts(6), [1], new Map());
    const three = assignPartitions(parts(6), [1, 2, 3], one);
    const moved = [...three].filter(([p, r]) => one.get(p) !== r).length;
    expect(moved).toBe(4);
    const back = assignPartitions(parts(6), [1, 3], three);
    const movedBack = [...back].filter(([p, r]) => three.get(p) !== r).length;
    expect(movedBack).toBe(2);
    expect([...counts(back).values()]).toEqual([3, 3]);
  });

  it('ignores owners that left', () => {
    const a = assignPartitions(parts(4), [2], new Map([[partitionKey({ topic: 't', partition: 0 }), 9]]));
    expect([...a.values()]).toEqual([2, 2, 2, 2]);
  });

  it('round-trips partition keys, with dots and NULs in topic names', () => {
    expect(parsePartitionKey(partitionKey({ topic: 'a.b.c', partition: 12 }))).toEqual({
      topic: 'a.b.c',
      partition: 12,
    });
  });
});
