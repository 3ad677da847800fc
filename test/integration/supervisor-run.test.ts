import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { distinctOffsets, handled, writeConsumer } from '../fixtures/consumers/supervisor-fixtures.ts';
import { recordCount, tempDirs, waitFor, withLog } from '../support/capture-harness.ts';
import { type CliProcess, cleanCliEnv, cli, startCli } from '../support/cli.ts';
import { createDatabase, PG_VERSIONS, type TestDatabase } from '../support/databases.ts';

const ENV = cleanCliEnv();
const dirs = tempDirs('supervisor-run-');
const started: CliProcess[] = [];
let db: TestDatabase | undefined;

afterEach(async () => {
  for (const p of started.splice(0)) {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await p.exited;
  }
  await db?.drop();
  db = undefined;
});
afterAll(() => dirs.removeAll());

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// One version: the consumer side does not depend on the server's version (capture tests cover both).
describe.each(PG_VERSIONS.slice(-1))('tributary run --consumers on PostgreSQL %i', (version) => {
  it('runs the consumers of a folder on the captured changes, and drains them before the capture stops', async () => {
    db = await createDatabase(version, 'suprun');
    await db.query('create table orders (id int primary key, total numeric(10,2))');
    const dataDir = dirs.make();
    const consumersDir = dirs.make();
    writeConsumer(consumersDir, 'order-copy', { topics: ['sup.public.orders'] });
    const proc = startCli(
      [
        'run',
        '--source',
        db.url,
        '--data-dir',
        dataDir,
        '--slot',
        db.name,
        '--publication',
        db.name,
        '--topic-prefix',
        'sup',
        '--partitions',
        '2',
        '--consumers',
        consumersDir,
      ],
      { env: ENV },
    );
    started.push(proc);
    await waitFor(
      () => proc.stderr.includes('"msg":"replication started"') || proc.child.exitCode !== null,
      'replication to start',
      120_000,
    );
    expect(proc.stderr).toContain(`consumers: order-copy (from ${consumersDir})`);
    for (let i = 0; i < 10; i++) {
      await db.query(
        `insert into orders select g, g * 1.5 from generate_series(${i * 50 + 1}, ${i * 50 + 50}) g`,
      );
    }
    await waitFor(() => distinctOffsets(handled(dataDir)) === 500, '500 changes handled', 120_000);
    const rows = handled(dataDir);
    expect(new Set(rows.map((r) => r.key)).size).toBe(500);
    expect(new Set(rows.map((r) => r.partition))).toEqual(new Set([0, 1]));

    const list = await cli(['consumers', '--json', '--data-dir', dataDir], { env: ENV });
    const [status] = JSON.parse(list.stdout) as { name: string; state: string; pids: number[] }[];
    expect(status).toMatchObject({ name: 'order-copy', state: 'running' });
    proc.child.kill('SIGTERM');
    const exit = await proc.exited;
    expect(exit.code, exit.stderr).toBe(0);
    for (const pid of status!.pids) expect(alive(pid)).toBe(false);
    expect(existsSync(join(dataDir, 'logs', 'order-copy.log'))).toBe(true);
    expect(await withLog(dataDir, (log) => recordCount(log, 'sup.public.orders'))).toBe(500);
    // The committed offsets cover everything: a restart would not hand a record again.
    const after = await cli(['consumers', '--json', '--data-dir', dataDir], { env: ENV });
    expect(JSON.parse(after.stdout)).toMatchObject([
      { name: 'order-copy', running: false, lag: { records: 0 } },
    ]);
  });
});
