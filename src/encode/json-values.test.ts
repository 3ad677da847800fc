import { describe, expect, it } from 'vitest';
import type { ColumnType } from '../core/change-event.ts';
import { jsonConverter, ValueConversionError } from './json-values.ts';
import { civilFromDays, daysFromCivil } from './pg-datetime.ts';

const base = (oid: number, name: string): ColumnType => ({ kind: 'base', oid, name });
const T = {
  int2: base(21, 'int2'),
  int4: base(23, 'int4'),
  int8: base(20, 'int8'),
  oid: base(26, 'oid'),
  numeric: base(1700, 'numeric'),
  float4: base(700, 'float4'),
  float8: base(701, 'float8'),
  bool: base(16, 'bool'),
  text: base(25, 'text'),
  bpchar: base(1042, 'bpchar'),
  uuid: base(2950, 'uuid'),
  money: base(790, 'money'),
  bytea: base(17, 'bytea'),
  json: base(114, 'json'),
  jsonb: base(3802, 'jsonb'),
  date: base(1082, 'date'),
  time: base(1083, 'time'),
  timetz: base(1266, 'timetz'),
  timestamp: base(1114, 'timestamp'),
  timestamptz: base(1184, 'timestamptz'),
  interval: base(1186, 'interval'),
};
const array = (element: ColumnType, delimiter = ','): ColumnType => ({
  kind: 'array',
  oid: 0,
  name: `_${element.name}`,
  element,
  delimiter,
});
const convert = (type: ColumnType, text: string): string => jsonConverter(type)(text);
/** Each case: [text, expected JSON text]; every expected text must also be valid JSON. */
function check(type: ColumnType, cases: [string, string][]): void {
  const f = jsonConverter(type);
  for (const [text, json] of cases) {
    expect(f(text), `${type.name} ${text}`).toBe(json);
    expect(() => JSON.parse(json)).not.toThrow();
  }
}

describe('jsonConverter: numbers', () => {
  it('copies integers digit for digit', () => {
    check(T.int2, [['-32768', '-32768']]);
    check(T.int4, [['2147483647', '2147483647']]);
    check(T.int8, [
      ['9223372036854775807', '9223372036854775807'],
      ['-9223372036854775808', '-9223372036854775808'],
    ]);
    check(T.oid, [['4294967295', '4294967295']]);
  });

  it('writes numeric as an exact string', () => {
    const forty = '1234567890123456789012345678901234567890';
    check(T.numeric, [
      ['12345.6789012345678901234567890', '"12345.6789012345678901234567890"'],
      [forty, `"${forty}"`],
      [`-0.${forty}`, `"-0.${forty}"`],
      ['NaN', '"NaN"'],
      ['Infinity', '"Infinity"'],
      ['-Infinity', '"-Infinity"'],
    ]);
  });

  it('writes floats as JSON numbers and the non-finite ones as strings', () => {
    check(T.float8, [
      ['1.5', '1.5'],
      ['-0', '-0'],
      ['1e+100', '1e+100'],
      ['1e+308', '1e+308'],
      ['1.5e-07', '1.5e-07'],
      ['5e-324', '5e-324'],
      ['2.2250738585072014e-308', '2.2250738585072014e-308'],
      ['NaN', '"NaN"'],
      ['Infinity', '"Infinity"'],
      ['-Infinity', '"-Infinity"'],
    ]);
    check(T.float4, [
      ['3.4028235e+38', '3.4028235e+38'],
      ['1e-45', '1e-45'],
      ['0.1', '0.1'],
    ]);
    // Not printed by PostgreSQL >= 12, but not JSON either: normalized.
    check(T.float8, [
      ['+1.5', '1.5'],
      ['1.', '1'],
      ['.5', '0.5'],
      ['-.0', '-0'],
    ]);
    expect(JSON.parse(convert(T.float8, '-0'))).toBe(-0);
    expect(() => convert(T.float8, 'abc')).toThrow(ValueConversionError);
  });
});

