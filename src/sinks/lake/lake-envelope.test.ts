import { describe, expect, it } from 'vitest';
import { ColumnSet, LakeSchemaError } from './lake-columns.ts';
import { emptySpans, fieldText, readEnvelope } from './lake-envelope.ts';
import { RowTypes } from './lake-row-types.ts';

const spans = emptySpans;

/** What `readEnvelope` read, as the values JSON.parse gives for the same spans. */
function read(text: string) {
  const s = spans();
  if (!readEnvelope(text, s)) return null;
  const part = (a: number, b: number) => (a < 0 ? null : JSON.parse(text.slice(a, b)));
  const source = s.sourceStart < 0 ? null : text.slice(s.sourceStart, s.sourceEnd);
  return {
    before: part(s.beforeStart, s.beforeEnd),
    after: part(s.afterStart, s.afterEnd),
    source: source === null ? null : JSON.parse(source),
    transaction: part(s.transactionStart, s.transactionEnd),
    op: s.op,
    lsn: source === null ? undefined : fieldText(source, 0, source.length, 'lsn"'),
  };
}

const SOURCE = {
  version: '1',
  name: 'x',
  ts_us: 1,
  db: 'd}b", "lsn":5',
  schema: 'public',
  table: 't',
  lsn: 42,
};

describe('readEnvelope', () => {
  const cases: [string, unknown][] = [
    [
      'the capture layout',
      { before: null, after: { id: 1 }, source: SOURCE, transaction: { total_order: 2 }, op: 'c' },
    ],
    [
      'a before image with a column named after, nested values and escapes',
      {
        before: { id: 1, after: { source: { x: 1 } }, s: 'a"},"source":{"\\' },
        after: { id: 1, a: [{ source: {} }], s: '\u00e9\u2028' },
        source: SOURCE,
        transaction: null,
        op: 'u',
      },
    ],
    ['a delete', { before: { id: 7 }, after: null, source: SOURCE, transaction: null, op: 'd' }],
    ['another key order', { op: 'r', source: SOURCE, after: { id: 1 }, before: null, ts_ms: 3 }],
    ['no op', { before: null, after: { id: 1 }, source: SOURCE }],
  ];
  for (const [name, value] of cases) {
    it(`reads ${name} as JSON.parse does`, () => {
      const v = value as Record<string, unknown>;
      for (const text of [JSON.stringify(value), JSON.stringify(value, null, 2)]) {
        const got = read(text)!;
        expect(got.before).toEqual(v.before ?? null);
        expect(got.after).toEqual(v.after ?? null);
        expect(got.source).toEqual(v.source ?? null);
        expect(got.transaction).toEqual(v.transaction ?? null);
        expect(got.op).toBe(v.op);
        expect(got.lsn).toBe('42');
      }
    });
  }

  it('keeps every digit of the record text', () => {
    const text = `{"before":null,"after":{"big":9223372036854775807},"source":{"lsn":18446744073709551615},"transaction":null,"op":"c"}`;
    const got = read(text)!;
    expect(got.lsn).toBe('18446744073709551615');
    const s = spans();
    readEnvelope(text, s);
    expect(text.slice(s.afterStart, s.afterEnd)).toBe('{"big":9223372036854775807}');
  });

  it('skips tombstones and non-objects; a malformed text throws the SyntaxError JSON.parse gives', () => {
    expect(readEnvelope('null', spans())).toBe(false);
    expect(readEnvelope('[1]', spans())).toBe(false);
    expect(() => readEnvelope('{"before":null,"after":{"id":1', spans())).toThrow(SyntaxError);
    expect(() => readEnvelope('{"op":"c",}', spans())).toThrow(SyntaxError);
  });
});

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
