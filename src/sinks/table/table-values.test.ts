import { describe, expect, it } from 'vitest';
import { microsToTimestamp, toPostgresText } from './table-values.ts';

describe('table values', () => {
  it('writes safe-integer timestamps as the exact bigint conversion does', () => {
    let seed = 3;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    const samples = [
      0, -1, 1, 999, -999, -1000, 86_399_999_999, -86_400_000_000, 1704164645123456, -5_000_000_000_000_001,
      -4_999_999_999_999_999,
    ];
    samples.push(Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER);
    for (let i = 0; i < 5000; i++) {
      const us = Math.floor((rnd() - 0.5) * 2 * Number.MAX_SAFE_INTEGER * rnd() ** 6);
      samples.push(us, us - (us % 1000), us - (us % 1_000_000));
    }
    for (const us of samples) {
      expect(toPostgresText(us, 'timestamp', 'c'), String(us)).toBe(microsToTimestamp(BigInt(us), 'c'));
    }
  });
});
