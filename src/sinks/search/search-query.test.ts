import { describe, expect, it } from 'vitest';
import { matchExpression, parseRangeFilter } from './search-query.ts';

describe('search query language', () => {
  it('quotes every word, keeps prefixes, and lets no FTS5 syntax through', () => {
    expect(matchExpression('red lamp')).toBe('"red" AND "lamp"');
    expect(matchExpression('lam*')).toBe('"lam"*');
    expect(matchExpression('foo-ba* "x" OR NEAR(y)')).toBe(
      '"foo" AND "ba"* AND "x" AND "OR" AND "NEAR" AND "y"',
    );
    expect(matchExpression('  ')).toBeNull();
    expect(matchExpression('* - ()')).toBeNull();
    expect(matchExpression('Crème brûlée')).toBe('"Crème" AND "brûlée"');
  });

  it('parses ranges and names what is wrong', () => {
    expect(parseRangeFilter('price:10..20.5', ['price'])).toEqual({ column: 'price', min: 10, max: 20.5 });
    expect(parseRangeFilter('price:10.5..20', ['price'])).toEqual({ column: 'price', min: 10.5, max: 20 });
    expect(parseRangeFilter('price:..20', ['price'])).toEqual({ column: 'price', max: 20 });
    expect(parseRangeFilter('price:3..', ['price'])).toEqual({ column: 'price', min: 3 });
    expect(() => parseRangeFilter('weight:1..2', ['price'])).toThrow(/weight is not a numeric column/);
    expect(() => parseRangeFilter('price>3', ['price'])).toThrow(/is not a range/);
    expect(() => parseRangeFilter('price:a..3', ['price'])).toThrow(/a is not a number/);
  });
});
