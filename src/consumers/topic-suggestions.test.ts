import { describe, expect, it } from 'vitest';
import { closestNames, editDistance } from './topic-suggestions.ts';

describe('topic suggestions', () => {
  it('measures edit distance', () => {
    expect(editDistance('orders', 'orders')).toBe(0);
    expect(editDistance('order', 'orders')).toBe(1);
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('', 'abc')).toBe(3);
  });

  it('puts the closest names first, then by name, at most limit', () => {
    const topics = [
      'app.public.customers',
      'app.public.orders',
      'app.public.order_items',
      'app.schema-history',
    ];
    expect(closestNames('app.public.order', topics, 2)).toEqual([
      'app.public.orders',
      'app.public.order_items',
    ]);
    expect(closestNames('x', [])).toEqual([]);
  });
});
