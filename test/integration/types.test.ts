import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningCapture } from '../../src/capture/capture-runner.ts';
import { captureConfig, envelope, runCapture, tempDir, waitForRecords } from '../support/capture-harness.ts';
import { createDatabase, PG_VERSIONS, type TestDatabase } from '../support/databases.ts';

/**
 * Every common type goes through the real pipeline (pgoutput → decoder → encoder → log) and
 * comes out with the exact value documented in docs/types.md. The database session uses an
 * odd time zone on purpose: the capture must not depend on it.
 */
const COLUMNS = `
  id int primary key,
  i2 int2, i4 int4, i8 int8, num numeric, num_big numeric(60, 20), f4 float4, f8 float8, f8_nan float8, f8_inf float8,
  b bool, t text, vc varchar(10), ch char(5), by bytea, u uuid, j json, jb jsonb,
  d date, d_bc date, tm time, ttz timetz, ts timestamp, ts_inf timestamp, tstz timestamptz, iv interval,
  a_int int4[], a_text text[], a_2d int8[][], a_enum mood[], dom positive_amount, a_dom positive_amount[],
  mood_col mood, ip inet, net cidr, nothing text`;

/** What JSON.parse makes of int8/timestamp extremes (the stored text keeps every digit, checked apart). */
const INT64_MAX_PARSED = Number('9223372036854775807');

const INSERT = `insert into all_types values (
  1,
  -32768, 2147483647, 9223372036854775807, 3.14159265358979323846264338327950288419716939937510,
  12345678901234567890123456789012345678.12345678901234567890, 3.4028235e38, 1.7976931348623157e308, 'NaN', '-Infinity',
  true, E'quote " backslash \\\\ tab \\t é ✓ 𝄞', 'varchar', 'ab', '\\x00ff10', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
  '{"big": 123456789012345678901234567890, "f": 1.10}', '{"big": 123456789012345678901234567890}',
  '2024-02-29', '0044-03-15 BC', '23:59:59.999999', '10:15:30.123456+05:30', '2024-01-02 03:04:05.123456', 'infinity',
  '2024-01-02 08:34:05.123456+05:30', '1 year 2 months 3 days 04:05:06.789',
  '{1,NULL,3}', '{"a,b","c\\"d",NULL,"NULL"}', '{{1,2},{3,9223372036854775807}}', '{happy,sad}', 12.50, '{1.5,2}',
  'sad', '192.168.0.1/24', '10.0.0.0/8', NULL)`;

describe.each(PG_VERSIONS)('types on PostgreSQL %i', (version) => {
  let db: TestDatabase;
  const dir = tempDir();
  let running: RunningCapture;

  beforeAll(async () => {
    db = await createDatabase(version, 'types');
    await db.query(`
      create type mood as enum ('happy', 'sad');
      create domain positive_amount as numeric(10, 2) check (value > 0);
      create table all_types (${COLUMNS});
      set timezone = 'America/St_Johns';
    `);
    running = await runCapture(captureConfig(db.url, dir.path, { topicPrefix: 'types' }));
  });
  afterAll(async () => {
    await running?.stop();
    await db?.drop();
    dir.remove();
  });

  it('round-trips every common type exactly', async () => {
    await db.query(INSERT);
    await db.query('insert into all_types (id) values (2)');
    const [row, nulls] = await waitForRecords(running.log, 'types.public.all_types', 2);
    // Digits beyond 2^53 are in the stored text, not only in what JSON.parse makes of them.
    expect(row!.value).toContain('"i8":9223372036854775807,');
    expect(row!.value).toContain('"a_2d":[[1,2],[3,9223372036854775807]]');
    const after = envelope(row!).after!;
    expect(after).toEqual({
      id: 1,
      i2: -32768,
      i4: 2147483647,
      i8: INT64_MAX_PARSED,
      num: '3.14159265358979323846264338327950288419716939937510',
      num_big: '12345678901234567890123456789012345678.12345678901234567890',
      f4: 3.4028235e38,
      f8: 1.7976931348623157e308,
      f8_nan: 'NaN',
      f8_inf: '-Infinity',
      b: true,
      t: 'quote " backslash \\ tab \t é ✓ 𝄞',
      vc: 'varchar',
      ch: 'ab   ',
      by: Buffer.from([0x00, 0xff, 0x10]).toString('base64'),
      u: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
      j: '{"big": 123456789012345678901234567890, "f": 1.10}',
      jb: '{"big": 123456789012345678901234567890}',
      d: 19782,
      d_bc: -735160,
      tm: 86399999999,
      ttz: '04:45:30.123456Z',
      ts: 1704164645123456,
      ts_inf: INT64_MAX_PARSED,
      tstz: '2024-01-02T03:04:05.123456Z',
      iv: 'P1Y2M3DT4H5M6.789S',
      a_int: [1, null, 3],
      a_text: ['a,b', 'c"d', null, 'NULL'],
      a_2d: [
        [1, 2],
        [3, INT64_MAX_PARSED],
      ],
      a_enum: ['happy', 'sad'],
      dom: '12.50',
      a_dom: ['1.50', '2.00'],
      mood_col: 'sad',
      ip: '192.168.0.1/24',
      net: '10.0.0.0/8',
      nothing: null,
    });
    const empty = envelope(nulls!).after!;
    expect(Object.entries(empty).filter(([k, v]) => k !== 'id' && v !== null)).toEqual([]);
  });

  it('matches what PostgreSQL itself computes for dates, times and bytes', async () => {
    await db.query(
      `insert into all_types (id, d, ts, tstz, by) values (3, '1969-07-20', '1969-07-20 20:17:40.000001', '1969-07-20 20:17:40.5-04', decode('deadbeef', 'hex'))`,
    );
    const records = await waitForRecords(running.log, 'types.public.all_types', 3);
    const after = envelope(records[2]!).after!;
    const expected = await db.query<{ d: number; ts: string; by: string }>(`
      select (date '1969-07-20' - date '1970-01-01') as d,
             (extract(epoch from timestamp '1969-07-20 20:17:40.000001') * 1000000)::bigint::text as ts,
             encode(decode('deadbeef', 'hex'), 'base64') as by`);
    expect(after.d).toBe(expected.rows[0]!.d);
    expect(String(after.ts)).toBe(expected.rows[0]!.ts);
    expect(after.by).toBe(expected.rows[0]!.by);
    expect(after.tstz).toBe('1969-07-21T00:17:40.5Z');
  });
});
