import { describe, expect, it } from 'vitest';
import type { StoredRecord } from '../../core/record.ts';
import { fnv1a, LaneQueue, laneOf } from './key-lanes.ts';

const rec = (offset: number, key: string | null, partition = 0): StoredRecord => ({
  topic: 't',
  partition,
  offset,
  key,
  value: '{}',
  headers: {},
  timestamp: 0,
});

describe('key lanes', () => {
  it('puts every record of a key in the same lane and spreads keys', () => {
    const lanes = new Map<string, Set<number>>();
    for (let i = 0; i < 2000; i++) {
      const key = `{"id":${i % 50}}`;
      const set = lanes.get(key) ?? new Set();
      set.add(laneOf(rec(i, key), 4, 'key'));
      lanes.set(key, set);
    }
    for (const set of lanes.values()) expect(set.size).toBe(1);
    const used = new Set([...lanes.values()].map((s) => [...s][0]));
    expect(used.size).toBe(4);
  });

  it('keeps a partition in one lane in partition mode (transactional consumers)', () => {
    const used = new Set(Array.from({ length: 100 }, (_, i) => laneOf(rec(i, `k${i}`, 1), 4, 'partition')));
    expect(used.size).toBe(1);
  });

  it('hashes stably', () => {
    expect(fnv1a('')).toBe(0x811c9dc5);
    expect(fnv1a('a')).toBe(0xe40c292c);
  });

  it('queues in order, takes batches, and removes records of a revoked partition', () => {
    const q = new LaneQueue();
    for (let i = 0; i < 7; i++) q.push(rec(i, 'k', i % 2), 1000 + i);
    expect(q.since).toBe(1000);
    expect(q.take(3, 2000).map((r) => r.offset)).toEqual([0, 1, 2]);
    expect(q.since).toBe(2000);
    expect(q.remove((r) => r.partition === 1).map((r) => r.offset)).toEqual([3, 5]);
    expect(q.take(10, 3000).map((r) => r.offset)).toEqual([4, 6]);
    expect(q.size).toBe(0);
  });
});
