/**
 * Round trip against a real PostgreSQL (127.0.0.1:5432, user postgres, database test): each value's
 * text form, printed in a non-UTC session, is converted and compared with what PostgreSQL itself
 * computes. Set TRIBUTARY_SKIP_PG=1 to skip where no server is available.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ColumnType } from '../core/change-event.ts';
import { jsonConverter } from './json-values.ts';

const base = (oid: number, name: string): ColumnType => ({ kind: 'base', oid, name });
const arrayOf = (element: ColumnType): ColumnType => ({
  kind: 'array',
  oid: 0,
  name: `_${element.name}`,
  element,
  delimiter: ',',
});

let client: pg.Client;

/** Runs `select <literal>::<type>` and returns the value's text and `expected` (an expression of x). */
async function sample(
  sqlType: string,
  literal: string,
  expected: string,
): Promise<{ text: string; expected: string }> {
  // pgoutput sends the output function's text; two casts to text differ from it: bool::text is
  // 'true'/'false' (boolout prints 't'/'f') and char(n)::text drops the padding.
  const output = sqlType === 'bool' ? 'boolout' : sqlType.startsWith('char(') ? 'bpcharout' : undefined;
  const text = output === undefined ? 'x::text' : `textin(${output}(x))`;
  const sql = `select ${text} as text, (${expected})::text as expected from (select ${literal}::${sqlType} as x) s`;
  const result = await client.query<{ text: string; expected: string }>(sql);
  const row = result.rows[0];
  if (!row) throw new Error(`no row for ${sql}`);
  return row;
}

async function roundTrip(
  type: ColumnType,
  sqlType: string,
  literals: string[],
  expected: string,
  compare: (json: string, expected: string, text: string) => void,
) {
  const convert = jsonConverter(type);
  for (const literal of literals) {
    const { text, expected: want } = await sample(sqlType, literal, expected);
    compare(convert(text), want, text);
  }
}

