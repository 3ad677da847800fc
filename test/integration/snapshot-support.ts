import pg from 'pg';
import { afterAll } from 'vitest';
import type { RunningCapture } from '../../src/capture/capture-runner.ts';
import type { StoredRecord } from '../../src/core/record.ts';
import { EmbeddedEventLog } from '../../src/log/embedded/sqlite-event-log.ts';
import { readTopic, tempDirs } from '../support/capture-harness.ts';
import { createDatabase, type TestDatabase } from '../support/databases.ts';

/** What a consumer replaying a topic ends with: the last value per key; deletes and tombstones remove. */
export function replay(records: readonly StoredRecord[]): Map<string, unknown> {
  const state = new Map<string, unknown>();
  for (const record of records) {
    if (record.key === null) continue;
    if (record.value === null) {
      state.delete(record.key);
      continue;
    }
    const value = JSON.parse(record.value) as { op: string; after: unknown };
    if (value.op === 'd') state.delete(record.key);
    else state.set(record.key, value.after);
  }
  return state;
}

/** The table's rows keyed as the records are (`{"id":n}`), each as its JSON object. */
export async function tableState(
  query: (sql: string) => Promise<pg.QueryResult>,
  table: string,
): Promise<Map<string, unknown>> {
  const result = await query(`select row_to_json(t)::text as j, t.id from ${table} t order by t.id`);
  return new Map(result.rows.map((r) => [JSON.stringify({ id: Number(r.id) }), JSON.parse(r.j)]));
}

/** Replays a topic of a data directory opened read-only (another process may be writing it). */
export async function replayDir(dataDir: string, topic: string): Promise<Map<string, unknown>> {
  let log: EmbeddedEventLog;
  try {
    log = EmbeddedEventLog.open({ dataDir, readonly: true });
  } catch {
    return new Map();
  }
  try {
    return replay(await readTopic(log, topic));
  } finally {
    await log.close();
  }
}

export function sameState(a: Map<string, unknown>, b: Map<string, unknown>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (JSON.stringify(v) !== JSON.stringify(b.get(k))) return false;
  return true;
}

/**
 * Random inserts, updates and deletes of `items` rows (ids 1..maxId) from one connection,
 * until stopped: the writes a snapshot races.
 */
export class Churn {
  changes = 0;
  private stopping = false;
  private running: Promise<void> | undefined;
  constructor(
    private readonly url: string,
    private readonly table: string,
    private readonly maxId: number,
  ) {}

  start(): void {
    this.running = this.loop();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.running;
  }

  private async loop(): Promise<void> {
    const client = new pg.Client(this.url);
    await client.connect();
    try {
      while (!this.stopping) {
        const id = 1 + Math.floor(Math.random() * this.maxId);
        const roll = Math.random();
        if (roll < 0.6) await client.query(`update ${this.table} set v = v + 1 where id = $1`, [id]);
        else if (roll < 0.8) await client.query(`delete from ${this.table} where id = $1`, [id]);
        else
          await client.query(
            `insert into ${this.table} (id, v, note) values ($1, 100, 'new') on conflict (id) do update set v = excluded.v + 1`,
            [id],
          );
        this.changes++;
      }
    } finally {
      await client.end();
    }
  }
}

/**
 * What a `describe` block of snapshot tests starts, released after it (churns stopped, then
 * captures, then databases dropped and directories removed). Tests push what they start into
 * `captures` and `churns`.
 */
export function snapshotBed(version: number, prefix: string, extraSql = '') {
  const dirs = tempDirs();
  const dbs: TestDatabase[] = [];
  const captures: RunningCapture[] = [];
  const churns: Churn[] = [];
  afterAll(async () => {
    for (const c of churns) await c.stop();
    for (const c of captures) await c.stop();
    for (const db of dbs) await db.drop();
    dirs.removeAll();
  });
  /** A fresh database whose `items (id, v, note)` holds rows 1..rows, then `extraSql` run. */
  async function database(rows: number): Promise<TestDatabase> {
    const db = await createDatabase(version, prefix);
    dbs.push(db);
    await db.query(`
      create table items (id int primary key, v int not null, note text);
      insert into items select g, 0, md5(g::text) from generate_series(1, ${rows}) g;
      ${extraSql}
    `);
    return db;
  }
  return { dirs, captures, churns, database };
}
