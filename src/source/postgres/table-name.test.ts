import { describe, expect, it } from 'vitest';
import { checkSlotName, formatTableName, parseTableList, parseTableName } from './table-name.ts';

describe('table names', () => {
  it('folds unquoted names and keeps quoted ones', () => {
    expect(parseTableName('Orders')).toEqual({ schema: 'public', table: 'orders' });
    expect(parseTableName('Shop.Orders')).toEqual({ schema: 'shop', table: 'orders' });
    expect(parseTableName('"My Schema"."Order.Line"')).toEqual({ schema: 'My Schema', table: 'Order.Line' });
    expect(parseTableName('"a""b".c')).toEqual({ schema: 'a"b', table: 'c' });
    expect(parseTableName('"Ünïcödé"')).toEqual({ schema: 'public', table: 'Ünïcödé' });
  });
  it('splits lists outside quotes', () => {
    expect(parseTableList('a.b, "x,y".z ,c')).toEqual([
      { schema: 'a', table: 'b' },
      { schema: 'x,y', table: 'z' },
      { schema: 'public', table: 'c' },
    ]);
  });
  it('rejects malformed names with a hint', () => {
    expect(() => parseTableName('a.b.c')).toThrow(/expected schema.table/);
    expect(() => parseTableName('"abc')).toThrow(/unterminated quote/);
    expect(() => parseTableName('a..b')).toThrow(/invalid table name/);
  });
  it('formats back, quoting only when needed', () => {
    expect(formatTableName({ schema: 'public', table: 'orders' })).toBe('public.orders');
    expect(formatTableName({ schema: 'My Schema', table: 'a"b' })).toBe('"My Schema"."a""b"');
  });
  it('checks slot names', () => {
    expect(() => checkSlotName('tributary_1')).not.toThrow();
    expect(() => checkSlotName('Bad-Name')).toThrow(/invalid slot name "Bad-Name"/);
    expect(() => checkSlotName('Bad-Name')).toThrow(
      expect.objectContaining({ hint: expect.stringMatching(/lower-case letters/) }),
    );
  });
});
