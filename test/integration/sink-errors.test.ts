import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { tempDirs, waitFor } from '../support/capture-harness.ts';
import { type CliProcess, cli, startCli } from '../support/cli.ts';
import { createDatabase, type TestDatabase } from '../support/databases.ts';
import { freePort } from '../support/pg-cluster.ts';

const ENV: NodeJS.ProcessEnv = {
  DATABASE_URL: '',
  TRIBUTARY_DATA_DIR: '',
  TRIBUTARY_SLOT: '',
  TRIBUTARY_HTTP_PORT: '0',
  TRIBUTARY_CONSUMERS_NICENESS: '0',
  TRIBUTARY_CONSUMERS_YIELD_TO_CAPTURE: 'never',
};
const dirs = tempDirs('sink-errors-');
const dbs: TestDatabase[] = [];
const started: CliProcess[] = [];
afterEach(async () => {
  for (const p of started.splice(0)) {
    if (p.child.exitCode === null) p.child.kill('SIGKILL');
    await p.exited;
  }
  for (const db of dbs.splice(0)) await db.drop();
});
afterAll(() => dirs.removeAll());

function runArgs(source: TestDatabase, dataDir: string): string[] {
  return [
    'run',
    '--source',
    source.url,
    '--data-dir',
    dataDir,
    '--slot',
    source.name,
    '--publication',
    source.name,
  ];
}

describe('sink errors', () => {
  it('refuses to start with an unknown table or column, or an unreachable target, naming the field', async () => {
    const source = await createDatabase(18, 'sinkerr');
    dbs.push(source);
    await source.query('create table items (id int primary key, name text)');
    const dataDir = dirs.make();
    const start = (sinks: unknown) =>
      cli(runArgs(source, dataDir), { env: { ...ENV, TRIBUTARY_SINKS: JSON.stringify(sinks) } });
    const unknownTable = await start({ v: { kind: 'table', tables: ['public.nope'], target: source.url } });
    expect(unknownTable.code).not.toBe(0);
    expect(unknownTable.stderr).toContain('sinks.v.tables: no table public.nope in the source database');
    const unknownColumn = await start({
      v: {
        kind: 'table',
        tables: ['items'],
        target: source.url,
        mapping: { 'public.items': { columns: ['nam'] } },
      },
    });
    expect(unknownColumn.stderr).toContain(
      'sinks.v.mapping.public.items.columns: no column "nam" in public.items',
    );
    const port = await freePort();
    const unreachable = await start({
      v: { kind: 'table', tables: ['items'], target: `postgres://u:secret-pw@127.0.0.1:${port}/x` },
    });
    expect(unreachable.stderr).toContain(
      `sinks.v.target: cannot connect to postgresql://127.0.0.1:${port}/x`,
    );
    expect(unreachable.stderr).not.toContain('secret-pw');
    const redis = await start({
      r: { kind: 'redis', tables: ['items'], url: `redis://127.0.0.1:${port}/0` },
    });
    expect(redis.stderr).toContain('sinks.r.url: cannot connect to Redis');
    const option = await start({
      w: { kind: 'webhook', tables: ['items'], url: 'http://127.0.0.1:1/x', secretEnv: 'NOT_SET_ANYWHERE' },
    });
    expect(option.stderr).toContain('sinks.w.secretEnv: the variable NOT_SET_ANYWHERE is not set');
    // Nothing started: no slot was created.
    const slots = await source.query(
      'select count(*)::int as n from pg_replication_slots where slot_name = $1',
      [source.name],
    );
    expect(slots.rows[0]?.n).toBe(0);
  });

  it('dead-letters a value the target cannot hold with the reason, applies the rest, and replays it once fixed', async () => {
    const source = await createDatabase(18, 'sinkerr');
    const target = await createDatabase(18, 'sinkerrtgt');
    dbs.push(source, target);
    await source.query('create table items (id int primary key, name text)');
    await target.query('create table items (id int primary key, name varchar(5))');
    const dataDir = dirs.make();
    const sinks = {
      'items-copy': { kind: 'table', tables: ['items'], target: target.url, retryAttempts: 1 },
    };
    const proc = startCli(runArgs(source, dataDir), {
      env: { ...ENV, TRIBUTARY_SINKS: JSON.stringify(sinks) },
    });
    started.push(proc);
    await waitFor(
      () => proc.stderr.includes('"msg":"replication started"') || proc.child.exitCode !== null,
      'start',
      60_000,
    );
    await source.query(`insert into items values (1, 'ab'), (2, 'far too long'), (3, 'cd')`);
    const names = async () => (await target.query('select id, name from items order by id')).rows;
    await waitFor(async () => (await names()).length === 2, 'the two good rows', 60_000).catch((e) => {
      const log = readFileSync(join(dataDir, 'logs', 'items-copy.log'), 'utf8');
      throw new Error(`${e.message}\n${proc.stderr.slice(-2000)}\n${log.slice(-5000)}`);
    });
    expect(await names()).toEqual([
      { id: 1, name: 'ab' },
      { id: 3, name: 'cd' },
    ]);
    const list = await waitFor(
      async () => {
        const r = await cli(['dlq', 'list', 'items-copy', '--data-dir', dataDir, '--json'], { env: ENV });
        const letters = JSON.parse(r.stdout) as { id: number; error: string }[];
        return letters.length === 1 ? letters : undefined;
      },
      'the dead letter',
      30_000,
    );
    expect(list[0]?.error).toMatch(
      /target table items .*cannot hold a value.*value too long for type character varying\(5\)/,
    );
    await target.query('alter table items alter column name type text');
    const replay = await cli(['dlq', 'replay', 'items-copy', '--data-dir', dataDir], { env: ENV });
    expect(replay.stdout + replay.stderr).toContain('replayed 1 of 1');
    expect(await names()).toEqual([
      { id: 1, name: 'ab' },
      { id: 2, name: 'far too long' },
      { id: 3, name: 'cd' },
    ]);
  });
});
