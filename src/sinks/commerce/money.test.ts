import { describe, expect, it } from 'vitest';
import { formatScaled, toScaled } from './money.ts';

describe('exact money', () => {
  it('scales decimal text exactly and formats it back', () => {
    expect(toScaled('12.3', 2, 'price')).toBe(1230n);
    expect(toScaled('0.07', 2, 'price')).toBe(7n);
    expect(toScaled('-5', 2, 'price')).toBe(-500n);
    expect(toScaled('99999999999999999.99', 2, 'price')).toBe(9999999999999999999n);
    expect(toScaled('1.2300', 2, 'price')).toBe(123n);
    expect(toScaled(3, 2, 'price')).toBe(300n);
    expect(formatScaled(1230n, 2)).toBe('12.30');
    expect(formatScaled(7n, 2)).toBe('0.07');
    expect(formatScaled(-500n, 2)).toBe('-5.00');
    expect(formatScaled(42n, 0)).toBe('42');
  });

  it('refuses what it cannot hold, naming the column', () => {
    expect(() => toScaled('1.234', 2, 'price')).toThrow(/price: 1.234 has more than 2 decimal places/);
    expect(() => toScaled('abc', 2, 'price')).toThrow(/price: "abc" is not a decimal number/);
    expect(() => toScaled('', 2, 'total')).toThrow(/total/);
  });
});