describe('jsonConverter: bool, strings, binary, json', () => {
  it('maps t/f to true/false', () => {
    check(T.bool, [
      ['t', 'true'],
      ['f', 'false'],
    ]);
    expect(() => convert(T.bool, 'yes')).toThrow(ValueConversionError);
  });

  it('escapes strings and keeps non-ASCII', () => {
    check(T.text, [
      ['plain', '"plain"'],
      ['q"b\\s', '"q\\"b\\\\s"'],
      ['\n\t\u0000\u001f', '"\\n\\t\\u0000\\u001f"'],
      ['ünïcödé 日本 😀', '"ünïcödé 日本 😀"'],
      ['', '""'],
    ]);
    check(T.bpchar, [['ab   ', '"ab   "']]);
    check(T.uuid, [['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"']]);
    check(T.money, [['$1,234.56', '"$1,234.56"']]);
    check(base(600, 'point'), [['(1,2)', '"(1,2)"']]);
    check(base(3904, 'int4range'), [['[1,5)', '"[1,5)"']]);
    check({ kind: 'enum', oid: 99999, name: 'mood' }, [['happy', '"happy"']]);
    check(base(123456, 'citext'), [['MiXeD', '"MiXeD"']]);
  });

  it('writes bytea as base64', () => {
    check(T.bytea, [
      ['\\x', '""'],
      ['\\x00', '"AA=="'],
      ['\\x0a0bff', '"Cgv/"'],
      ['\\xDEADBEEF', '"3q2+7w=="'],
    ]);
    // The legacy bytea_output=escape form.
    check(T.bytea, [['a\\000\\\\\\377', `"${Buffer.from([0x61, 0, 0x5c, 0xff]).toString('base64')}"`]]);
  });

  it('keeps json text unchanged inside a string, big numbers included', () => {
    const doc = '{"n": 123456789012345678901234567890, "s": "x\\"y"}';
    check(T.jsonb, [[doc, JSON.stringify(doc)]]);
    check(T.json, [['[1, 2]', '"[1, 2]"']]);
    expect(JSON.parse(convert(T.jsonb, doc))).toBe(doc);
  });
});

describe('jsonConverter: dates and times', () => {
  it('writes dates as days since the epoch, BC and infinities included', () => {
    check(T.date, [
      ['1970-01-01', '0'],
      ['1969-12-31', '-1'],
      ['2000-02-29', '11016'],
      ['2024-01-02', '19724'],
      ['0001-01-01', '-719162'],
      ['0001-12-31 BC', '-719163'],
      ['0044-03-15 BC', '-735160'],
      ['4714-11-24 BC', '-2440588'],
      ['5874897-12-31', '2145042905'],
      ['infinity', '2146033979'],
      ['-infinity', '-2147472691'],
    ]);
  });

  it('writes time as microseconds since midnight', () => {
    check(T.time, [
      ['00:00:00', '0'],
      ['10:15:30.5', '36930500000'],
      ['23:59:59.999999', '86399999999'],
      ['24:00:00', '86400000000'],
    ]);
  });

  it('writes timetz in UTC', () => {
    check(T.timetz, [
      ['10:15:30.123456+00', '"10:15:30.123456Z"'],
      ['10:15:30.123456+05:30', '"04:45:30.123456Z"'],
      ['01:00:00-08', '"09:00:00Z"'],
      ['23:30:00-01', '"00:30:00Z"'],
      ['00:10:00+05:53:28', '"18:16:32Z"'],
      ['24:00:00+00', '"24:00:00Z"'],
    ]);
  });

  it('writes timestamps as exact microseconds since the epoch', () => {
    check(T.timestamp, [
      ['1970-01-01 00:00:00', '0'],
      ['1969-12-31 23:59:59.999999', '-1'],
      ['2024-01-02 03:04:05.123456', '1704164645123456'],
      ['2024-01-02 03:04:05.1', '1704164645100000'],
      ['1500-06-01 12:00:00.000001', '-14818679999999999'],
      ['0044-03-15 12:00:00 BC', '-63517780800000000'],
      ['4714-11-24 00:00:00 BC', '-210866803200000000'],
      ['294276-12-31 23:59:59.999999', '9224318015999999999'],
      ['infinity', '9223372036854775807'],
      ['-infinity', '-9223372036854775808'],
    ]);
  });

  it('writes timestamptz in UTC whatever the session time zone', () => {
    check(T.timestamptz, [
      ['2024-01-02 03:04:05.123456+00', '"2024-01-02T03:04:05.123456Z"'],
      ['2024-01-02 03:04:05+00', '"2024-01-02T03:04:05Z"'],
      ['2024-01-02 08:34:05.123456+05:30', '"2024-01-02T03:04:05.123456Z"'],
      ['2024-01-01 19:04:05.5-08', '"2024-01-02T03:04:05.5Z"'],
      ['1890-01-01 00:00:00+05:53:28', '"1889-12-31T18:06:32Z"'],
      ['2024-03-01 00:30:00+01', '"2024-02-29T23:30:00Z"'],
      ['0001-01-01 00:00:00+01 BC', '"-0001-12-31T23:00:00Z"'],
      ['0044-03-15 12:00:00+00 BC', '"-0043-03-15T12:00:00Z"'],
      ['12345-01-01 00:00:00-08', '"+12345-01-01T08:00:00Z"'],
      ['infinity', '"infinity"'],
      ['-infinity', '"-infinity"'],
    ]);
  });

  it('writes intervals as Debezium ISO-8601 durations', () => {
    check(T.interval, [
      ['1 year 2 mons 3 days 04:05:06.789', '"P1Y2M3DT4H5M6.789S"'],
      ['00:00:00', '"P0Y0M0DT0H0M0S"'],
      ['1 day', '"P0Y0M1DT0H0M0S"'],
      ['-1 years -2 mons +3 days -04:05:06.5', '"P-1Y-2M3DT-4H-5M-6.5S"'],
      ['-00:00:00.000001', '"P0Y0M0DT0H0M-0.000001S"'],
      ['1 mon -1 days +100:00:00', '"P0Y1M-1DT100H0M0S"'],
      ['2 years', '"P2Y0M0DT0H0M0S"'],
    ]);
    expect(() => convert(T.interval, '1 fortnight')).toThrow(ValueConversionError);
    expect(() => convert(T.interval, 'P1D')).toThrow(ValueConversionError);
  });

  it('refuses temporal text of another DateStyle', () => {
    expect(() => convert(T.date, '01/02/2024')).toThrow(ValueConversionError);
    expect(() => convert(T.timestamp, 'Tue Jan 02 03:04:05 2024')).toThrow(ValueConversionError);
    expect(() => convert(T.timestamptz, '2024-01-02 03:04:05')).toThrow(ValueConversionError);
    expect(() => convert(T.time, '10:15')).toThrow(ValueConversionError);
  });

  it('converts civil dates and epoch days both ways', () => {
    for (const days of [-2440588, -719163, -1, 0, 1, 11016, 19724, 2145042905]) {
      const c = civilFromDays(days);
      expect(daysFromCivil(c.year, c.month, c.day)).toBe(days);
    }
  });
});

