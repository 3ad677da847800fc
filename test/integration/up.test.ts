import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredRecord } from '../../src/core/record.ts';
import { envelope, readTopic, recordCount, tempDir, waitFor, withLog } from '../support/capture-harness.ts';
import { type CliProcess, type CliResult, cli, startCli } from '../support/cli.ts';
import { createDatabase, type TestDatabase } from '../support/databases.ts';

const TOPICS = ['tributary.public.orders', 'tributary.public.order_items', 'tributary.public.products'];
const PROGRESS = /^streaming · [\d,]+ tx · [\d,]+ records · lsn [0-9A-F]+\/[0-9A-F]+ · workload [\d,]+ tx$/m;
const ENV: NodeJS.ProcessEnv = { DATABASE_URL: '', TRIBUTARY_DATA_DIR: '', TRIBUTARY_SLOT: '' };

const started: CliProcess[] = [];

/**
 * `up` in its own process group, so that SIGINT can go to the whole group as Ctrl-C in a
 * terminal does: PostgreSQL must not get it before the capture has stopped.
 */
function startInOwnGroup(args: string[]): CliProcess {
  const proc = startCli(args, { env: ENV, detached: true });
  started.push(proc);
  return proc;
}

function start(args: string[]): CliProcess {
  const proc = startCli(args, { env: ENV });
  started.push(proc);
  return proc;
}

/** Sends the signal and waits for the exit, failing (not hanging) if it does not come. */
async function interrupt(proc: CliProcess, send: () => void, timeoutMs = 90_000): Promise<CliResult> {
  send();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no exit ${timeoutMs} ms after SIGINT:\n${proc.stderr}`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([proc.exited, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Processes whose command line mentions the data directory (postgres, pg_ctl, tributary). */
function processesUsing(dir: string): number[] {
  const out = spawnSync('pgrep', ['-f', dir], { encoding: 'utf8' });
  return out.stdout
    .split('\n')
    .filter(Boolean)
    .map(Number)
    .filter((pid) => pid !== process.pid);
}

async function counts(dataDir: string): Promise<number[]> {
  if (!existsSync(join(dataDir, 'log.sqlite'))) return TOPICS.map(() => 0);
  return withLog(dataDir, (log) => Promise.all(TOPICS.map((t) => recordCount(log, t))));
}

async function allRecords(dataDir: string): Promise<StoredRecord[]> {
  return withLog(dataDir, async (log) => (await Promise.all(TOPICS.map((t) => readTopic(log, t)))).flat());
}

/** Each change event's identity in the Debezium value: its transaction and place in it. */
function eventIds(records: StoredRecord[]): string[] {
  return records
    .filter((r) => r.value !== null)
    .map((r) => {
      const tx = envelope(r).transaction;
      if (!tx) throw new Error(`record ${r.topic}/${r.offset} has no transaction`);
      return `${tx.id}#${tx.total_order}`;
    });
}

afterAll(async () => {
  for (const p of started) {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await p.exited;
  }
});

