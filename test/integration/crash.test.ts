import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Capture } from '../../src/capture/capture.ts';
import { EmbeddedEventLog } from '../../src/log/embedded/sqlite-event-log.ts';
import {
  envelope,
  readTopic,
  readTopicTail,
  recordCountIn,
  tempDir,
  waitFor,
} from '../support/capture-harness.ts';
import { type CliProcess, startCli } from '../support/cli.ts';
import { createDatabase, PG_VERSIONS, type TestDatabase } from '../support/databases.ts';

const KILLS = 6;
const TOPIC = 'crash.public.accounts';

/**
 * Several clients change `accounts` concurrently; every change also writes an `audit` row in
 * the same transaction, so the audit table is the committed history, exactly. `version` goes
 * up by one with each change of a row, so per key the history is a strict sequence.
 */
class AuditedWorkload {
  committed = 0;
  private stopping = false;
  private maxId = 0;
  private running: Promise<unknown> | undefined;
  constructor(private readonly url: string) {}

  start(clients: number): void {
    this.running = Promise.all(Array.from({ length: clients }, () => this.client()));
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.running;
  }

  private async client(): Promise<void> {
    const client = new pg.Client(this.url);
    await client.connect();
    try {
      while (!this.stopping) {
        const roll = Math.random();
        try {
          await client.query('begin');
          if (roll < 0.35 || this.maxId < 20) {
            const rows = roll < 0.005 ? 1500 : 1 + Math.floor(Math.random() * 3);
            const res = await client.query<{ id: string }>(
              `with i as (insert into accounts (version, payload) select 1, md5(random()::text) from generate_series(1, $1) returning id, version)
               insert into audit (key, version, op) select id, version, 'c' from i returning key as id`,
              [rows],
            );
            for (const r of res.rows) this.maxId = Math.max(this.maxId, Number(r.id));
          } else if (roll < 0.9) {
            const ids = [
              ...new Set(
                Array.from(
                  { length: 1 + Math.floor(Math.random() * 4) },
                  () => 1 + Math.floor(Math.random() * this.maxId),
                ),
              ),
            ].sort((a, b) => a - b);
            await client.query(
              `with u as (update accounts set version = version + 1, payload = md5(random()::text) where id = any($1::bigint[]) returning id, version)
               insert into audit (key, version, op) select id, version, 'u' from u`,
              [ids],
            );
          } else {
            await client.query(
              `with d as (delete from accounts where id = $1 returning id, version)
               insert into audit (key, version, op) select id, version, 'd' from d`,
              [1 + Math.floor(Math.random() * this.maxId)],
            );
          }
          await client.query('commit');
          this.committed++;
        } catch (error) {
          await client.query('rollback').catch(() => undefined);
          // Deadlocks and serialization failures between the clients are expected; others are not.
          if (!['40P01', '40001'].includes((error as { code?: string }).code ?? '')) throw error;
        }
      }
    } finally {
      await client.end();
    }
  }
}

