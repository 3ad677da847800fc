import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Capture } from '../../src/capture/capture.ts';
import { readStatus } from '../../src/capture/capture-status.ts';
import { formatLsn, parseLsn } from '../../src/core/lsn.ts';
import type { StoredRecord } from '../../src/core/record.ts';
import { readTopic, recordCount, tempDir, waitFor, withLog } from '../support/capture-harness.ts';
import { type CliProcess, type CliResult, cli, startCli } from '../support/cli.ts';
import { createDatabase, PG_VERSIONS, type TestDatabase } from '../support/databases.ts';

/** Settings the tests give explicitly; blanked so that the caller's environment cannot leak in. */
const CLEAN_ENV: NodeJS.ProcessEnv = {
  DATABASE_URL: '',
  TRIBUTARY_DATA_DIR: '',
  TRIBUTARY_SLOT: '',
  TRIBUTARY_PUBLICATION: '',
  TRIBUTARY_TABLES: '',
  TRIBUTARY_TOPIC_PREFIX: '',
  TRIBUTARY_FORMAT: '',
  TRIBUTARY_PARTITIONS: '',
  TRIBUTARY_LOG_LEVEL: '',
};

/** Every CLI process a test starts; whatever is still running at the end is killed. */
const started: CliProcess[] = [];
afterAll(async () => {
  await Promise.all(
    started.map(async (p) => {
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
      await p.exited;
    }),
  );
});

function start(args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): CliProcess {
  const proc = startCli(args, { ...options, env: { ...CLEAN_ENV, ...options.env } });
  started.push(proc);
  return proc;
}

