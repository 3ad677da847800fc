import { describe, expect, it } from 'vitest';
import { firstOffset, parseReadStart } from './read-start.ts';

const p = { partition: 0, startOffset: 10, endOffset: 50 };

describe('read --from', () => {
  it('parses offsets, earliest, latest and -N', () => {
    expect(parseReadStart('0')).toEqual({ kind: 'offset', offset: 0 });
    expect(parseReadStart('120')).toEqual({ kind: 'offset', offset: 120 });
    expect(parseReadStart('earliest')).toEqual({ kind: 'offset', offset: 0 });
    expect(parseReadStart('latest')).toEqual({ kind: 'latest' });
    expect(parseReadStart('-5')).toEqual({ kind: 'tail', count: 5 });
    expect(() => parseReadStart('soon')).toThrow(
      /--from must be an offset, earliest, latest or -N, not "soon"/,
    );
    expect(() => parseReadStart('1.5')).toThrow(/--from must be/);
  });

  it('starts each partition where asked, within what is stored', () => {
    expect(firstOffset({ kind: 'offset', offset: 0 }, p, true)).toBe(10);
    expect(firstOffset({ kind: 'offset', offset: 20 }, p, true)).toBe(20);
    expect(firstOffset({ kind: 'latest' }, p, true)).toBe(50);
    expect(firstOffset({ kind: 'tail', count: 5 }, p, true)).toBe(45);
    expect(firstOffset({ kind: 'tail', count: 500 }, p, true)).toBe(10);
    // A partition that appeared while following holds only new records: all of them.
    expect(firstOffset({ kind: 'latest' }, p, false)).toBe(10);
  });
});
