import { describe, expect, it } from 'vitest';
import { MemberLiveness } from './member-liveness.ts';

describe('MemberLiveness', () => {
  it('a member is alive while its revision changes within the ttl, dead once it stays for the ttl', () => {
    let now = 0;
    const live = new MemberLiveness(1000, () => now);
    expect(
      live.observe(
        new Map([
          ['a', 1],
          ['b', 5],
        ]),
      ),
    ).toEqual(new Set(['a', 'b']));
    now = 900;
    expect(
      live.observe(
        new Map([
          ['a', 2],
          ['b', 5],
        ]),
      ),
    ).toEqual(new Set(['a', 'b']));
    now = 1000;
    expect(
      live.observe(
        new Map([
          ['a', 2],
          ['b', 5],
        ]),
      ),
    ).toEqual(new Set(['a']));
    expect(live.silentFor('b')).toBe(1000);
    now = 1100;
    // b beats again: alive again; a forgotten once its key is gone.
    expect(live.observe(new Map([['b', 6]]))).toEqual(new Set(['b']));
    expect(live.silentFor('a')).toBe(0);
  });
});
