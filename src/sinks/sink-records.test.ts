import { describe, expect, it } from 'vitest';
import type { ConsumerRecord } from '../consumers/define-consumer.ts';
import { deletedRow, exactJson, parseExactJson, type RowChange, rowChange } from './sink-records.ts';
import { daysToDate, microsToTime, microsToTimestamp } from './table/table-values.ts';

function record(value: unknown, key: string | null = '{"id":1}'): ConsumerRecord<unknown> {
  return { topic: 't', partition: 0, offset: 0, key, value, headers: {}, timestamp: 0 };
}

describe('sink records', () => {
  it('parses integers beyond 2^53 as bigint, leaving strings and floats alone', () => {
    const text =
      '{"a":12345678901234567890,"s":"x\\"12345678901234567890","f":1.2345678901234567e5,"n":[-92233720368547758080,1],"k":9007199254740991}';
    expect(parseExactJson(text)).toEqual({
      a: 12345678901234567890n,
      s: 'x"12345678901234567890',
      f: 1.2345678901234567e5,
      n: [-92233720368547758080n, 1],
      k: 9007199254740991,
    });
  });

  it('leaves doubles with 16 or more digits after the point alone, and long safe integers', () => {
    const text =
      '{"d":0.30000000000000004,"e":-1.2345678901234568e-5,"t":1704164645123456,"s":"\\\\","b":12345678901234567890}';
    expect(parseExactJson(text)).toEqual({
      d: 0.30000000000000004,
      e: -1.2345678901234568e-5,
      t: 1704164645123456,
      s: '\\',
      b: 12345678901234567890n,
    });
  });

  it('reads both formats as row changes; tombstones and messages are none', () => {
    const source = { schema: 'public', table: 'orders' };
    expect(rowChange(record({ op: 'c', after: { id: 1 }, before: null, source }))).toEqual({
      op: 'upsert',
      table: 'public.orders',
      key: { id: 1 },
      row: { id: 1 },
      lsn: null,
    });
    expect(rowChange(record({ op: 't', after: null, before: null, source }, null))).toEqual({
      op: 'truncate',
      table: 'public.orders',
      lsn: null,
    });
    const unwrapped = { id: 1, x: 2, __op: 'd', __table: 'orders', __schema: 'public', __deleted: 'true' };
    expect(rowChange(record(unwrapped))).toMatchObject({
      op: 'delete',
      table: 'public.orders',
      key: { id: 1 },
    });
    expect(rowChange(record(null))).toBeUndefined();
    expect(rowChange(record({ op: 'u', after: null, before: null, source }))).toBeUndefined();
    expect(rowChange(record({ op: 'm', source: { table: '' } }))).toBeUndefined();
  });

  it('carries the source LSN of both formats, as a number', () => {
    const source = { schema: 'public', table: 'orders', lsn: 850 };
    expect(rowChange(record({ op: 'c', after: { id: 1 }, before: null, source }))?.lsn).toBe(850);
    expect(rowChange(record({ op: 't', after: null, before: null, source }, null))?.lsn).toBe(850);
    const unwrapped = {
      id: 1,
      __op: 'u',
      __table: 'orders',
      __schema: 'public',
      __lsn: 851,
      __deleted: 'false',
    };
    expect(rowChange(record(unwrapped))).toEqual({
      op: 'upsert',
      table: 'public.orders',
      key: { id: 1 },
      row: { id: 1 },
      lsn: 851,
    });
    expect(
      rowChange(record({ op: 'c', after: { id: 1 }, source: { ...source, lsn: 9007199254740993n } }))?.lsn,
    ).toBe(9007199254740992);
  });

  it('names a deleted row by its old row, else by its key, else not at all', () => {
    const source = { schema: 'public', table: 'orders', lsn: 9 };
    const del = (before: unknown, key: string | null) =>
      rowChange(record({ op: 'd', after: null, before, source }, key)) as RowChange & { op: 'delete' };
    expect(deletedRow(del({ id: 1, x: 2 }, '{"id":1}'))).toEqual({ id: 1, x: 2 });
    expect(deletedRow(del(null, '{"id":12345678901234567890}'))).toEqual({ id: 12345678901234567890n });
    expect(deletedRow(del(null, null))).toBeUndefined();
  });

  it('writes bigints back as JSON numbers with every digit', () => {
    const text = '{"a":12345678901234567890,"s":"12345678901234567890","n":[-92233720368547758080,1.5]}';
    expect(exactJson(parseExactJson(text))).toBe(text);
  });

  it("writes time values in PostgreSQL's own text form, exactly", () => {
    expect(microsToTimestamp(1704164645123456n, 'c')).toBe('2024-01-02 03:04:05.123456');
    expect(microsToTimestamp(1704164645100000n, 'c')).toBe('2024-01-02 03:04:05.1');
    expect(microsToTimestamp(-1n, 'c')).toBe('1969-12-31 23:59:59.999999');
    expect(microsToTimestamp(-63517780800000000n, 'c')).toBe('0044-03-15 12:00:00 BC');
    expect(microsToTimestamp(9223372036854775807n, 'c')).toBe('infinity');
    expect(daysToDate(19724n, 'c')).toBe('2024-01-02');
    expect(daysToDate(-1n, 'c')).toBe('1969-12-31');
    expect(daysToDate(2146033979n, 'c')).toBe('infinity');
    expect(microsToTime(36930500000n)).toBe('10:15:30.5');
    expect(microsToTime(86400000000n)).toBe('24:00:00');
  });
});
