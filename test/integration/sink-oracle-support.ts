/**
 * The oracle harness of the sink tests: a throwaway source database with an `items` table of
 * exact types, a real `tributary run` subprocess with one sink configured, a seeded random
 * workload (inserts, updates, deletes, one truncate, one column added at the source) while the
 * sink's replicas are killed with kill -9, then: the target equals the source, row for row.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { tempDirs, waitFor } from '../support/capture-harness.ts';
import { type CliProcess, cli, startCli } from '../support/cli.ts';
import { createDatabase, type TestDatabase } from '../support/databases.ts';

const ENV: NodeJS.ProcessEnv = {
  DATABASE_URL: '',
  TRIBUTARY_DATA_DIR: '',
  TRIBUTARY_SLOT: '',
  TRIBUTARY_HTTP_PORT: '0',
  // Replicas at the capture's priority: on a shared, loaded machine a SCHED_IDLE replica may not
  // run for minutes, and this test is about what the sink writes, not about scheduling.
  TRIBUTARY_CONSUMERS_NICENESS: '0',
  TRIBUTARY_CONSUMERS_YIELD_TO_CAPTURE: 'never',
};

export const dirs = tempDirs('sink-oracle-');

/** Source columns, as canonical text (the targets' readers give the same form). */
export interface CanonicalRow {
  [column: string]: string | null;
}

/** The source's rows of `items`, canonical: what every target must hold. */
export const SOURCE_QUERY = `select id::text as id, name, qty::text as qty, big::text as big, price::text as price,
  created::text as created, (extract(epoch from updated) * 1000000)::numeric(30,0)::text as updated,
  doc::text as doc, flag::text as flag, day::text as day, note
  from items order by items.id`;

/** The source types, for the sinks' `types` options. */
export const ITEM_TYPES = {
  id: 'integer',
  name: 'text',
  qty: 'integer',
  big: 'bigint',
  price: 'numeric(12,2)',
  created: 'timestamp',
  updated: 'timestamptz',
  doc: 'jsonb',
  flag: 'boolean',
  day: 'date',
};

export interface OracleRun {
  readonly source: TestDatabase;
  readonly proc: CliProcess;
  readonly dataDir: string;
  readonly kills: number;
}

/** A deterministic generator (mulberry32), so a failing run can be replayed by its seed. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** ISO microseconds → epoch microseconds (as the source query's `updated`). */
export function isoToMicros(iso: string): string {
  const m = /^(.*?)(?:\.(\d{1,6}))?Z$/.exec(iso);
  if (!m) return `unparsed ${iso}`;
  const ms = Date.parse(`${m[1]}Z`);
  return (BigInt(ms) * 1000n + BigInt((m[2] ?? '').padEnd(6, '0') || '0')).toString();
}

/**
 * Runs the whole scenario for sink `name` (configured by `sink`), then waits until `read()` equals
 * the source and asserts it. `read` gives the target's rows canonical, ordered by id.
 */
export async function sinkOracle(options: {
  name: string;
  sink: (source: TestDatabase) => Record<string, unknown>;
  read: () => Promise<CanonicalRow[]>;
  /** The sink's committed offset in its target (0 before any), to kill only a replica that works. */
  offset: () => Promise<number>;
  seed: number;
  operations?: number;
  /** The source's rows, canonical (default `SOURCE_QUERY`). */
  query?: string;
  /** Partitions of the topics (default 1). */
  partitions?: number;
  /** Another workload (default: the one below); returns the number of replicas killed. */
  workload?: (source: TestDatabase, killer: ReplicaKiller) => Promise<number>;
}): Promise<OracleRun> {
  const source = await createDatabase(18, 'sinksrc');
  await source.query(`create table items (id int primary key, name text, qty int, big int8, price numeric(12,2),
    created timestamp, updated timestamptz, doc jsonb, flag boolean, day date)`);
  const dataDir = dirs.make();
  const sinks = { [options.name]: { replicas: 2, batchSize: 50, retryAttempts: 3, ...options.sink(source) } };
  const proc = startCli(
    [
      'run',
      '--source',
      source.url,
      '--data-dir',
      dataDir,
      '--slot',
      source.name,
      '--publication',
      source.name,
      '--topic-prefix',
      'shop',
      '--partitions',
      String(options.partitions ?? 1),
    ],
    { env: { ...ENV, TRIBUTARY_SINKS: JSON.stringify(sinks) } },
  );
  try {
    return await scenario();
  } catch (error) {
    const log = (() => {
      try {
        return readFileSync(join(dataDir, 'logs', `${options.name}.log`), 'utf8');
      } catch {
        return '(no sink log)';
      }
    })();
    throw new Error(
      `${(error as Error).message}\n--- tributary run stderr (tail) ---\n${proc.stderr.slice(-2500)}\n--- ${options.name}.log (tail) ---\n${log.slice(-4000)}`,
      { cause: error },
    );
  } finally {
    if (proc.child.exitCode === null) proc.child.kill('SIGTERM');
    await proc.exited;
    await source.drop();
  }

  async function scenario(): Promise<OracleRun> {
    await waitFor(
      () => proc.stderr.includes('"msg":"replication started"') || proc.child.exitCode !== null,
      'replication to start',
      60_000,
    );
    expect(proc.child.exitCode, proc.stderr).toBe(null);
    expect(proc.stderr).toContain(`sinks: ${options.name}`);
    const kills = options.workload
      ? await options.workload(source, replicaKiller(dataDir, options))
      : await workload(source, dataDir, options, options.operations ?? 300);
    const expected = (await source.query<CanonicalRow>(options.query ?? SOURCE_QUERY)).rows;
    let last: CanonicalRow[] = [];
    await waitFor(
      async () => {
        last = await options.read().catch(() => []);
        return JSON.stringify(last) === JSON.stringify(expected);
      },
      `the ${options.name} target to equal the source`,
      45_000,
    ).catch(() => undefined);
    expect(last).toEqual(expected);
    expect(kills).toBeGreaterThan(0);
    const dlq = await cli(['dlq', 'list', options.name, '--data-dir', dataDir, '--json'], { env: ENV });
    expect(dlq.stdout.trim() === '' || JSON.parse(dlq.stdout).length === 0, dlq.stdout + dlq.stderr).toBe(
      true,
    );
    return { source, proc, dataDir, kills };
  }
}

