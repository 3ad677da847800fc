import { describe, expect, it } from 'vitest';
import { parsePgArray } from './pg-array-literal.ts';

describe('parsePgArray', () => {
  it('reads flat arrays, NULLs and the empty array', () => {
    expect(parsePgArray('{1,2,3}')).toEqual(['1', '2', '3']);
    expect(parsePgArray('{}')).toEqual([]);
    expect(parsePgArray('{NULL,null,"NULL",x}')).toEqual([null, null, 'NULL', 'x']);
  });

  it('unescapes quoted elements', () => {
    expect(parsePgArray('{"a b","c\\"d","e\\\\f",""}')).toEqual(['a b', 'c"d', 'e\\f', '']);
    expect(parsePgArray('{"x,y","{z}"}')).toEqual(['x,y', '{z}']);
  });

  it('reads nested (multi-dimensional) arrays', () => {
    expect(parsePgArray('{{1,NULL},{"a\\"",4}}')).toEqual([
      ['1', null],
      ['a"', '4'],
    ]);
    expect(parsePgArray('{{{1},{2}},{{3},{4}}}')).toEqual([
      [['1'], ['2']],
      [['3'], ['4']],
    ]);
  });

  it('drops dimension decorations', () => {
    expect(parsePgArray('[0:1]={1,2}')).toEqual(['1', '2']);
    expect(parsePgArray('[1:2][3:4]={{a,b},{c,d}}')).toEqual([
      ['a', 'b'],
      ['c', 'd'],
    ]);
  });

  it("uses the type's delimiter (box arrays use ';')", () => {
    expect(parsePgArray('{(1,1),(0,0);(2,2),(1,1)}', ';')).toEqual(['(1,1),(0,0)', '(2,2),(1,1)']);
  });

  it('trims blanks around unquoted elements but keeps escaped ones', () => {
    expect(parsePgArray('{ a , b\\  ,"  c  "}')).toEqual(['a', 'b ', '  c  ']);
  });

  it('keeps non-ASCII text', () => {
    expect(parsePgArray('{ünï,"日本 語",😀}')).toEqual(['ünï', '日本 語', '😀']);
  });

  it('rejects malformed literals', () => {
    expect(() => parsePgArray('1,2')).toThrow(/malformed/);
    expect(() => parsePgArray('{1,2')).toThrow(/malformed/);
    expect(() => parsePgArray('{"a}')).toThrow(/malformed/);
    expect(() => parsePgArray('{1}x')).toThrow(/malformed/);
    expect(() => parsePgArray('[0:1]{1}')).toThrow(/malformed/);
  });
});