describe.each(PG_VERSIONS)('crash safety on PostgreSQL %i', (version) => {
  let db: TestDatabase;
  const dir = tempDir();

  beforeAll(async () => {
    db = await createDatabase(version, 'crash');
    await db.query(`
      create table accounts (id bigserial primary key, version int not null, payload text);
      create table audit (seq bigserial primary key, key bigint not null, version int not null, op char(1) not null);
    `);
  });
  afterAll(async () => {
    await db?.drop();
    dir.remove();
  });

  // Each wait below fails on its own, with what the server and the capture were doing, before this.
  it(`loses and repeats nothing across ${KILLS} kill -9 of the capture under a concurrent workload`, {
    timeout: 300_000,
  }, async () => {
    const args = [
      'run',
      '--source',
      db.url,
      '--data-dir',
      dir.path,
      '--tables',
      'public.accounts',
      '--slot',
      'crash',
      '--topic-prefix',
      'crash',
      // The stream is under test (the snapshot has its own crash test): the audit history starts at the slot.
      '--snapshot-mode',
      'never',
      '--log-level',
      'warn',
    ];
    // Small batches, so that kills also land in the middle of large transactions.
    const env = { TRIBUTARY_MAX_BATCH_RECORDS: '300' };
    const workload = new AuditedWorkload(db.url);
    const count = () => recordCountIn(dir.path, TOPIC);
    let kills = 0;
    try {
      for (; kills < KILLS; kills++) {
        const before = await count();
        const proc = startCli(args, { env });
        if (kills === 0) {
          // Changes are captured from the slot's creation on (snapshots are another feature).
          await waitFor(
            async () =>
              (await db.query(`select 1 from pg_replication_slots where slot_name = 'crash' and active`))
                .rowCount === 1,
            'the slot',
          ).catch(explain(db, proc));
          workload.start(4);
        }
        // Let it capture something, then kill it at a random moment.
        await waitFor(
          async () =>
            proc.child.exitCode === null ? (await count()) > before : Promise.reject(new Error(proc.stderr)),
          'the capture to make progress',
        ).catch(explain(db, proc));
        await new Promise((r) => setTimeout(r, Math.random() * 700));
        proc.child.kill('SIGKILL');
        const exit = await proc.exited;
        expect(exit.signal).toBe('SIGKILL');
      }
    } finally {
      await workload.stop();
    }
    expect(workload.committed).toBeGreaterThan(50);

    // A final run catches up; a marker committed last tells when everything is in.
    const marker = await db.query<{ id: string }>(
      `with i as (insert into accounts (version, payload) values (1, 'marker') returning id, version)
       insert into audit (key, version, op) select id, version, 'c' from i returning key as id`,
    );
    const markerKey = `{"id":${marker.rows[0]!.id}}`;
    const last = startCli(args, { env });
    await waitFor(
      async () => {
        const log = EmbeddedEventLog.open({ dataDir: dir.path, readonly: true });
        try {
          // The marker is the last change: it is at the end of its partition once captured. Reading
          // the whole topic on each probe would race the catching-up capture for the CPU.
          return (await readTopicTail(log, TOPIC, 20)).some((r) => r.key === markerKey);
        } finally {
          await log.close();
        }
      },
      'the marker to be captured',
      120_000,
    ).catch(explain(db, last));
    last.child.kill('SIGTERM');
    expect((await last.exited).code).toBe(0);

    const log = EmbeddedEventLog.open({ dataDir: dir.path, readonly: true });
    const records = await readTopic(log, TOPIC);
    const position = await Capture.position(log, 'postgres:crash');
    await log.close();

    // The log, per key, equals the audit history exactly: same changes, same order, once each.
    const fromLog = new Map<string, string[]>();
    const seen = new Set<string>();
    for (let i = 0; i < records.length; i++) {
      const record = records[i]!;
      const id = String(JSON.parse(record.key!).id);
      if (record.value === null) {
        const prev = records[i - 1]!;
        expect(prev.value !== null && envelope(prev).op === 'd' && prev.key === record.key).toBe(true);
        continue;
      }
      const e = envelope(record);
      const identity = `${e.transaction!.id}#${e.transaction!.total_order}`;
      expect(seen.has(identity), `duplicate event ${identity}`).toBe(false);
      seen.add(identity);
      const row = e.op === 'd' ? e.before! : e.after!;
      const list = fromLog.get(id) ?? [];
      list.push(`${e.op}${e.op === 'd' ? '' : row.version}`);
      fromLog.set(id, list);
    }
    const audit = await db.query<{ key: string; version: number; op: string }>(
      "select key::text, version, op from audit order by key, version, op = 'd'",
    );
    const fromDb = new Map<string, string[]>();
    for (const row of audit.rows) {
      const list = fromDb.get(row.key) ?? [];
      list.push(`${row.op}${row.op === 'd' ? '' : row.version}`);
      fromDb.set(row.key, list);
    }
    expect(fromLog.size).toBe(fromDb.size);
    for (const [key, history] of fromDb) expect(fromLog.get(key), `history of key ${key}`).toEqual(history);
    expect(seen.size).toBe(audit.rows.length);

    // The slot never got ahead of what the log holds.
    const slot = await db.query<{ confirmed: string }>(
      `select confirmed_flush_lsn::text as confirmed from pg_replication_slots where slot_name = 'crash'`,
    );
    const [hi, lo] = slot.rows[0]!.confirmed.split('/').map((x) => BigInt(`0x${x}`)) as [bigint, bigint];
    expect((hi << 32n) | lo).toBeLessThanOrEqual(
      position!.lsn > 0n ? await currentLsnAtLeast(db, position!.lsn) : 0n,
    );
  });
});

/** The server's current position, which is at least the stored one when all is consistent. */
async function currentLsnAtLeast(db: TestDatabase, stored: bigint): Promise<bigint> {
  const now = await db.query<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn');
  const [hi, lo] = now.rows[0]!.lsn.split('/').map((x) => BigInt(`0x${x}`)) as [bigint, bigint];
  const current = (hi << 32n) | lo;
  expect(current).toBeGreaterThanOrEqual(stored);
  return current;
}

/**
 * For a wait that failed: the error with the server's sessions (all databases: an open
 * transaction elsewhere holds up the creation of a slot), the test database's slots, and the end
 * of the capture's stderr.
 */
function explain(db: TestDatabase, proc: CliProcess): (error: Error) => Promise<never> {
  return async (error) => {
    const sessions = await db.query(
      `select pid, datname, application_name, backend_type, state, wait_event_type, wait_event,
              xact_start::text, left(query, 200) as query
         from pg_stat_activity where pid <> pg_backend_pid() and state is distinct from 'idle'`,
    );
    const slots = await db.query('select * from pg_replication_slots');
    throw new Error(
      [
        error.message,
        `sessions: ${JSON.stringify(sessions.rows, null, 1)}`,
        `slots: ${JSON.stringify(slots.rows, null, 1)}`,
        `capture stderr (end): ${proc.stderr.slice(-10_000)}`,
      ].join('\n'),
    );
  };
}
