import { describe, expect, it } from 'vitest';
import type { ConsumerRecord } from '../consumers/define-consumer.ts';
import { Lookahead } from './lookahead.ts';

const records = (offsets: number[], partition = 0): ConsumerRecord<unknown>[] =>
  offsets.map((offset) => ({
    topic: 't',
    partition,
    offset,
    key: null,
    value: null,
    headers: {},
    timestamp: 0,
  }));

describe('Lookahead', () => {
  it('gives back what was computed for the very same records, once', () => {
    const ahead = new Lookahead<number>();
    let computed = 0;
    ahead.prepare(records([5, 6, 7]), (r) => {
      computed++;
      return r.length;
    });
    // Prepared once per batch of records.
    ahead.prepare(records([5, 6, 7]), () => ++computed);
    expect(computed).toBe(1);
    expect(ahead.take(records([5, 6]))).toBeUndefined();
    expect(ahead.take(records([5, 6, 7], 1))).toBeUndefined();
    expect(ahead.take(records([5, 6, 7]))).toBe(3);
    expect(ahead.take(records([5, 6, 7]))).toBeUndefined();
  });

  it('keeps no failed computation and nothing for no records', () => {
    const ahead = new Lookahead<number>();
    ahead.prepare(records([1]), () => {
      throw new Error('bad record');
    });
    ahead.prepare([], () => 1);
    ahead.prepare(undefined, () => 1);
    expect(ahead.take(records([1]))).toBeUndefined();
    expect(ahead.take([])).toBeUndefined();
  });

  it('keeps the latest few batches only', () => {
    const ahead = new Lookahead<number>();
    for (let i = 0; i < 20; i++) ahead.prepare(records([i]), () => i);
    expect(ahead.take(records([0]))).toBeUndefined();
    expect(ahead.take(records([19]))).toBe(19);
    expect(ahead.take(records([12]))).toBe(12);
  });
});
