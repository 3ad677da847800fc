import { describe, expect, it } from 'vitest';
import { ColumnSet, LakeSchemaError } from './lake-columns.ts';

describe('ColumnSet typed by values', () => {
  it('keeps a column typed by the schema history when a batch has no shape for it', () => {
    const known: [string, string][] = [
      ['d', 'DATE'],
      ['ts', 'TIMESTAMPTZ'],
      ['amt', 'DECIMAL(12,2)'],
      ['f', 'DOUBLE'],
      ['r', 'FLOAT'],
    ];
    const cols = new ColumnSet('t', known);
    cols.observe({ d: 19724, ts: '2024-01-02T03:04:05Z', amt: '1.50', f: 'NaN', r: 1.5 });
    cols.observe({ d: null, ts: null, amt: null, f: 2, r: '-Infinity' });
    expect(cols.changed).toBe(false);
    expect(cols.columns()).toEqual(known);
  });

  it('still stops on a value of another kind', () => {
    expect(() => new ColumnSet('t', [['d', 'DATE']]).observe({ d: 'soon' })).toThrow(LakeSchemaError);
    expect(() => new ColumnSet('t', [['f', 'DOUBLE']]).observe({ f: 'many' })).toThrow(
      /column f changed type from DOUBLE to VARCHAR/,
    );
    expect(() => new ColumnSet('t', [['n', 'BIGINT']]).observe({ n: 'x' })).toThrow(
      /column n changed type from BIGINT to VARCHAR/,
    );
  });
});