function run(args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<CliResult> {
  return cli(args, { ...options, env: { ...CLEAN_ENV, ...options.env }, timeoutMs: 120_000 });
}

/** Waits until the capture streams: the slot exists, so changes made from now on are captured. */
async function streaming(proc: CliProcess): Promise<void> {
  await waitFor(
    () => proc.stderr.includes('"msg":"replication started"') || proc.child.exitCode !== null,
    'replication to start',
    120_000,
  );
  if (!proc.stderr.includes('"msg":"replication started"'))
    throw new Error(`the capture exited: ${proc.stderr}`);
}

async function stop(proc: CliProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<CliResult> {
  proc.child.kill(signal);
  return proc.exited;
}

async function waitForCount(dataDir: string, topic: string, count: number): Promise<void> {
  await waitFor(
    async () =>
      existsSync(join(dataDir, 'log.sqlite')) &&
      (await withLog(dataDir, (log) => recordCount(log, topic))) >= count,
    `${count} records in ${topic}`,
    120_000,
  );
}

function lines(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function confirmedFlushLsn(db: TestDatabase, slot: string): Promise<string | null> {
  const result = await db.query<{ lsn: string | null }>(
    'select confirmed_flush_lsn::text as lsn from pg_replication_slots where slot_name = $1',
    [slot],
  );
  return result.rows[0]?.lsn ?? null;
}

async function slotExists(db: TestDatabase, slot: string): Promise<boolean> {
  const result = await db.query('select 1 from pg_replication_slots where slot_name = $1', [slot]);
  return result.rowCount === 1;
}

describe.each(PG_VERSIONS)('tributary run, topics and read on PostgreSQL %i', (version) => {
  let db: TestDatabase;
  const dir = tempDir('tributary-cli-');
  let result: CliResult;
  let records: { a: StoredRecord[]; b: StoredRecord[] };

  // One capture with the settings as flags: a few changes in a and b (captured) and c (not).
  beforeAll(async () => {
    db = await createDatabase(version, 'cli');
    await db.query(`
      create table a (id int primary key, name text);
      create table b (id int primary key, v int);
      create table c (id int primary key);
    `);
    const proc = start(
      [
        'run',
        '--source',
        db.url,
        '--data-dir',
        dir.path,
        '--slot',
        's',
        '--publication',
        'p',
        '--tables',
        'public.a,public.b',
        '--topic-prefix',
        'p',
        '--partitions',
        '2',
      ],
      {
        // Status updates only at start and stop: the slot can only reach the log's position
        // through the final acknowledgement.
        env: { TRIBUTARY_STATUS_INTERVAL_MS: '3600000' },
      },
    );
    await streaming(proc);
    // c's change commits first and in the same transaction as a's and b's: once their records
    // are in the log, a record of c would be there too.
    await db.query(`
      begin;
      insert into c values (1);
      insert into a select g, 'name ' || g from generate_series(1, 10) g;
      insert into b values (1, 1), (2, 2), (3, 3);
      commit;
      update a set name = 'renamed' where id = 1;
      delete from b where id = 3;
    `);
    await waitForCount(dir.path, 'p.public.a', 11);
    await waitForCount(dir.path, 'p.public.b', 5);
    result = await stop(proc, 'SIGTERM');
    records = await withLog(dir.path, async (log) => ({
      a: await readTopic(log, 'p.public.a'),
      b: await readTopic(log, 'p.public.b'),
    }));
  });

  afterAll(async () => {
    await db?.drop();
    dir.remove();
  });

  it('captures only the listed tables, exits 0 on SIGTERM and confirms the durable position to the slot', async () => {
    expect(result.code, result.stderr).toBe(0);
    const topics = await withLog(dir.path, async (log) => (await log.topics()).map((t) => t.topic));
    expect(topics.sort()).toEqual(['p.public.a', 'p.public.b', 'p.schema-history']);
    expect(records.a).toHaveLength(11);
    expect(records.b).toHaveLength(5);
    // insert ×3, delete, tombstone
    expect(
      records.b.map((r) => (r.value === null ? null : (JSON.parse(r.value) as { op: string }).op)),
    ).toEqual(expect.arrayContaining(['c', 'c', 'c', 'd', null]));

    const position = await withLog(dir.path, (log) => Capture.position(log, 'postgres:s'));
    expect(position).not.toBeNull();
    const confirmed = await confirmedFlushLsn(db, 's');
    expect(confirmed).not.toBeNull();
    // The final acknowledgement covers everything in the log. It may go further: when the server
    // reports (keepalive) that it has nothing more for us, that position is confirmed too.
    expect(parseLsn(confirmed!)).toBeGreaterThanOrEqual(position!.lsn);
    // ... and it is exactly the last position the capture reported before exiting.
    expect(readStatus(dir.path)?.confirmedLsn).toBe(confirmed);
    expect(readStatus(dir.path)?.durableLsn).toBe(formatLsn(position!.lsn));
  });

  it('topics lists topics with partition and record counts, as text and JSON', async () => {
    const json = await run(['topics', '--data-dir', dir.path, '--json']);
    expect(json.code, json.stderr).toBe(0);
    const topics = JSON.parse(json.stdout) as {
      topic: string;
      partitions: { partition: number; startOffset: number; endOffset: number }[];
    }[];
    const count = (t: (typeof topics)[number]) =>
      t.partitions.reduce((n, p) => n + p.endOffset - p.startOffset, 0);
    expect(topics.map((t) => [t.topic, t.partitions.length, count(t)]).sort()).toEqual([
      ['p.public.a', 2, 11],
      ['p.public.b', 2, 5],
      ['p.schema-history', 2, 2],
    ]);

    const text = await run(['topics', '--data-dir', dir.path]);
    expect(text.code, text.stderr).toBe(0);
    const rows = text.stdout.trim().split('\n');
    expect(rows[0]).toMatch(/^TOPIC\s+PARTITIONS\s+RECORDS\s+OFFSETS$/);
    expect(
      rows
        .slice(1)
        .map((r) => r.split(/\s+/).slice(0, 3))
        .sort(),
    ).toEqual([
      ['p.public.a', '2', '11'],
      ['p.public.b', '2', '5'],
      ['p.schema-history', '2', '2'],
    ]);
  });

  it('read prints every record as a JSON line, and honours --partition, --from and --limit', async () => {
    const all = await run(['read', 'p.public.a', '--data-dir', dir.path]);
    expect(all.code, all.stderr).toBe(0);
    const printed = lines(all.stdout);
    expect(printed).toHaveLength(11);
    for (const line of printed) {
      expect(Object.keys(line)).toEqual([
        'topic',
        'partition',
        'offset',
        'key',
        'value',
        'headers',
        'timestamp',
      ]);
      expect(line.topic).toBe('p.public.a');
      expect(typeof line.timestamp).toBe('number');
    }
    const byPosition = (r: { partition: number; offset: number }) => `${r.partition}:${r.offset}`;
    expect(printed.map((l) => byPosition(l as { partition: number; offset: number })).sort()).toEqual(
      records.a.map(byPosition).sort(),
    );
    // key and value are the stored JSON, embedded as JSON (not as strings).
    const first = records.a[0]!;
    const line = printed.find(
      (l) => byPosition(l as { partition: number; offset: number }) === byPosition(first),
    )!;
    expect(line.key).toEqual(JSON.parse(first.key!));
    expect(line.value).toEqual(JSON.parse(first.value!));
    expect(line.headers).toEqual(first.headers);
    expect(line.timestamp).toBe(first.timestamp);

    for (const partition of [0, 1]) {
      const expected = records.a.filter((r) => r.partition === partition);
      const only = await run([
        'read',
        'p.public.a',
        '--data-dir',
        dir.path,
        '--partition',
        String(partition),
      ]);
      expect(only.code, only.stderr).toBe(0);
      expect(lines(only.stdout).map((l) => [l.partition, l.offset])).toEqual(
        expected.map((r) => [r.partition, r.offset]),
      );
    }

    const busiest = records.a.filter((r) => r.partition === 0).length >= 3 ? 0 : 1;
    const inBusiest = records.a.filter((r) => r.partition === busiest);
    const from = await run([
      'read',
      'p.public.a',
      '--data-dir',
      dir.path,
      '--partition',
      String(busiest),
      '--from',
      '2',
    ]);
    expect(lines(from.stdout).map((l) => l.offset)).toEqual(inBusiest.slice(2).map((r) => r.offset));

    const limited = await run(['read', 'p.public.a', '--data-dir', dir.path, '--limit', '3']);
    expect(limited.code, limited.stderr).toBe(0);
    expect(lines(limited.stdout)).toHaveLength(3);
  });

  it('read refuses an unknown topic with a clear message', async () => {
    const unknown = await run(['read', 'p.public.c', '--data-dir', dir.path]);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stdout).toBe('');
    expect(unknown.stderr).toContain('no topic named "p.public.c"');
    expect(unknown.stderr).toContain('tributary topics');
  });
});

describe.each(PG_VERSIONS)('tributary status and read --follow on PostgreSQL %i', (version) => {
  let db: TestDatabase;
  const dir = tempDir('tributary-cli-status-');
  let capture: CliProcess;

  beforeAll(async () => {
    db = await createDatabase(version, 'cli_status');
    await db.query('create table items (id int primary key, name text)');
    capture = start(['run', '--source', db.url, '--data-dir', dir.path, '--slot', 'status_slot']);
    await streaming(capture);
    await db.query(`insert into items values (1, 'first')`);
    await waitForCount(dir.path, 'tributary.public.items', 1);
  });

  afterAll(async () => {
    if (capture && capture.child.exitCode === null) await stop(capture);
    await db?.drop();
    dir.remove();
  });

  it('status reports a running capture', async () => {
    type Report = Record<string, unknown>;
    const report = await waitFor(
      async () => {
        const r = await run(['status', '--data-dir', dir.path, '--json']);
        if (r.code !== 0) throw new Error(r.stderr);
        const parsed = JSON.parse(r.stdout) as Report;
        return parsed.connected === true && typeof parsed.lagBytes === 'number' ? parsed : undefined;
      },
      'status to show a connected capture with its lag',
      120_000,
    );
    expect(report).toMatchObject({
      state: 'running',
      slot: 'status_slot',
      connected: true,
      // The table's topic and the schema history (one record: the table's shape).
      topics: 2,
      records: 2,
    });
    expect(report.durableLsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    expect(typeof report.recordsPerSecond).toBe('number');
    // A capture that kept up never held its consumers back.
    expect(report.consumersHeld).toEqual({ holding: false, holds: 0, heldMs: 0 });

    const text = await run(['status', '--data-dir', dir.path]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`^state +running \\(pid ${capture.child.pid}\\)$`, 'm'));
    expect(text.stdout).toMatch(/^slot +status_slot$/m);
    expect(text.stdout).toMatch(/^connected +yes$/m);
    expect(text.stdout).toMatch(/^durable LSN +[0-9A-F]+\/[0-9A-F]+$/m);
    expect(text.stdout).toMatch(/^lag +\d+ bytes$/m);
    expect(text.stdout).toMatch(/^records\/s +\d+(\.\d+)?$/m);
    expect(text.stdout).not.toMatch(/consumers held/);
  });

  it('read --follow prints a record committed after it started, and exits 0 on SIGINT', async () => {
    const follow = start(['read', 'tributary.public.items', '--data-dir', dir.path, '--follow']);
    await waitFor(() => follow.stdout.includes('"first"'), 'the existing record', 120_000);
    await db.query(`insert into items values (2, 'followed')`);
    const line = await waitFor(
      () => follow.stdout.split('\n').find((l) => l.includes('"followed"')),
      'the new record on stdout',
      120_000,
    );
    expect(JSON.parse(line)).toMatchObject({
      topic: 'tributary.public.items',
      key: { id: 2 },
      value: { op: 'c', after: { id: 2, name: 'followed' } },
    });
    const exit = await stop(follow, 'SIGINT');
    expect(exit.code, exit.stderr).toBe(0);
  });

  it('status reports a stopped capture after SIGTERM', async () => {
    const exit = await stop(capture, 'SIGTERM');
    expect(exit.code, exit.stderr).toBe(0);
    const json = await run(['status', '--data-dir', dir.path, '--json']);
    expect(json.code, json.stderr).toBe(0);
    const report = JSON.parse(json.stdout) as Record<string, unknown>;
    expect(report).toMatchObject({ state: 'stopped', slot: 'status_slot', connected: false, records: 3 });
    expect(report.durableLsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);

    const text = await run(['status', '--data-dir', dir.path]);
    expect(text.stdout).toMatch(/^state +stopped$/m);
    expect(text.stdout).toMatch(/^slot +status_slot$/m);
    expect(text.stdout).toMatch(/^connected +no$/m);
    expect(text.stdout).toMatch(/^durable LSN +[0-9A-F]+\/[0-9A-F]+$/m);
  });
});

// Configuration, formats and flag validation do not depend on the server version: PostgreSQL 15 only.
describe('tributary run settings (PostgreSQL 15)', () => {
  let db: TestDatabase;
  const dirs: ReturnType<typeof tempDir>[] = [];
  const newDir = () => {
    const d = tempDir('tributary-cli-config-');
    dirs.push(d);
    return d.path;
  };

  beforeAll(async () => {
    db = await createDatabase(15, 'cli_config');
    await db.query(
      'create table items (id int primary key, name text); create table other (id int primary key)',
    );
  });
  afterAll(async () => {
    await db?.drop();
    for (const d of dirs) d.remove();
  });

  /** Starts a capture, makes one change, and returns once its record is in `dataDir`'s `topic`. */
  async function captureOne(
    args: string[],
    options: { env?: NodeJS.ProcessEnv; cwd?: string },
    expected: { dataDir: string; topic: string; slot: string },
  ): Promise<void> {
    const proc = start(['run', ...args], options);
    await streaming(proc);
    expect(await slotExists(db, expected.slot)).toBe(true);
    await db.query(`insert into items values ((select coalesce(max(id), 0) + 1 from items), 'x')`);
    await waitForCount(expected.dataDir, expected.topic, 1);
    const exit = await stop(proc);
    expect(exit.code, exit.stderr).toBe(0);
  }

  it('takes the settings from the environment', async () => {
    const dataDir = newDir();
    await captureOne(
      [],
      {
        env: {
          DATABASE_URL: db.url,
          TRIBUTARY_DATA_DIR: dataDir,
          TRIBUTARY_SLOT: 'env_slot',
          TRIBUTARY_PUBLICATION: 'env_pub',
          TRIBUTARY_TABLES: 'public.items',
          TRIBUTARY_TOPIC_PREFIX: 'envp',
        },
      },
      { dataDir, topic: 'envp.public.items', slot: 'env_slot' },
    );
    const pub = await db.query<{ t: string }>(
      `select tablename as t from pg_publication_tables where pubname = 'env_pub'`,
    );
    expect(pub.rows.map((r) => r.t)).toEqual(['items']);
  });

  it('takes the settings from --config and from tributary.config.json in the working directory', async () => {
    const dataDir = newDir();
    const file = join(newDir(), 'settings.json');
    writeFileSync(
      file,
      JSON.stringify({
        source: { url: db.url, slot: 'file_slot', publication: 'file_pub', tables: ['public.items'] },
        dataDir,
        topicPrefix: 'filep',
      }),
    );
    await captureOne(['--config', file], {}, { dataDir, topic: 'filep.public.items', slot: 'file_slot' });

    const cwd = newDir();
    writeFileSync(
      join(cwd, 'tributary.config.json'),
      JSON.stringify({
        source: { url: db.url, slot: 'cwd_slot', publication: 'cwd_pub' },
        topicPrefix: 'cwdp',
      }),
    );
    // dataDir relative to the working directory: the default `.tributary`.
    await captureOne(
      [],
      { cwd },
      { dataDir: join(cwd, '.tributary'), topic: 'cwdp.public.items', slot: 'cwd_slot' },
    );
  });

  it('lets flags override the environment, and the environment override the file', async () => {
    const fileDir = newDir();
    const envDir = newDir();
    const cwd = newDir();
    writeFileSync(
      join(cwd, 'tributary.config.json'),
      JSON.stringify({
        source: { url: 'postgres://nobody@127.0.0.1:1/none', slot: 'file_slot2', publication: 'prec_pub' },
        dataDir: fileDir,
        topicPrefix: 'filep2',
      }),
    );
    await captureOne(
      ['--slot', 'flag_slot'],
      {
        cwd,
        env: { DATABASE_URL: db.url, TRIBUTARY_SLOT: 'env_slot2', TRIBUTARY_DATA_DIR: envDir },
      },
      // url and dataDir from env (over the file), slot from the flag (over env and file),
      // topic prefix from the file (nothing overrides it).
      { dataDir: envDir, topic: 'filep2.public.items', slot: 'flag_slot' },
    );
    expect(await slotExists(db, 'env_slot2')).toBe(false);
    expect(await slotExists(db, 'file_slot2')).toBe(false);
    expect(existsSync(join(fileDir, 'log.sqlite'))).toBe(false);
  });

  it('--format unwrap writes flattened rows with __op and __deleted', async () => {
    const dataDir = newDir();
    await db.query('create table flat (id int primary key, name text, qty int)');
    const proc = start([
      'run',
      '--source',
      db.url,
      '--data-dir',
      dataDir,
      '--slot',
      'unwrap_slot',
      '--publication',
      'unwrap_pub',
      '--tables',
      'public.flat',
      '--format',
      'unwrap',
    ]);
    await streaming(proc);
    await db.query(`
      insert into flat values (1, 'apple', 3);
      update flat set qty = 4 where id = 1;
      delete from flat where id = 1;
    `);
    await waitForCount(dataDir, 'tributary.public.flat', 4);
    const exit = await stop(proc);
    expect(exit.code, exit.stderr).toBe(0);
    const read = await run(['read', 'tributary.public.flat', '--data-dir', dataDir]);
    expect(read.code, read.stderr).toBe(0);
    const values = lines(read.stdout).map((l) => l.value);
    expect(values).toHaveLength(4);
    expect(values[0]).toMatchObject({
      id: 1,
      name: 'apple',
      qty: 3,
      __op: 'c',
      __table: 'flat',
      __deleted: 'false',
    });
    expect(values[1]).toMatchObject({ id: 1, name: 'apple', qty: 4, __op: 'u', __deleted: 'false' });
    // REPLICA IDENTITY DEFAULT: the deleted row holds its key only.
    expect(values[2]).toMatchObject({ id: 1, __op: 'd', __deleted: 'true' });
    expect(values[3]).toBeNull();
    expect(values[0]).not.toHaveProperty('after');
    expect(values[0]).not.toHaveProperty('op');
  });

  it('rejects bad flags with exit code 2, naming the flag and the allowed values', async () => {
    const dataDir = newDir();
    const base = ['run', '--source', db.url, '--data-dir', dataDir];
    const partitions = await run([...base, '--partitions', '0']);
    expect(partitions.code).toBe(2);
    expect(partitions.stderr).toContain('--partitions');
    expect(partitions.stderr).toMatch(/>0|at least 1|1 to 1024/);

    const format = await run([...base, '--format', 'avro']);
    expect(format.code).toBe(2);
    expect(format.stderr).toContain('--format');
    expect(format.stderr).toContain('"avro"');
    expect(format.stderr).toMatch(/debezium.*unwrap/);

    const slot = await run([...base, '--slot', 'Bad-Name']);
    expect(slot.code).toBe(2);
    expect(slot.stderr).toContain('--slot');
    expect(slot.stderr).toContain('"Bad-Name"');
    expect(slot.stderr).toContain('lower-case letters, digits and underscores');

    // Nothing was started: no slot, no log.
    expect(await slotExists(db, 'tributary')).toBe(false);
    expect(existsSync(join(dataDir, 'log.sqlite'))).toBe(false);
  });
});
