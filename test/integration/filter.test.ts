import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Capture } from '../../src/capture/capture.ts';
import type { EventLog } from '../../src/core/event-log.ts';
import { parseLsn } from '../../src/core/lsn.ts';
import type { StoredRecord } from '../../src/core/record.ts';
import { EmbeddedEventLog } from '../../src/log/embedded/sqlite-event-log.ts';
import {
  captureConfig,
  envelope,
  readTopic,
  recordCountIn,
  runCapture,
  tempDirs,
  waitFor,
} from '../support/capture-harness.ts';
import { startCli } from '../support/cli.ts';
import { createDatabase, PG_VERSIONS, type TestDatabase } from '../support/databases.ts';

const SALT = 'pepper-3f9a';
const sha = (value: string) =>
  createHash('sha256')
    .update(SALT + value)
    .digest('hex');

/** Every stored byte a consumer could read: keys, values and headers of every topic. */
async function allText(log: EventLog): Promise<string> {
  const parts: string[] = [];
  for (const t of await log.topics()) {
    for (const r of await readTopic(log, t.topic))
      parts.push(t.topic, r.key ?? '', r.value ?? '', JSON.stringify(r.headers));
  }
  return parts.join('\n');
}

describe.each(PG_VERSIONS)('filtering and privacy on PostgreSQL %i', (version) => {
  let db: TestDatabase;
  const dirs = tempDirs();
  const dir = dirs.make;

  beforeAll(async () => {
    db = await createDatabase(version, 'filter');
    await db.query(`
      create table customers (id int primary key, email text, phone text, ssn text, note text);
      create table sessions (id int primary key, token text);
      create table big (id int primary key, v int);
      create table junk (id int primary key);
    `);
  });
  afterAll(async () => {
    await db?.drop();
    dirs.removeAll();
  });

  it('drops excluded tables, columns and skipped operations, and masks and hashes values', async () => {
    const running = await runCapture(
      captureConfig(db.url, dir(), {
        'source.slot': 'filtered',
        topicPrefix: 'f',
        'filter.excludeTables': 'public.sessions,public.big,public.junk',
        'filter.excludeColumns': 'public.customers.ssn',
        'filter.skipOperations': 'd',
        'mask.columns': 'public.customers.phone',
        'mask.with': 'XX-MASK',
        'mask.hashColumns': 'public.customers.email',
        'mask.hashSalt': SALT,
      }),
    );
    try {
      await db.query(`begin;
        insert into customers values (1, 'alice@example.com', 'phone-555-0101', 'ssn-111-22-3333', 'first'),
                                     (2, 'alice@example.com', null, 'ssn-444-55-6666', 'same email');
        insert into sessions values (1, 'session-token-xyz');
        update customers set note = 'updated', phone = 'phone-555-0202' where id = 1;
        delete from customers where id = 2;
        commit;`);
      // A transaction whose only events are filtered out still commits and moves the position on.
      const before = parseLsn(
        (await db.query<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn')).rows[0]!.lsn,
      );
      await db.query(
        `insert into sessions values (2, 'session-token-abc'); delete from customers where id = 1`,
      );
      await waitFor(
        () => running.capture.stats.durableLsn > before,
        'the filtered transactions to be confirmed',
      );
      await db.query(
        `insert into customers values (3, 'bob@example.com', 'phone-555-0303', 'ssn-777', 'marker')`,
      );

      const records = await waitFor(async () => {
        const r = await readTopic(running.log, 'f.public.customers');
        return r.some((x) => x.value?.includes('marker')) ? r : undefined;
      }, 'the marker');
      expect((await running.log.topics()).map((t) => t.topic)).toEqual([
        'f.public.customers',
        'f.schema-history',
      ]);
      // No delete and no tombstone.
      expect(records.map((r) => (r.value === null ? 'tombstone' : envelope(r).op))).toEqual([
        'c',
        'c',
        'u',
        'c',
      ]);
      const [c1, c2, u1, c3] = records.map((r) => envelope(r));
      expect(c1!.after).toEqual({ id: 1, email: sha('alice@example.com'), phone: 'XX-MASK', note: 'first' });
      expect(c2!.after).toEqual({ id: 2, email: sha('alice@example.com'), phone: null, note: 'same email' });
      expect(c1!.after!.email).toBe(c2!.after!.email);
      expect(u1!.after).toEqual({
        id: 1,
        email: sha('alice@example.com'),
        phone: 'XX-MASK',
        note: 'updated',
      });
      expect(c3!.after!.email).toBe(sha('bob@example.com'));
      expect(Object.keys(c3!.after!)).not.toContain('ssn');
      expect(JSON.parse(records[0]!.key!)).toEqual({ id: 1 });

      const text = await allText(running.log);
      for (const raw of [
        'alice@example.com',
        'bob@example.com',
        'phone-555',
        'ssn-',
        'session-token',
        SALT,
      ]) {
        expect(text, raw).not.toContain(raw);
      }
    } finally {
      await running.stop();
    }
  });

  it('fails before creating anything when a filter names a column that does not exist', async () => {
    await expect(
      runCapture(
        captureConfig(db.url, dir(), {
          'source.slot': 'bad_filter',
          'filter.excludeColumns': 'public.customers.emial',
        }),
      ),
    ).rejects.toThrow(/filter.excludeColumns names column public.customers.emial, which does not exist/);
    await expect(
      runCapture(
        captureConfig(db.url, dir(), {
          'source.slot': 'bad_filter',
          'mask.hashColumns': 'public.nope.email',
        }),
      ),
    ).rejects.toThrow(/no salt/);
    const slots = await db.query(`select 1 from pg_replication_slots where slot_name = 'bad_filter'`);
    expect(slots.rowCount).toBe(0);
  });

  it('resumes exactly once after kill -9 inside a large transaction whose deletes are skipped', async () => {
    const dataDir = dir();
    const topic = 'tributary.public.big';
    await db.query(`insert into junk select generate_series(1, 25000)`);
    const args = [
      'run',
      '--source',
      db.url,
      '--data-dir',
      dataDir,
      '--slot',
      'filter_crash',
      '--publication',
      'filter_crash',
      '--tables',
      'public.big,public.junk',
      // The existing junk rows would otherwise be snapshotted: this test is about the stream.
      '--snapshot-mode',
      'never',
      '--log-level',
      'warn',
    ];
    // Small batches: the transaction is written in many pieces, so the kill lands inside it.
    const env = { TRIBUTARY_MAX_BATCH_RECORDS: '20', TRIBUTARY_SKIP_OPERATIONS: 'd' };
    const count = () => recordCountIn(dataDir, topic);
    const first = startCli(args, { env });
    await waitFor(
      async () =>
        (await db.query(`select 1 from pg_replication_slots where slot_name = 'filter_crash' and active`))
          .rowCount === 1,
      'the slot',
    );
    // 50,000 changes, alternating: an insert (kept) and a delete (skipped).
    await db.query(`do $$ begin
      for g in 1..25000 loop
        insert into big values (g, g);
        delete from junk where id = g;
      end loop;
    end $$`);
    await waitFor(
      async () =>
        first.child.exitCode === null ? (await count()) > 0 : Promise.reject(new Error(first.stderr)),
      'part of the transaction',
    );
    first.child.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');
    const partial = await count();
    expect(partial).toBeLessThan(25_000);
    const stored = EmbeddedEventLog.open({ dataDir, readonly: true });
    const position = await Capture.position(stored, 'postgres:filter_crash');
    await stored.close();
    // The stored count is of all events, deletes included: further than the records written.
    expect(position?.tx?.events ?? 0).toBeGreaterThan(partial);

    await db.query(`insert into big values (25001, -1)`);
    const second = startCli(args, { env });
    let records: StoredRecord[] = [];
    try {
      records = await waitFor(
        async () => {
          if (second.child.exitCode !== null) throw new Error(second.stderr);
          if ((await count()) < 25_001) return undefined;
          const log = EmbeddedEventLog.open({ dataDir, readonly: true });
          try {
            return await readTopic(log, topic);
          } finally {
            await log.close();
          }
        },
        'every record',
        120_000,
      );
    } finally {
      second.child.kill('SIGTERM');
      const exited = await second.exited;
      expect(exited.code, exited.stderr).toBe(0);
    }
    const ids = records.map((r) => envelope(r).after!.id as number);
    expect(records.every((r) => envelope(r).op === 'c')).toBe(true);
    expect(ids).toEqual(Array.from({ length: 25_001 }, (_, i) => i + 1));
    // Positions in the transaction count the skipped deletes too: 1, 3, 5, ...
    const orders = records.slice(0, 25_000).map((r) => envelope(r).transaction!.total_order);
    expect(orders.every((o, i) => o === 2 * i + 1)).toBe(true);
    const final = EmbeddedEventLog.open({ dataDir, readonly: true });
    try {
      expect((await final.topics()).map((t) => t.topic)).toEqual([topic, 'tributary.schema-history']);
    } finally {
      await final.close();
    }
  }, 240_000);
});
