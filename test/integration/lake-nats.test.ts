/**
 * The lake sink of `tributary run --log nats://` types its columns by the capture's schema
 * history read from the NATS log, as on the embedded log (it typed them by their JSON values
 * there: a numeric(30,10) or a timestamptz became text), and keeps int8 beyond 2^53 and numeric
 * exact, checked against the source by SQL.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { queryLake } from '../../src/sinks/lake/lake-query.ts';
import { tempDirs, waitFor } from '../support/capture-harness.ts';
import { type CliProcess, startCli } from '../support/cli.ts';
import { createDatabase, PG_VERSIONS, type TestDatabase } from '../support/databases.ts';
import { NatsCluster } from '../support/nats-cluster.ts';

const dirs = tempDirs('lake-nats-');
let db: TestDatabase;
let cluster: NatsCluster;
let proc: CliProcess | undefined;
beforeAll(async () => {
  [db, cluster] = await Promise.all([createDatabase(PG_VERSIONS.at(-1)!, 'lakenats'), NatsCluster.start()]);
}, 60_000);
afterAll(async () => {
  proc?.child.kill('SIGKILL');
  await proc?.exited;
  await db?.drop();
  await cluster?.stop();
  dirs.removeAll();
});

it('types the lake columns by the schema history in the NATS log', { timeout: 120_000 }, async () => {
  await db.query(`create table t (id int primary key, big int8, amt numeric(30,10), ts timestamptz, d date)`);
  const dataDir = dirs.make();
  const configFile = join(dirs.make(), 'tributary.config.json');
  writeFileSync(configFile, JSON.stringify({ sinks: { lake: { kind: 'lake', tables: ['public.t'] } } }));
  proc = startCli(
    [
      ...['run', '--config', configFile, '--source', db.url, '--data-dir', dataDir, '--log', cluster.url],
      ...['--slot', db.name, '--publication', db.name, '--topic-prefix', 'ln', '--consumers', dirs.make()],
    ],
    { env: { TRIBUTARY_NATS_LOG_NAME: 'lakenats', TRIBUTARY_HTTP_PORT: '0', TRIBUTARY_DATA_DIR: '' } },
  );
  await waitFor(
    () => proc!.stderr.includes('"msg":"replication started"') || proc!.child.exitCode !== null,
    'replication to start',
    60_000,
  );
  expect(proc.child.exitCode, proc.stderr).toBeNull();
  await db.query(`insert into t values
    (1, 9007199254740993, 12345678901234567890.1234567891, '2024-01-02 08:34:05.123456+05:30', '2024-01-02'),
    (2, -9223372036854775808, -0.0000000001, '1969-12-31 23:59:59.999999+00', '1969-12-31'),
    (3, null, null, null, null)`);
  const root = join(dataDir, 'lake');
  const want = (
    await db.query(`select id::text, big::text, amt::text, (extract(epoch from ts) * 1000000)::bigint::text as ts,
      d::text from t order by id`)
  ).rows;
  const lake = async (sql: string) => {
    const r = await queryLake(root, sql);
    return r.rows.map((row) =>
      Object.fromEntries(
        r.columns.map((c, i) => [c, row[i] === null || row[i] === undefined ? null : String(row[i])]),
      ),
    );
  };
  let got: unknown;
  await waitFor(
    async () => {
      got = await lake(
        'select id::VARCHAR id, big::VARCHAR big, amt::VARCHAR amt, epoch_us(ts)::VARCHAR ts, d::VARCHAR d from silver.t order by id',
      ).catch((error: unknown) => String(error));
      return JSON.stringify(got) === JSON.stringify(want);
    },
    'the lake to equal the source',
    60_000,
  ).catch((error) => expect(got, `${String(error)}\n${proc!.stderr.slice(-3000)}`).toEqual(want));
  const types = await lake(
    "select column_name, column_type from (describe silver.t) where column_name in ('big','amt','ts','d')",
  );
  expect(Object.fromEntries(types.map((r) => [r.column_name, r.column_type]))).toEqual({
    big: 'BIGINT',
    amt: 'DECIMAL(30,10)',
    ts: 'TIMESTAMP WITH TIME ZONE',
    d: 'DATE',
  });
});
