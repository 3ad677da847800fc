import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Capture } from '../../src/capture/capture.ts';
import { EmbeddedEventLog } from '../../src/log/embedded/sqlite-event-log.ts';
import { AuditedWorkload, expectLogEqualsAudit } from '../support/audited-workload.ts';
import { readTopic, readTopicTail, recordCountIn, tempDir, waitFor } from '../support/capture-harness.ts';
import { type CliProcess, startCli } from '../support/cli.ts';
import { createDatabase, PG_VERSIONS, type TestDatabase } from '../support/databases.ts';

const KILLS = 6;
const TOPIC = 'crash.public.accounts';

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
    await expectLogEqualsAudit(records, (sql) => db.query(sql));

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
