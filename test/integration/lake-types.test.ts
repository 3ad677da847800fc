/**
 * Lake column types through the whole pipeline, checked against the source by SQL: int8 beyond
 * 2^53 and numeric(30,10) exact, timestamptz/timestamp/date as DuckDB TIMESTAMPTZ/TIMESTAMP/DATE
 * (Parquet timestamp and date types), widening ALTERs that keep the sink going, and incompatible
 * ones (int → text, numeric → double) that stop it with the column and both types named.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { asyncBufferFromFile, parquetMetadataAsync } from 'hyparquet';
import { afterAll, describe, expect, it } from 'vitest';
import { LakeCatalog } from '../../src/sinks/lake/lake-catalog.ts';
import { queryLake } from '../../src/sinks/lake/lake-query.ts';
import { tempDirs, waitFor } from '../support/capture-harness.ts';
import { type CliProcess, cleanCliEnv, cli, startCli } from '../support/cli.ts';
import { createDatabase, PG_VERSIONS, type TestDatabase } from '../support/databases.ts';

const ENV = cleanCliEnv({
  TRIBUTARY_CONSUMERS_YIELD_TO_CAPTURE: 'never',
  TRIBUTARY_CONSUMERS_NICENESS: '0',
});
const dirs = tempDirs('lake-types-');
const started: CliProcess[] = [];
let db: TestDatabase | undefined;

afterAll(async () => {
  for (const p of started.splice(0)) {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await p.exited;
  }
  await db?.drop();
  dirs.removeAll();
});

const text = (rows: Record<string, unknown>[]) =>
  rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v === null ? null : String(v)])));

async function lakeRows(root: string, sql: string) {
  const r = await queryLake(root, sql);
  return r.rows.map((row) => Object.fromEntries(r.columns.map((c, i) => [c, row[i] ?? null])));
}

// The same rows as text on both sides: PostgreSQL's and DuckDB's text forms made to agree.
// Times as epoch microseconds on both sides (the two print BC years differently), floats as float8.
const SOURCE_T = `select id::text, big::text, amt::text, (extract(epoch from ts) * 1000000)::bigint::text as ts,
  (extract(epoch from lts) * 1000000)::bigint::text as lts, d::text, f::float8::text as f, n::text, s from t order by id`;
const LAKE_T = `select id::VARCHAR id, big::VARCHAR big, amt::VARCHAR amt, epoch_us(ts)::VARCHAR ts,
  epoch_us(lts)::VARCHAR lts, d::VARCHAR d, f::DOUBLE::VARCHAR f, n::VARCHAR n, s from silver.t order by id`;

describe.each(PG_VERSIONS.slice(-1))('lake types on PostgreSQL %i', (version) => {
  it('keeps int8 and numeric exact, stores dates and times as such, widens, and stops on incompatible changes', async () => {
    db = await createDatabase(version, 'laketypes');
    await db.query(`create table t (id int primary key, big int8, amt numeric(30,10), ts timestamptz, lts timestamp,
      d date, f float4, n int4, s varchar(10), secret int4 default 42)`);
    await db.query('create table a (id int primary key, v int4)');
    await db.query('create table b (id int primary key, v numeric(12,2))');
    const dataDir = dirs.make();
    const lakeB = join(dirs.make(), 'lake-b');
    const configFile = join(dirs.make(), 'tributary.config.json');
    writeFileSync(
      configFile,
      JSON.stringify({
        // A masked int column arrives as a string: the lake keeps it as text, not a failed cast.
        mask: { columns: ['public.t.secret'] },
        sinks: {
          lakea: { kind: 'lake', tables: ['public.t', 'public.a'], batchSize: 200 },
          lakeb: { kind: 'lake', tables: ['public.b'], path: lakeB },
        },
      }),
    );
    const proc = startCli(
      ['run', '--config', configFile, '--source', db.url, '--data-dir', dataDir, '--slot', db.name].concat([
        '--publication',
        db.name,
        '--topic-prefix',
        'lt',
        '--consumers',
        dirs.make(),
      ]),
      { env: ENV },
    );
    started.push(proc);
    await waitFor(
      () => proc.stderr.includes('"msg":"replication started"') || proc.child.exitCode !== null,
      'replication to start',
      60_000,
    );
    expect(proc.child.exitCode, proc.stderr).toBeNull();
    const rootA = join(dataDir, 'lake');

    const caughtUp = async (root: string, sourceSql: string, lakeSql: string) => {
      const want = text((await db!.query(sourceSql)).rows);
      let got: unknown;
      await waitFor(
        async () => {
          try {
            got = text(await lakeRows(root, lakeSql));
            return JSON.stringify(got) === JSON.stringify(want);
          } catch (error) {
            got = String(error);
            return false;
          }
        },
        'the lake to equal the source',
        60_000,
      ).catch((error) => expect(got, `${String(error)}\n${proc.stderr.slice(-3000)}`).toEqual(want));
    };

    await db.query(`insert into t values
      (1, 9007199254740993, 12345678901234567890.1234567891, '2024-01-02 08:34:05.123456+05:30', '2024-01-02 03:04:05.123456',
       '2024-01-02', 1.5, 7, 'abc'),
      (2, -9223372036854775808, -0.0000000001, '1969-12-31 23:59:59.999999+00', '0044-03-15 12:00:00 BC', '1969-12-31',
       -0.25, -1, ''),
      (3, 9223372036854775807, 0, '2262-04-11 23:47:16.854775+00', '2262-04-11 23:47:16', '9999-12-31', 3e38, 2147483647, null),
      (4, null, null, null, null, null, null, null, null)`);
    await db.query('insert into a values (1, 10), (2, 20); insert into b values (1, 1.25), (2, 2.50)');
    await caughtUp(rootA, SOURCE_T, LAKE_T);
    // The Parquet types: DuckDB reads TIMESTAMPTZ, TIMESTAMP, DATE and DECIMAL from the files.
    const types = await lakeRows(
      rootA,
      "select column_name, column_type from (describe silver.t) where column_name in ('big','amt','ts','lts','d','f')",
    );
    expect(Object.fromEntries(types.map((r) => [r.column_name, r.column_type]))).toEqual({
      big: 'BIGINT',
      amt: 'DECIMAL(30,10)',
      ts: 'TIMESTAMP WITH TIME ZONE',
      lts: 'TIMESTAMP',
      d: 'DATE',
      f: 'FLOAT',
    });
    // A second reader sees Parquet's own date and timestamp types in the files.
    const catalog = new LakeCatalog(join(rootA, 'catalog.db'), { readonly: true });
    const silverFile = [...catalog.allPaths()].find((p) => p.startsWith('silver/t/'))!;
    catalog.close();
    const meta = await parquetMetadataAsync(await asyncBufferFromFile(join(rootA, silverFile)));
    const schema = Object.fromEntries(meta.schema.map((e) => [e.name, e]));
    expect(schema.ts?.logical_type).toMatchObject({
      type: 'TIMESTAMP',
      isAdjustedToUTC: true,
      unit: 'MICROS',
    });
    expect(schema.lts?.logical_type).toMatchObject({
      type: 'TIMESTAMP',
      isAdjustedToUTC: false,
      unit: 'MICROS',
    });
    expect(schema.d?.converted_type).toBe('DATE');
    expect(schema.amt).toMatchObject({ converted_type: 'DECIMAL', precision: 30, scale: 10 });
    // SQL over them works naturally and agrees with the source.
    const [lake] = await lakeRows(
      rootA,
      `select sum(big) filter (where id = 1)::VARCHAR as big, sum(amt)::VARCHAR as amt,
         count(*) filter (where ts < TIMESTAMPTZ '2000-01-01 00:00:00+00') as early, max(d)::VARCHAR as d from silver.t`,
    );
    const { rows: src } = await db.query(
      `select sum(big) filter (where id = 1)::text as big, sum(amt)::text as amt,
         count(*) filter (where ts < '2000-01-01 00:00:00+00') as early, max(d)::text as d from t`,
    );
    expect(text([lake!])).toEqual(text(src));
    expect(await lakeRows(rootA, 'select distinct secret from silver.t')).toEqual([{ secret: '****' }]);
    // Bronze keeps the exact digits of the record too.
    const [bronze] = await lakeRows(
      rootA,
      "select json_extract_string(after, '$.big') as big from bronze.t where after->>'id' = '1'",
    );
    expect(bronze!.big).toBe('9007199254740993');

    // Widening ALTERs: the sink goes on.
    await db.query(
      'alter table t alter column n type int8, alter column f type float8, alter column s type text',
    );
    await db.query('alter table t alter column amt type numeric(32,12)');
    await db.query(`insert into t values (5, 9007199254740995, 12345678901234567890.123456789012, '2026-06-01 00:00:00+00',
      '2026-06-01 00:00:00', '2026-06-01', 0.1, 9007199254740993, 'a much longer text than ten')`);
    await db.query('update t set n = n + 1 where id = 1');
    await caughtUp(rootA, SOURCE_T, LAKE_T);

    // Both sinks hold their rows before the incompatible change: a batch that also held the change
    // stops before writing any of them (seen under load: silver.b did not exist yet).
    await caughtUp(rootA, 'select id, v from a order by id', 'select id, v from silver.a order by id');
    await caughtUp(
      lakeB,
      'select id, v::text v from b order by id',
      'select id, v::VARCHAR v from silver.b order by id',
    );
    // Incompatible: int → text (sink lakea) and numeric → double (sink lakeb) stop each sink.
    await db.query('alter table a alter column v type text');
    await db.query("insert into a values (3, 'x')");
    await db.query('alter table b alter column v type float8');
    await db.query('insert into b values (3, 3.5)');
    const failed = async () => {
      const r = await cli(['consumers', '--json', '--data-dir', dataDir], { env: ENV });
      return (
        JSON.parse(r.stdout || '[]') as { name: string; state: string; failure?: { message: string } }[]
      ).filter((s) => s.state === 'failed');
    };
    let stopped: Awaited<ReturnType<typeof failed>> = [];
    await waitFor(
      async () => {
        stopped = await failed();
        return stopped.length === 2;
      },
      'both lake sinks to stop',
      60_000,
    ).catch((error) => expect(stopped, `${String(error)}\n${proc.stderr.slice(-3000)}`).toHaveLength(2));
    const message = (name: string) => stopped.find((s) => s.name === name)?.failure?.message ?? '';
    expect(message('lakea')).toMatch(/column v changed type from integer \(BIGINT\) to text \(VARCHAR\)/);
    expect(message('lakeb')).toMatch(
      /column v changed type from numeric\(12,2\) \(DECIMAL\(12,2\)\) to double precision \(DOUBLE\)/,
    );
    expect(message('lakea')).toMatch(/consumers restart lakea/);
    // Nothing converted, nothing dead-lettered: the lakes hold the rows before the change.
    expect(text(await lakeRows(rootA, 'select id, v from silver.a order by id'))).toEqual([
      { id: '1', v: '10' },
      { id: '2', v: '20' },
    ]);
    expect(text(await lakeRows(lakeB, 'select id, v::VARCHAR v from silver.b order by id'))).toEqual([
      { id: '1', v: '1.25' },
      { id: '2', v: '2.50' },
    ]);
    for (const sink of ['lakea', 'lakeb']) {
      const dlq = await cli(['dlq', 'list', sink, '--status', 'all', '--json', '--data-dir', dataDir], {
        env: ENV,
      });
      expect(dlq.code, dlq.stderr).toBe(0);
      expect(JSON.parse(dlq.stdout)).toEqual([]);
    }
  }, 150_000);
});
