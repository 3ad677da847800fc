import { describe, expect, it } from 'vitest';
import { parseExactJson } from '../sink-records.ts';
import { dayOf, keyOf } from './commerce-shape.ts';

describe('commerce shape with exact values', () => {
  it('refuses an integer key beyond 2^53 by name, instead of rounding it', () => {
    const row = parseExactJson('{"id":9007199254740993,"n":"12"}') as Record<string, unknown>;
    expect(() => keyOf(row, 'id', 'orders')).toThrow('orders.id: 9007199254740993 is not an integer key');
    expect(keyOf(row, 'n', 'orders')).toBe(12);
  });

  it('reads the day of timestamps before and after 2^53 microseconds', () => {
    expect(dayOf(1704164645123456)).toBe('2024-01-02');
    expect(dayOf(parseExactJson('9467107200000000'))).toBe('2270-01-01');
    expect(dayOf(parseExactJson('10000000000000000'))).toBe(new Date(1e13).toISOString().slice(0, 10));
    expect(dayOf(19724)).toBe('2024-01-02');
  });
});
