import { describe, expect, it } from 'vitest';
import { formatLsn, parseLsn } from './lsn.ts';

describe('lsn', () => {
  it('round-trips the X/Y form', () => {
    for (const text of ['0/0', '0/16B3748', '1/0', 'FFFFFFFF/FFFFFFFF', 'A/B']) {
      expect(formatLsn(parseLsn(text))).toBe(text);
    }
    expect(parseLsn('1/2')).toBe((1n << 32n) + 2n);
  });
  it('rejects what is not an LSN', () => {
    expect(() => parseLsn('16B3748')).toThrow(/not an LSN/);
    expect(() => parseLsn('0/XYZ')).toThrow(/not an LSN/);
  });
});