/** Random changes in small transactions while a replica of the sink is killed now and then. */
async function workload(
  source: TestDatabase,
  dataDir: string,
  o: { name: string; seed: number; offset: () => Promise<number> },
  operations: number,
) {
  const rnd = random(o.seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
  const live = new Set<number>();
  let nextId = 1;
  const killer = replicaKiller(dataDir, o);
  let noteAdded = false;
  const value = () => {
    const us = BigInt(Math.floor(rnd() * 2e15)) - 5n * 10n ** 14n; // around 1954..2033
    const micros = Math.floor(rnd() * 1_000_000);
    return [
      `it"em ${Math.floor(rnd() * 1e6)} é ✓`,
      Math.floor(rnd() * 1000) - 100,
      (9007199254740993n + BigInt(Math.floor(rnd() * 1e9))) * (rnd() < 0.2 ? -1n : 1n),
      (Math.floor(rnd() * 1e9) / 100).toFixed(2),
      new Date(Number(us / 1000n))
        .toISOString()
        .replace('Z', '')
        .replace(/\.\d+$/, `.${String(micros).padStart(6, '0')}`),
      `${new Date(Number(us / 1000n) + 86_400_000).toISOString().replace(/\.\d+Z$/, '')}.${String(micros).padStart(6, '0')}+02:30`,
      JSON.stringify({ n: `${Math.floor(rnd() * 100)}`, big: '__BIG__', list: [1, 'two', null] }).replace(
        '"__BIG__"',
        '123456789012345678901',
      ),
      rnd() < 0.5,
      new Date(Number(us / 1000n)).toISOString().slice(0, 10),
    ];
  };
  const columns = 'name, qty, big, price, created, updated, doc, flag, day';
  for (let op = 0; op < operations; op++) {
    if (op === Math.floor(operations * 0.4)) {
      await source.query('truncate items');
      live.clear();
    }
    if (op === Math.floor(operations * 0.6)) {
      await source.query('alter table items add column note text');
      noteAdded = true;
    }
    if (op === Math.floor(operations * 0.3) || op === Math.floor(operations * 0.7)) {
      // Kill a replica while it applies changes (one that is still starting proves nothing), as
      // the workload goes on.
      await killer.start(rnd);
    }
    const r = rnd();
    if (r < 0.45 || live.size < 5) {
      const id = nextId++;
      const v = value();
      await source.query(
        `insert into items (id, ${columns}${noteAdded ? ', note' : ''}) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10${noteAdded ? ', $11' : ''})`,
        [id, ...v, ...(noteAdded ? [`note ${id}`] : [])],
      );
      live.add(id);
    } else if (r < 0.85) {
      const id = pick([...live]);
      const v = value();
      const which = pick(['price', 'qty', 'all'] as const);
      if (which === 'price') await source.query('update items set price = $2 where id = $1', [id, v[3]]);
      else if (which === 'qty')
        await source.query('update items set qty = qty + $2 where id = $1', [id, v[1]]);
      else {
        await source.query(
          `update items set (${columns}) = ($2, $3, $4, $5, $6, $7, $8, $9, $10) where id = $1`,
          [id, ...v],
        );
        if (noteAdded) await source.query('update items set note = $2 where id = $1', [id, `changed ${op}`]);
      }
    } else {
      const id = pick([...live]);
      await source.query('delete from items where id = $1', [id]);
      live.delete(id);
    }
  }
  return killer.done();
}

/** Kills a replica of the sink once it has committed changes since the last kill (in the background). */
export interface ReplicaKiller {
  /** Starts a kill (after the previous one is done), as the workload goes on. */
  start(rnd: () => number): Promise<void>;
  /** Waits for the kills started; the number that killed a replica. */
  done(): Promise<number>;
}

function replicaKiller(dataDir: string, o: { name: string; offset: () => Promise<number> }): ReplicaKiller {
  let killer: Promise<void> = Promise.resolve();
  let committed = 0;
  let kills = 0;
  return {
    async start(rnd) {
      await killer;
      const before = committed;
      killer = (async () => {
        committed = await waitFor(
          async () => {
            const now = await o.offset().catch(() => 0);
            return now > before ? now : undefined;
          },
          'the sink to commit changes',
          60_000,
        );
        if (await killReplica(dataDir, o.name, rnd)) kills++;
      })();
    },
    async done() {
      await killer;
      return kills;
    },
  };
}

/** kill -9 of one of the sink's replicas (pids from `tributary consumers --json`). */
async function killReplica(dataDir: string, sink: string, rnd: () => number): Promise<boolean> {
  const list = await cli(['consumers', '--json', '--data-dir', dataDir], { env: ENV });
  const status = (JSON.parse(list.stdout || '[]') as { name: string; pids: number[] }[]).find(
    (s) => s.name === sink,
  );
  const pids = status?.pids ?? [];
  if (pids.length === 0) return false;
  const pid = pids[Math.floor(rnd() * pids.length)]!;
  try {
    process.kill(pid, 'SIGKILL');
    return true;
  } catch {
    return false;
  }
}