describe('jsonConverter: arrays', () => {
  it('converts each element with its type', () => {
    check(array(T.int8), [['{1,NULL,9223372036854775807}', '[1,null,9223372036854775807]']]);
    check(array(T.numeric), [['{1.10,NaN}', '["1.10","NaN"]']]);
    check(array(T.date), [['{1970-01-02,"0001-12-31 BC"}', '[1,-719163]']]);
    check(array(T.timestamptz), [['{"2024-01-02 08:34:05+05:30"}', '["2024-01-02T03:04:05Z"]']]);
    check(array(T.bool), [['{t,f}', '[true,false]']]);
    check(array({ kind: 'enum', oid: 9, name: 'mood' }), [['{happy,sad}', '["happy","sad"]']]);
    check(array(T.text), [['{}', '[]']]);
    check(array(T.bytea), [['{"\\\\x0a0b",NULL}', '["Cgs=",null]']]);
    check(array(T.jsonb), [['{"{\\"a\\": 1}"}', '["{\\"a\\": 1}"]']]);
  });

  it('nests multi-dimensional arrays, with NULLs and quotes', () => {
    check(array(T.text), [['{{"a\\"b",NULL},{"c,d","NULL"}}', '[["a\\"b",null],["c,d","NULL"]]']]);
    check(array(T.int4), [['[0:1][1:2]={{1,2},{3,NULL}}', '[[1,2],[3,null]]']]);
  });

  it('splits box arrays on ;', () => {
    check(array(base(603, 'box'), ';'), [['{(1,1),(0,0);(2,2),(1,1)}', '["(1,1),(0,0)","(2,2),(1,1)"]']]);
  });

  it('reports malformed literals as conversion errors', () => {
    expect(() => convert(array(T.int4), '{1,2')).toThrow(ValueConversionError);
  });
});
