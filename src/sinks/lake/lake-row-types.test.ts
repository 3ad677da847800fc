import { describe, expect, it } from 'vitest';
import { ColumnSet, LakeSchemaError } from './lake-columns.ts';
import { RowTypes } from './lake-row-types.ts';

describe('RowTypes', () => {
  const rows = [
    { id: 1, n: null, f: 1, s: 'x', b: true, j: [1], big: 1e300, t: null },
    { id: 2, n: null, f: 1.5, s: 'NaN', b: false, j: { a: 1 }, big: 2, t: '2024-01-01' },
    { id: 3, n: 9, f: -2e-7, s: 'y', b: null, j: null, big: 3, t: null },
  ];

  it('gives the columns ColumnSet.observe gives on every row', () => {
    const expected = new ColumnSet('t', undefined);
    for (const r of rows) expected.observe(r);
    const cols = new ColumnSet('t', undefined);
    const types = new RowTypes(cols, undefined);
    for (const r of rows) types.observe(JSON.stringify(r), 0);
    // The same rows with whitespace and another key order.
    for (const r of rows) {
      const text = ` ${JSON.stringify(Object.fromEntries(Object.entries(r).reverse()), null, 1)}`;
      types.observe(text, 1);
    }
    expect(cols.columns()).toEqual(expected.columns());
    expect(cols.columns()).toEqual([
      ['id', 'BIGINT'],
      ['n', 'BIGINT'],
      ['f', 'DOUBLE'],
      ['s', 'VARCHAR'],
      ['b', 'BOOLEAN'],
      ['j', 'JSON'],
      ['big', 'DOUBLE'],
      ['t', 'VARCHAR'],
    ]);
  });

  it('stops on an incompatible value after many of one kind, as observing every row does', () => {
    const cols = new ColumnSet('t', [['n', 'BIGINT']]);
    const types = new RowTypes(cols, undefined);
    for (let i = 0; i < 100; i++) types.observe(`{"n":${i}}`, 0);
    expect(() => types.observe('{"n":"masked"}', 0)).toThrow(LakeSchemaError);
  });
});