/** Our ZonedTimestamp text back to epoch microseconds, independently of the converter's code. */
function isoToMicros(iso: string): bigint {
  const m = /^([+-]?\d{4,})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?Z$/.exec(iso);
  if (!m) throw new Error(`not ISO: ${iso}`);
  const date = new Date(0);
  date.setUTCFullYear(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  date.setUTCHours(Number(m[4]), Number(m[5]), Number(m[6]), 0);
  return BigInt(date.getTime()) * 1000n + BigInt((m[7] ?? '').padEnd(6, '0'));
}

describe.skipIf(process.env.TRIBUTARY_SKIP_PG === '1')('jsonConverter against PostgreSQL', () => {
  beforeAll(async () => {
    client = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' });
    await client.connect();
    await client.query("SET DateStyle = ISO; SET IntervalStyle = postgres; SET TimeZone = 'Asia/Kolkata'");
  });
  afterAll(async () => {
    await client?.end();
  });

  const same = (json: string, want: string) => expect(json).toBe(want);

  it('integers and numeric keep every digit', async () => {
    await roundTrip(
      base(20, 'int8'),
      'int8',
      ["'9223372036854775807'", "'-9223372036854775808'", '0'],
      'x',
      same,
    );
    await roundTrip(base(21, 'int2'), 'int2', ["'-32768'"], 'x', same);
    const numerics = [
      "'12345.6789012345678901234567890'",
      "'1234567890123456789012345678901234567890.5'",
      "'NaN'",
      "'-Infinity'",
      "'0.000'",
    ];
    await roundTrip(base(1700, 'numeric'), 'numeric', numerics, 'x', (json, want) =>
      expect(JSON.parse(json)).toBe(want),
    );
  });

  it('floats are JSON numbers equal to the double PostgreSQL holds', async () => {
    const literals = [
      "'1e100'",
      "'-0'",
      "'1.5e-7'",
      "'1e308'",
      "'5e-324'",
      "'0.1'",
      "'NaN'",
      "'Infinity'",
      "'-Infinity'",
      "'123456789.123'",
    ];
    const check = (json: string, want: string) => {
      const value = JSON.parse(json);
      if (typeof value === 'string') expect(value).toBe(want);
      else expect(Object.is(value, Number(want))).toBe(true);
    };
    await roundTrip(base(701, 'float8'), 'float8', literals, 'x', check);
    await roundTrip(
      base(700, 'float4'),
      'float4',
      ["'3.4028235e38'", "'1e-45'", "'0.1'", "'-0'"],
      'x',
      check,
    );
  });

  it('bool, text, bytea and json', async () => {
    await roundTrip(
      base(16, 'bool'),
      'bool',
      ['true', 'false'],
      "case when x then 'true' else 'false' end",
      same,
    );
    const texts = [`E'q"b\\\\s\\n\\t\\x01'`, "'ünïcödé 日本 😀'", "''"];
    await roundTrip(base(25, 'text'), 'text', texts, 'x', (json, want) =>
      expect(JSON.parse(json)).toBe(want),
    );
    await roundTrip(base(1042, 'bpchar'), 'char(5)', ["'ab'"], 'x', (json) => expect(json).toBe('"ab   "'));
    const bytes = ["''", "'\\x00ff10'", "convert_to(repeat('xyz', 40), 'UTF8')"];
    await roundTrip(
      base(17, 'bytea'),
      'bytea',
      bytes,
      "replace(encode(x, 'base64'), E'\\n', '')",
      (json, want) => expect(JSON.parse(json)).toBe(want),
    );
    const docs = [`'{"n": 123456789012345678901234567890, "s": "x\\"y"}'`];
    await roundTrip(base(3802, 'jsonb'), 'jsonb', docs, 'x', (json, want) =>
      expect(JSON.parse(json)).toBe(want),
    );
  });

  it('date is days since the epoch', async () => {
    const dates = [
      "'1970-01-01'",
      "'1969-12-31'",
      "'2000-02-29'",
      "'0001-01-01'",
      "'0044-03-15 BC'",
      "'4713-01-01 BC'",
      "'5874897-12-31'",
    ];
    await roundTrip(base(1082, 'date'), 'date', dates, "x - date '1970-01-01'", same);
  });

  it('time and timetz', async () => {
    const times = ["'00:00:00'", "'10:15:30.5'", "'23:59:59.999999'", "'24:00:00'"];
    await roundTrip(base(1083, 'time'), 'time', times, '(extract(epoch from x) * 1000000)::bigint', same);
    const zoned = ["'10:15:30.123456+05:30'", "'01:00:00-08'", "'23:30:00-01'", "'12:00:00+14'"];
    await roundTrip(base(1266, 'timetz'), 'timetz', zoned, "x at time zone 'UTC'", (json, want) =>
      expect(JSON.parse(json)).toBe(want.replace(/\+00$/, 'Z')),
    );
  });

  it('timestamp is exact microseconds since the epoch, BC included', async () => {
    const stamps = [
      "'2024-01-02 03:04:05.123456'",
      "'1969-12-31 23:59:59.999999'",
      "'1500-06-01 12:00:00.000001'",
      "'0044-03-15 12:00:00 BC'",
      "'4713-01-01 00:00:00 BC'",
      "'200000-01-01 00:00:00.5'",
    ];
    await roundTrip(
      base(1114, 'timestamp'),
      'timestamp',
      stamps,
      'trunc(extract(epoch from x) * 1000000)',
      same,
    );
  });

  it('timestamptz is the UTC instant, from whatever offset the session printed', async () => {
    const stamps = [
      "'2024-01-02 03:04:05.123456+00'",
      "'2024-06-30 23:59:59.5-08'",
      "'1890-01-01 00:00:00+00'", // printed with a local mean time offset (+05:21:10)
      "'0001-01-01 00:00:00+00'",
      "'0044-03-15 12:00:00+00 BC'",
      "'12345-06-07 08:09:10.000001+00'",
    ];
    const convert = jsonConverter(base(1184, 'timestamptz'));
    for (const literal of stamps) {
      const { text, expected } = await sample(
        'timestamptz',
        literal,
        'trunc(extract(epoch from x) * 1000000)',
      );
      const iso = JSON.parse(convert(text));
      expect(isoToMicros(iso), `${text} -> ${iso}`).toBe(BigInt(expected));
    }
    const { text } = await sample('timestamptz', "'1890-01-01 00:00:00+00'", 'x');
    expect(text).toMatch(/[+-]\d\d:\d\d:\d\d$/); // local mean time, seconds included
    const ad = await sample(
      'timestamptz',
      "'2024-06-30 23:59:59.5-08'",
      `to_char(x at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')`,
    );
    expect(JSON.parse(convert(ad.text))).toBe(`${ad.expected}.5Z`);
  });

  it('interval ISO text reads back as the same interval', async () => {
    const intervals = [
      "'1 year 2 mons 3 days 04:05:06.789'",
      "'0'",
      "'-1 years -2 mons +3 days -04:05:06.5'",
      "'-0.000001 s'",
      "'1 mon -1 day 100 hours'",
      "'-178000000 years'",
    ];
    const convert = jsonConverter(base(1186, 'interval'));
    for (const literal of intervals) {
      const { text } = await sample('interval', literal, 'x');
      const iso = JSON.parse(convert(text));
      const back = await client.query<{ text: string }>('select $1::interval::text as text', [iso]);
      expect(back.rows[0]?.text, `${text} -> ${iso}`).toBe(text);
    }
  });

  it('arrays, multi-dimensional, with NULLs, quotes and bounds', async () => {
    const texts = [
      `ARRAY[['a"b', NULL], ['c,d', 'NULL']]`,
      `'[0:1]={x,"y z"}'::text[]`,
      `ARRAY['\\', '', ' sp ', '{}']`,
    ];
    await roundTrip(arrayOf(base(25, 'text')), 'text[]', texts, 'array_to_json(x)', (json, want) =>
      expect(JSON.parse(json)).toEqual(JSON.parse(want)),
    );
    await roundTrip(
      arrayOf(base(23, 'int4')),
      'int4[]',
      ["'{{1,2},{3,NULL}}'", "'{}'"],
      'array_to_json(x)',
      (json, want) => expect(JSON.parse(json)).toEqual(JSON.parse(want)),
    );
    const dates = ["ARRAY[date '1970-01-02', NULL, date '0044-03-15 BC']"];
    const expected =
      "(select json_agg(d - date '1970-01-01' order by n) from unnest(x) with ordinality u(d, n))";
    await roundTrip(arrayOf(base(1082, 'date')), 'date[]', dates, expected, (json, want) =>
      expect(JSON.parse(json)).toEqual(JSON.parse(want)),
    );
  });
});
