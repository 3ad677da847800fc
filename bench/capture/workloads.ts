import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import { type Lsn, parseLsn } from '../../src/core/lsn.ts';

const run = promisify(execFile);

/** Client tools of this major version are used whatever the server's version (they are compatible). */
export const CLIENT_BIN = '/usr/lib/postgresql/15/bin';

export type WorkloadName = 'A' | 'B';

export interface Workload {
  readonly name: WorkloadName;
  readonly description: string;
  readonly database: string;
  readonly url: string;
  readonly publication: string;
  /** The tables whose changes are the workload (`public` schema), the marker table included. */
  readonly tables: readonly string[];
  /** Change events (insert/update/delete) the workload produces, the marker transaction excluded. */
  readonly changes: number;
  readonly transactions: number;
}

export interface GeneratedWal {
  /** Where every contender's slot starts (the slots are created back to back, with no write between). */
  readonly slotLsns: Readonly<Record<string, string>>;
  /**
   * A position inside the marker transaction, after its insert: every workload transaction commits
   * before it and the marker commits after it, so "reached endLsn" means "has the whole workload".
   */
  readonly endLsn: Lsn;
  readonly walBytes: number;
  readonly generateSeconds: number;
}

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client(url);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** One database per workload, so that each publication (FOR ALL TABLES) sees only its tables. */
export async function prepareWorkload(
  serverUrl: string,
  name: WorkloadName,
  size: { rows: number; txs: number },
): Promise<Workload> {
  const database = `bench_${name.toLowerCase()}`;
  await withClient(serverUrl, (c) => c.query(`create database ${database}`));
  const url = serverUrl.replace(/\/postgres$/, `/${database}`);
  const publication = `bench_${name.toLowerCase()}_pub`;
  if (name === 'A') {
    await withClient(url, async (c) => {
      await c.query(
        'create table bench_accounts (id bigint primary key, aid int not null, bid int not null, abalance int not null, filler char(84))',
      );
      await c.query('create table bench_marker (id serial primary key, at timestamptz default now())');
      await c.query(`create publication ${publication} for all tables`);
    });
    return {
      name,
      description: `1 transaction inserting ${size.rows.toLocaleString('en-US')} rows (~100-byte pgbench_accounts-like rows)`,
      database,
      url,
      publication,
      tables: ['bench_accounts', 'bench_marker'],
      changes: size.rows,
      transactions: 1,
    };
  }
  // pgbench's own tables; pgbench_history has no key: REPLICA IDENTITY FULL lets it be published
  // (and captured by us) without changing the WAL of its inserts.
  await run(`${CLIENT_BIN}/pgbench`, ['-i', '-q', '-s', '1', url]);
  const perClient = Math.ceil(size.txs / 4);
  await withClient(url, async (c) => {
    await c.query('alter table pgbench_history replica identity full');
    await c.query('create table bench_marker (id serial primary key, at timestamptz default now())');
    await c.query(`create publication ${publication} for all tables`);
    await c.query('checkpoint');
  });
  return {
    name,
    description: `${(perClient * 4).toLocaleString('en-US')} pgbench TPC-B-like transactions (pgbench -n -c 4 -t ${perClient})`,
    database,
    url,
    publication,
    tables: ['pgbench_accounts', 'pgbench_branches', 'pgbench_tellers', 'pgbench_history', 'bench_marker'],
    changes: perClient * 4 * 4,
    transactions: perClient * 4,
  };
}

/** Creates one pgoutput slot per contender, back to back, before any workload WAL exists. */
export async function createSlots(
  workload: Workload,
  slots: readonly string[],
): Promise<Record<string, string>> {
  return withClient(workload.url, async (c) => {
    const lsns: Record<string, string> = {};
    for (const slot of slots) {
      const r = await c.query<{ lsn: string }>(
        "select lsn::text as lsn from pg_create_logical_replication_slot($1, 'pgoutput')",
        [slot],
      );
      lsns[slot] = r.rows[0]!.lsn;
    }
    return lsns;
  });
}

export async function dropSlots(workload: Workload, slots: readonly string[]): Promise<void> {
  await withClient(workload.url, async (c) => {
    for (const slot of slots) {
      await c.query(
        'select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = $1 and not active',
        [slot],
      );
    }
  });
}

/** Generates the workload's WAL, then the marker transaction; returns the end LSN. */
export async function generateWal(
  workload: Workload,
  size: { rows: number; txs: number },
  slotLsns: Record<string, string>,
): Promise<GeneratedWal> {
  const started = performance.now();
  if (workload.name === 'A') {
    await withClient(workload.url, (c) =>
      c.query(
        `insert into bench_accounts select g, (g % 100000) + 1, (g % 10) + 1, 0, '' from generate_series(1, $1::int) g`,
        [size.rows],
      ),
    );
  } else {
    const perClient = Math.ceil(size.txs / 4);
    await run(`${CLIENT_BIN}/pgbench`, ['-n', '-c', '4', '-j', '2', '-t', String(perClient), workload.url], {
      maxBuffer: 16 * 1024 * 1024,
    });
  }
  const generateSeconds = (performance.now() - started) / 1000;
  const endLsn = await withClient(workload.url, async (c) => {
    await c.query('begin');
    await c.query('insert into bench_marker default values');
    const r = await c.query<{ lsn: string }>('select pg_current_wal_insert_lsn()::text as lsn');
    await c.query('commit');
    return parseLsn(r.rows[0]!.lsn);
  });
  // The first slot created is the earliest.
  const first = parseLsn(Object.values(slotLsns)[0]!);
  return { slotLsns, endLsn, walBytes: Number(endLsn - first), generateSeconds };
}