describe('tributary up with the embedded PostgreSQL', () => {
  const dir = tempDir('tributary-up-');
  let firstRun: string[] = [];

  afterAll(async () => {
    // After a failed test, do not leave the embedded server running.
    for (const pid of processesUsing(dir.path)) {
      try {
        process.kill(pid, 'SIGQUIT');
      } catch {
        // already gone
      }
    }
    await waitFor(() => processesUsing(dir.path).length === 0, 'the embedded PostgreSQL to exit');
    dir.remove();
  });

  it('starts PostgreSQL with the demo, captures the workload, and stops cleanly on Ctrl-C', async () => {
    const up = startInOwnGroup(['up', '--data-dir', dir.path, '--rate', '50']);
    await waitFor(() => PROGRESS.test(up.stderr) || up.child.exitCode !== null, 'a progress line', 180_000);
    expect(up.stderr).toMatch(PROGRESS);
    expect(up.stderr).toContain(`starting embedded PostgreSQL in ${dir.path}/postgres`);
    await waitFor(
      async () => (await counts(dir.path)).every((n) => n > 0),
      'records of orders, order_items and products',
      180_000,
    );
    expect(processesUsing(dir.path).length).toBeGreaterThan(0);
    // The demo's lake, with no setup: silver rows and a gold model, through `tributary sql`.
    const lake = await waitFor(
      async () => {
        // Cheap until the lake has its catalog; then a query a second (each one a process).
        if (!existsSync(join(dir.path, 'lake', 'catalog.db'))) return undefined;
        const r = await cli(
          [
            'sql',
            'select (select count(*) from silver.orders) as orders, (select count(*) from gold.sales_daily) as days',
            '--format',
            'json',
            '--data-dir',
            dir.path,
          ],
          { env: ENV },
        );
        const [row] = r.code === 0 ? (JSON.parse(r.stdout) as { orders: number; days: number }[]) : [];
        if (Number(row?.orders) > 0 && Number(row?.days) > 0) return row;
        await new Promise((resolve) => setTimeout(resolve, 1000));
        return undefined;
      },
      'silver.orders and gold.sales_daily in the demo lake',
      180_000,
    );
    expect(Number(lake.days)).toBeGreaterThan(0);

    // Ctrl-C: SIGINT to the whole process group.
    const exit = await interrupt(up, () => process.kill(-up.child.pid!, 'SIGINT'));
    expect(exit.code, exit.stderr).toBe(0);
    expect(exit.stderr).toContain('stopping ...');
    expect(exit.stderr).toMatch(/stopped: [\d,]+ records captured in this run/);
    // No error and no lost connection: PostgreSQL stayed up until the capture had stopped.
    expect(exit.stderr).not.toMatch(/error|reconnecting/);
    expect(processesUsing(dir.path)).toEqual([]);

    firstRun = eventIds(await allRecords(dir.path));
    expect(firstRun.length).toBeGreaterThan(0);
    expect(new Set(firstRun).size).toBe(firstRun.length);
  });

  it('resumes on the same data directory without repeating a record', async () => {
    expect(firstRun.length).toBeGreaterThan(0);
    const before = await counts(dir.path);
    const up = start(['up', '--data-dir', dir.path, '--rate', '50']);
    await waitFor(
      async () => (await counts(dir.path)).every((n, i) => n > before[i]!) || up.child.exitCode !== null,
      'new records in every topic',
      180_000,
    );
    const exit = await interrupt(up, () => up.child.kill('SIGINT'));
    expect(exit.code, exit.stderr).toBe(0);
    expect(processesUsing(dir.path)).toEqual([]);

    const ids = eventIds(await allRecords(dir.path));
    expect(new Set(ids).size).toBe(ids.length);
    const seen = new Set(firstRun);
    expect(ids.filter((id) => !seen.has(id)).length).toBeGreaterThan(0);
    expect(ids.filter((id) => seen.has(id))).toHaveLength(firstRun.length);
  });
});

describe('tributary up --source', () => {
  let db: TestDatabase;
  const dir = tempDir('tributary-up-source-');

  beforeAll(async () => {
    db = await createDatabase(15, 'up_source');
    await db.query('create table items (id int primary key, name text)');
  });
  afterAll(async () => {
    await db?.drop();
    dir.remove();
  });

  it('captures an existing database, without embedded PostgreSQL or workload', async () => {
    const up = start(['up', '--source', db.url, '--data-dir', dir.path, '--slot', 'up_source']);
    await waitFor(
      () => up.stderr.includes(`capturing into ${dir.path}`) || up.child.exitCode !== null,
      'capture to start',
      120_000,
    );
    expect(up.stderr).toContain(`capturing into ${dir.path}`);
    await db.query(`insert into items values (1, 'from up')`);
    const [record] = await waitFor(
      async () => {
        if (!existsSync(join(dir.path, 'log.sqlite'))) return undefined;
        const records = await withLog(dir.path, (log) => readTopic(log, 'tributary.public.items'));
        return records.length > 0 ? records : undefined;
      },
      'the insert in the log',
      120_000,
    );
    expect(envelope(record!)).toMatchObject({ op: 'c', after: { id: 1, name: 'from up' } });

    const exit = await interrupt(up, () => up.child.kill('SIGINT'));
    expect(exit.code, exit.stderr).toBe(0);
    expect(exit.stderr).not.toContain('embedded PostgreSQL');
    expect(exit.stderr).not.toContain('workload');
    expect(existsSync(join(dir.path, 'postgres'))).toBe(false);
    const topics = await withLog(dir.path, async (log) => (await log.topics()).map((t) => t.topic));
    expect(topics).toEqual(['tributary.public.items', 'tributary.schema-history']);
  });
});
