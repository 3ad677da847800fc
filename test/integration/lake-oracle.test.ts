import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LakeCatalog } from '../../src/sinks/lake/lake-catalog.ts';
import { queryLake } from '../../src/sinks/lake/lake-query.ts';
import { tempDirs, waitFor } from '../support/capture-harness.ts';
import { type CliProcess, cleanCliEnv, cli, startCli } from '../support/cli.ts';
import { createDatabase, PG_VERSIONS, type TestDatabase } from '../support/databases.ts';

const ENV = cleanCliEnv({
  // The test cluster is shared: other databases' WAL would read as a capture catching up.
  TRIBUTARY_CONSUMERS_YIELD_TO_CAPTURE: 'never',
  // The lake's replica loads DuckDB: at the default niceness a loaded shared machine starves it.
  TRIBUTARY_CONSUMERS_NICENESS: '0',
});
const dirs = tempDirs('lake-oracle-');
const started: CliProcess[] = [];
let db: TestDatabase | undefined;

async function stopAll() {
  for (const p of started.splice(0)) {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await p.exited;
  }
}
afterAll(async () => {
  await stopAll();
  await db?.drop();
  dirs.removeAll();
});
/** The lake the first test builds (the second one queries and maintains it through the CLI). */
let root = '';
let finalRows: Record<string, unknown>[] = [];
let bronzeItems = 0;

/** Every value as text (null kept): PostgreSQL and DuckDB give numbers and bigints differently. */
const norm = (rows: Record<string, unknown>[]) =>
  rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v === null ? null : String(v)])));

const BRONZE_CHECK = 'select count(*) as n, count(distinct (_partition, _offset)) as d from bronze.items';
const SOURCE_ITEMS = `select id, name, qty, price::text as price, tags::text as tags,
  (extract(epoch from created) * 1000000)::bigint as created, note from items order by id`;
const LAKE_ITEMS =
  'select id, name, qty, price, tags, epoch_us(created) AS created, note from silver.items order by id';
const LAKE_ITEMS_BEFORE_NOTE =
  'select id, name, qty, price, tags, epoch_us(created) AS created from silver.items order by id';

// Gold: the same question asked of the lake (DuckDB) and of the source (PostgreSQL).
const MODEL_QTY = `SELECT name, sum(qty)::BIGINT AS qty, sum(price::DECIMAL(18,2))::DECIMAL(18,2) AS value, count(*)::BIGINT AS n
  FROM silver.items GROUP BY name`;
const MODEL_TOP = 'SELECT name, qty FROM gold.qty_by_name WHERE qty > 100';
const SOURCE_QTY =
  'select name, sum(qty)::bigint as qty, sum(price)::numeric(18,2)::text as value, count(*) as n from items group by name order by name';

async function lakeRows(root: string, sql: string, asOf?: string) {
  const r = await queryLake(root, sql, asOf ? { asOf } : {});
  return r.rows.map((row) => Object.fromEntries(r.columns.map((c, i) => [c, row[i] ?? null])));
}

export async function cliJson(root: string, sql: string, extra: string[] = []) {
  const r = await cli(['sql', sql, '--format', 'json', '--lake', root, ...extra], { env: ENV });
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Record<string, unknown>[];
}

