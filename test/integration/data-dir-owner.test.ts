/**
 * One data directory, one owner: a second `run` is refused at once naming the first, before it
 * touches a slot; read-only commands work beside the owner; `snapshot` finds the running
 * pipeline's source from the data directory; after kill -9 of the owner a new one starts.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OWNER_FILE } from '../../src/cli/data-dir-owner.ts';
import { readTopic, tempDir, waitFor, withLog } from '../support/capture-harness.ts';
import { type CliProcess, type CliResult, cli, startCli } from '../support/cli.ts';
import { createDatabase, type TestDatabase } from '../support/databases.ts';

const ENV: NodeJS.ProcessEnv = { DATABASE_URL: '', TRIBUTARY_DATA_DIR: '', TRIBUTARY_LOG_LEVEL: 'info' };
const started: CliProcess[] = [];
const dir = tempDir('tributary-owner-');
let db: TestDatabase;

function start(args: string[]): CliProcess {
  const proc = startCli(args, { env: ENV });
  started.push(proc);
  return proc;
}

function run(args: string[]): Promise<CliResult> {
  return cli(args, { env: ENV, timeoutMs: 60_000 });
}

async function streaming(proc: CliProcess): Promise<void> {
  await waitFor(
    () => proc.stderr.includes('"msg":"replication started"') || proc.child.exitCode !== null,
    'replication to start',
    60_000,
  );
  if (!proc.stderr.includes('"msg":"replication started"')) throw new Error(`the run exited: ${proc.stderr}`);
}

beforeAll(async () => {
  db = await createDatabase(15, 'owner');
  await db.query('create table items (id int primary key, v text)');
  await db.query("insert into items select g, 'v' || g from generate_series(1, 50) g");
}, 60_000);

afterAll(async () => {
  await Promise.all(
    started.map(async (p) => {
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
      await p.exited;
    }),
  );
  await db?.drop();
  dir.remove();
});

const runArgs = (slot: string) => [
  'run',
  '--source',
  db.url,
  '--data-dir',
  dir.path,
  '--slot',
  slot,
  '--snapshot-mode',
  'never',
  '--topic-prefix',
  'o',
];

describe('the owner of a data directory', () => {
  it('refuses a second run at once, serves read-only commands and snapshot, and passes on after kill -9', async () => {
    const first = start(runArgs('owner_a'));
    await streaming(first);
    await db.query("insert into items values (51, 'after start')");
    await waitFor(
      async () => (await withLog(dir.path, (log) => readTopic(log, 'o.public.items'))).length === 1,
      'the insert to be captured',
    );

    // A second run on the same data dir: refused before it makes its slot, naming the owner.
    const second = await run(runArgs('owner_b'));
    expect(second.code).not.toBe(0);
    expect(second.stderr).toContain('DATA_DIR_OWNED');
    expect(second.stderr).toContain(`\`tributary run\` (pid ${first.child.pid}, since `);
    expect(second.stderr).not.toContain('replication started');
    const slots = await db.query("select 1 from pg_replication_slots where slot_name = 'owner_b'");
    expect(slots.rowCount).toBe(0);

    // Read-only commands work beside the owner.
    const topics = await run(['topics', '--data-dir', dir.path]);
    expect(topics.code, topics.stderr).toBe(0);
    expect(topics.stdout).toContain('o.public.items');
    const status = await run(['status', '--data-dir', dir.path, '--json']);
    expect(status.code, status.stderr).toBe(0);
    const read = await run(['read', 'o.public.items', '--data-dir', dir.path]);
    expect(read.code, read.stderr).toBe(0);
    expect(read.stdout.trim().split('\n')).toHaveLength(1);

    // snapshot without --source: the running pipeline's source, from the data directory.
    expect(statSync(join(dir.path, OWNER_FILE)).mode & 0o777).toBe(0o600);
    const snapshot = await run(['snapshot', 'public.items', '--where', 'id <= 10', '--data-dir', dir.path]);
    expect(snapshot.code, snapshot.stderr).toBe(0);
    expect(snapshot.stdout).toContain('requested a snapshot of public.items where id <= 10');
    await waitFor(
      async () =>
        (await withLog(dir.path, (log) => readTopic(log, 'o.public.items'))).filter(
          (r) => r.value !== null && (JSON.parse(r.value) as { op: string }).op === 'r',
        ).length === 10,
      'the backfill of 10 rows',
    );

    // kill -9: the OS releases the lock; the stale owner file names no one.
    first.child.kill('SIGKILL');
    await first.exited;
    const noSource = await run(['snapshot', 'public.items', '--data-dir', dir.path]);
    expect(noSource.code).not.toBe(0);
    expect(noSource.stderr).toContain('no running pipeline');
    const third = start(runArgs('owner_a'));
    await streaming(third);
    third.child.kill('SIGTERM');
    const stopped = await third.exited;
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(existsSync(join(dir.path, OWNER_FILE))).toBe(false);
  });
});