describe.each(PG_VERSIONS.slice(-1))('lake sink on PostgreSQL %i', (version) => {
  it('silver equals the source after a random workload with kill -9, time travel, bronze once, maintenance, gold', async () => {
    db = await createDatabase(version, 'lake');
    await db.query(`create table items (id int primary key, name text not null, qty int, price numeric(12,2),
      tags jsonb, created timestamp default '2026-01-02 03:04:05.123456')`);
    await db.query('create table events (id bigserial primary key, kind text)');
    const dataDir = dirs.make();
    const consumersDir = dirs.make();
    root = join(dataDir, 'lake');
    const configFile = join(dirs.make(), 'tributary.config.json');
    writeFileSync(
      configFile,
      JSON.stringify({
        sinks: {
          lake: { kind: 'lake', tables: ['public.items', 'public.events'], batchSize: 300, compactFiles: 6 },
        },
      }),
    );
    const proc = startCli(
      [
        'run',
        '--config',
        configFile,
        '--source',
        db.url,
        '--data-dir',
        dataDir,
        '--slot',
        db.name,
        '--publication',
        db.name,
        '--topic-prefix',
        'lk',
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
      60_000,
    );
    expect(proc.child.exitCode, proc.stderr).toBeNull();

    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const changes = { items: 0, events: 0 };
    let nextId = 1;
    let noteAdded = false;
    const round = async (r: number) => {
      for (let t = 0; t < 4; t++) {
        const ins = await db!.query(
          `insert into items (id, name, qty, price, tags) select g, 'n' || (g % 7), g % 50, (g * 1.25)::numeric(12,2),
             jsonb_build_object('g', g) from generate_series($1::int, $2::int) g`,
          [nextId, nextId + 39],
        );
        nextId += 40;
        changes.items += ins.rowCount ?? 0;
        const lo = rand(nextId);
        const upd = await db!.query(
          `update items set qty = qty + 1, price = price + 0.01${noteAdded ? ", note = 'r" + r + "'" : ''}
           where id between $1 and $2`,
          [lo, lo + 15],
        );
        changes.items += upd.rowCount ?? 0;
        const dlo = rand(nextId);
        const del = await db!.query('delete from items where id between $1 and $2', [dlo, dlo + 5]);
        changes.items += del.rowCount ?? 0;
        const ev = await db!.query(`insert into events (kind) select 'k' || g from generate_series(1, 10) g`);
        changes.events += ev.rowCount ?? 0;
      }
    };
    const caughtUp = async (sourceSql: string, lakeSql: string) => {
      const want = norm((await db!.query(sourceSql)).rows);
      let got: unknown;
      await waitFor(
        async () => {
          try {
            got = norm(await lakeRows(root, lakeSql));
            return JSON.stringify(got) === JSON.stringify(want);
          } catch (error) {
            got = String(error);
            return false;
          }
        },
        'silver to equal the source',
        60_000,
      ).catch((error) => {
        expect(got, `${String(error)}\n${proc.stderr.slice(-3000)}`).toEqual(want);
      });
      return want;
    };
    const killReplica = async () => {
      const list = await cli(['consumers', '--json', '--data-dir', dataDir], { env: ENV });
      const status = (JSON.parse(list.stdout) as { name: string; pids: number[] }[]).find(
        (s) => s.name === 'lake',
      );
      for (const pid of status?.pids ?? []) process.kill(pid, 'SIGKILL');
      return status?.pids.length ?? 0;
    };

    const instants: { at: string; lsn: string; rows: Record<string, unknown>[]; sql: string }[] = [];
    let kills = 0;
    for (let r = 0; r < 5; r++) {
      if (r === 3) {
        await db.query('alter table items add column note text');
        noteAdded = true;
      }
      await round(r);
      if (r === 2) {
        await db.query('truncate items');
        changes.items += 1;
      }
      // kill -9 while the sink is catching up (at a random moment of its work).
      if (r === 1 || r === 3) {
        await new Promise((res) => setTimeout(res, rand(400)));
        kills += await killReplica();
      }
      if (r === 1 || r === 4) {
        const t0 = Date.now();
        const sql = noteAdded ? LAKE_ITEMS : LAKE_ITEMS_BEFORE_NOTE;
        const src = noteAdded ? SOURCE_ITEMS : SOURCE_ITEMS.replace(', note', '');
        const rows = await caughtUp(src, sql);
        // The source is idle here: every change so far starts before its current WAL position,
        // where the next one will start (`--as-of` includes a change at the LSN given).
        const lsn = (await db!.query(`select (pg_current_wal_lsn() - '0/0'::pg_lsn - 1)::text as lsn`))
          .rows[0]!.lsn as string;
        instants.push({ at: new Date().toISOString(), lsn, rows, sql });
        console.log(`round ${r}: caught up in ${Date.now() - t0} ms`);
      }
    }
    expect(kills).toBeGreaterThan(0);
    const final = await caughtUp(SOURCE_ITEMS, LAKE_ITEMS);
    await waitFor(
      async () => {
        try {
          const r = await lakeRows(root, 'select count(*) as n from bronze.events');
          return Number(r[0]?.n) === changes.events;
        } catch {
          return false;
        }
      },
      'bronze.events to hold every insert',
      30_000,
    );

    // Through the CLI, as a user: silver row for row.
    expect(norm(await cliJson(root, LAKE_ITEMS))).toEqual(final);
    // JSON keeps every digit: BIGINT and DECIMAL as strings, smaller integers as numbers.
    expect(
      await cliJson(
        root,
        'SELECT 9007199254740993::BIGINT AS b, 7::INTEGER AS i, 1.50::DECIMAL(5,2) AS d, count(*) AS n FROM silver.events',
      ),
    ).toEqual([{ b: '9007199254740993', i: 7, d: '1.50', n: String(changes.events) }]);
    // Time travel: each recorded instant gives the source's rows then, by the lake's snapshot at
    // that time (the library the CLI calls) and by the source's LSN then (the CLI, silver rebuilt
    // from bronze, across the truncate).
    for (const i of instants) {
      expect(norm(await lakeRows(root, i.sql, i.at))).toEqual(i.rows);
      expect(norm(await cliJson(root, i.sql, ['--as-of', i.lsn]))).toEqual(i.rows);
    }
    // Bronze: each change exactly once (count and distinct log positions).
    const [bronze] = await lakeRows(root, BRONZE_CHECK);
    expect(Number(bronze!.n)).toBe(changes.items);
    expect(Number(bronze!.d)).toBe(changes.items);
    const [events] = await lakeRows(root, 'select count(*) as n, count(distinct id) as d from silver.events');
    expect(Number(events!.n)).toBe(changes.events);
    // LSN time travel: up to the newest LSN, silver rebuilt from bronze equals silver.
    const [maxLsn] = await lakeRows(root, 'select max(_lsn) as l from bronze.items');
    expect(norm(await lakeRows(root, LAKE_ITEMS, String(maxLsn!.l)))).toEqual(final);
    finalRows = final;
    bronzeItems = changes.items;
    await stopAll();
  }, 115_000);

  it('gold models equal the same SQL on the source; bad models and queries fail clearly; maintenance changes no answer', async () => {
    expect(root, 'the first test built the lake').not.toBe('');
    writeFileSync(join(root, 'models', 'qty_by_name.sql'), MODEL_QTY);
    writeFileSync(join(root, 'models', 'top_names.sql'), MODEL_TOP);
    writeFileSync(join(root, 'models', 'broken.sql'), 'SELECT no_such_column FROM silver.items');
    writeFileSync(
      join(root, 'models', 'slow.sql'),
      'SELECT count(*) AS n FROM range(100000000) a, range(100000) b WHERE a.range + b.range = -1',
    );
    const refresh = await cli(['lake', 'models', 'refresh', '--timeout', '2', '--lake', root], { env: ENV });
    expect(refresh.code).toBe(1);
    expect(refresh.stdout).toMatch(/broken: FAILED model broken .*no_such_column/);
    expect(refresh.stdout).toMatch(/slow: FAILED model slow .*ran longer than 2 s and was stopped/);
    expect(refresh.stdout).toMatch(/qty_by_name: \d+ rows/);
    rmSync(join(root, 'models', 'slow.sql'));
    const gold = norm(await lakeRows(root, 'select name, qty, value, n from gold.qty_by_name order by name'));
    expect(gold).toEqual(norm((await db!.query(SOURCE_QTY)).rows));
    const top = norm(await lakeRows(root, 'select name, qty from gold.top_names order by name'));
    expect(top).toEqual(gold.filter((g) => Number(g.qty) > 100).map((g) => ({ name: g.name, qty: g.qty })));

    // Bad queries: clear errors, nothing written.
    const write = await cli(['sql', 'create table x as select 1', '--lake', root], { env: ENV });
    expect(write.code).not.toBe(0);
    expect(write.stderr).toMatch(/only SELECT queries run on the lake/);
    const slow = 'select count(*) from range(100000000) a, range(100000) b where a.range + b.range = -1';
    const stopped = await cli(['sql', slow, '--timeout', '300', '--lake', root], { env: ENV });
    expect(stopped.code).not.toBe(0);
    expect(stopped.stderr).toMatch(/ran longer than 300 ms/);
    const badFlag = await cli(['sql', 'select 1', '--timeout', '5s', '--lake', root], { env: ENV });
    expect(badFlag.code).not.toBe(0);
    expect(badFlag.stderr).toMatch(/--timeout must be a whole number of at least 1, not "5s"/);
    await expect(queryLake(root, "copy (select 1) to '/tmp/x.csv'")).rejects.toThrow(
      /only SELECT|disabled by configuration/,
    );
    await expect(queryLake(root, "select * from read_csv('/etc/passwd')")).rejects.toThrow();

    // Maintenance through the CLI changes no answer.
    const compacted = await cli(['lake', 'compact', '--lake', root, '--json'], { env: ENV });
    expect(compacted.code, compacted.stderr).toBe(0);
    expect(JSON.parse(compacted.stdout)).toHaveProperty('compacted');
    // Every table's silver is one file of live rows, its bronze one file per day (what the sink's
    // own compaction had not merged yet, the command did).
    {
      const c = new LakeCatalog(join(root, 'catalog.db'));
      const live = c.files(c.currentSnapshot()).filter((f) => f.layer !== 'gold');
      c.close();
      const groups = new Map<string, typeof live>();
      for (const f of live)
        groups.set(`${f.layer} ${f.name} ${f.day}`, [
          ...(groups.get(`${f.layer} ${f.name} ${f.day}`) ?? []),
          f,
        ]);
      for (const [group, files] of groups) {
        expect(files.length, group).toBe(1);
        if (files[0]!.layer === 'silver') expect(files[0]!.compacted, group).toBe(true);
      }
    }
    const expired = await cli(['lake', 'expire', '--older-than', '0', '--lake', root, '--json'], {
      env: ENV,
    });
    expect(expired.code, expired.stderr).toBe(0);
    expect((JSON.parse(expired.stdout) as { files: number }).files).toBeGreaterThan(0);
    expect(norm(await lakeRows(root, LAKE_ITEMS))).toEqual(finalRows);
    const [after] = await lakeRows(root, BRONZE_CHECK);
    expect(Number(after!.n)).toBe(bronzeItems);
    expect(Number(after!.d)).toBe(bronzeItems);
    expect(
      norm(await lakeRows(root, 'select name, qty, value, n from gold.qty_by_name order by name')),
    ).toEqual(gold);
    // Every Parquet file left is one the catalog names (nothing half-written, no orphans).
    const status = await cli(['lake', 'status', '--lake', root, '--json'], { env: ENV });
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ lake: root });
    const catalog = new LakeCatalog(join(root, 'catalog.db'));
    const named = catalog.allPaths();
    catalog.close();
    const onDisk = (readdirSync(root, { recursive: true }) as string[]).filter((f) => f.endsWith('.parquet'));
    expect(new Set(onDisk)).toEqual(named);
  }, 100_000);
});
