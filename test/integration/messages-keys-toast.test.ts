import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningCapture } from '../../src/capture/capture-runner.ts';
import type { StoredRecord } from '../../src/core/record.ts';
import {
  captureConfig,
  envelope,
  readTopic,
  runCapture,
  tempDir,
  waitFor,
  waitForRecords,
} from '../support/capture-harness.ts';
import { createDatabase, PG_VERSIONS, type TestDatabase } from '../support/databases.ts';

interface MessageValue {
  op: string;
  source: { txId: number | null; lsn: number; schema: string; table: string; ts_ms: number };
  transaction: { id: string; total_order: number; data_collection_order: number } | null;
  message: { prefix: string; content: string };
}

const message = (record: StoredRecord) => JSON.parse(record.value ?? 'null') as MessageValue;
const content = (record: StoredRecord) => Buffer.from(message(record).message.content, 'base64');

/** Waits until a topic holds a record whose value contains `marker`, then returns the topic. */
async function waitForMarker(running: RunningCapture, topic: string, marker: string) {
  return waitFor(async () => {
    const records = await readTopic(running.log, topic);
    return records.some((r) => r.value?.includes(marker)) ? records : undefined;
  }, `${marker} in ${topic}`);
}

describe.each(PG_VERSIONS)('logical messages, key changes and TOAST on PostgreSQL %i', (version) => {
  let db: TestDatabase;
  let dir: ReturnType<typeof tempDir>;
  let running: RunningCapture;
  const config = () => captureConfig(db.url, dir.path, { topicPrefix: 'mk' });

  beforeAll(async () => {
    db = await createDatabase(version, 'messages');
    dir = tempDir();
    await db.query(`
      create table items (id int primary key, name text);
      create table moved (id int primary key, name text);
      create table moved_full (id int primary key, name text);
      alter table moved_full replica identity full;
      create table docs (id int primary key, body text, n int);
      alter table docs alter column body set storage external;
    `);
    running = await runCapture(config());
    // The (empty) tables' initial snapshot done first: a snapshot still running at the restart
    // below would resume without the keys the stream carried before it (see README, known limits).
    await waitFor(
      () => running.snapshots.status().every((job) => job.state === 'done'),
      'the initial snapshot to finish',
    );
  });

  afterAll(async () => {
    await running?.stop();
    await db?.drop();
    dir?.remove();
  });

  it('records transactional messages inside their transaction, in order, with exact bytes', async () => {
    const binary = Buffer.from([0, 1, 2, 0xfe, 0xff, 0x0a, 0x22, 0x5c]);
    await db.query(
      `begin;
       insert into items values (1, 'first');
       select pg_logical_emit_message(true, 'outbox', $1::bytea);
       insert into items values (2, 'second');
       select pg_logical_emit_message(true, 'outbox', convert_to('{"id": 2, "name": "Zoë"}', 'UTF8'));
       select pg_logical_emit_message(true, 'tributary.heartbeat', 'not a record');
       commit;`.replace('$1::bytea', `'\\x${binary.toString('hex')}'::bytea`),
    );
    const messages = await waitForRecords(running.log, 'mk.message', 2);
    const rows = await waitForRecords(running.log, 'mk.public.items', 2);
    expect(messages).toHaveLength(2);
    expect(messages.map((r) => r.key)).toEqual(['{"prefix":"outbox"}', '{"prefix":"outbox"}']);
    expect(content(messages[0]!)).toEqual(binary);
    expect(content(messages[1]!).toString('utf8')).toBe('{"id": 2, "name": "Zoë"}');
    const [m1, m2] = messages.map(message);
    expect(m1).toMatchObject({ op: 'm', source: { schema: '', table: '' }, message: { prefix: 'outbox' } });
    const changes = rows.map((r) => envelope(r));
    // One transaction: changes and messages share its id and are numbered together.
    expect(new Set([...changes, m1!, m2!].map((v) => v.transaction!.id)).size).toBe(1);
    expect(m1!.source.txId).toBe(changes[0]!.source.txId);
    expect(changes.map((c) => c.transaction!.total_order)).toEqual([1, 3]);
    expect([m1!.transaction!.total_order, m2!.transaction!.total_order]).toEqual([2, 4]);
    expect([m1!.transaction!.data_collection_order, m2!.transaction!.data_collection_order]).toEqual([1, 2]);
    expect(m1!.source.lsn).toBeGreaterThan(changes[0]!.source.lsn as number);
    // A message's LSN is the end of its WAL record: the next change may start right there.
    expect(m1!.source.lsn).toBeLessThanOrEqual(changes[1]!.source.lsn as number);
    expect(m2!.source.lsn).toBeGreaterThan(changes[1]!.source.lsn as number);
  });

  it('records non-transactional messages outside any transaction, even when it rolls back', async () => {
    await db.query(`begin; select pg_logical_emit_message(false, 'audit', 'kept'); rollback;`);
    await db.query(`select pg_logical_emit_message(false, 'tributary.heartbeat', 'beat')`);
    const emitted = await db.query<{ lsn: string }>(
      `select pg_logical_emit_message(false, 'audit', 'second')::text as lsn`,
    );
    const records = await waitForMarker(running, 'mk.message', message2b64('second'));
    // source.lsn is what pg_logical_emit_message returned.
    expect(message(records[records.length - 1]!).source.lsn).toBe(lsnNumber(emitted.rows[0]!.lsn));
    const audit = records.filter((r) => message(r).message.prefix === 'audit');
    expect(audit.map((r) => content(r).toString())).toEqual(['kept', 'second']);
    for (const r of audit) {
      expect(message(r)).toMatchObject({ op: 'm', transaction: null, source: { txId: null } });
    }
    expect(records.some((r) => message(r).message.prefix.startsWith('tributary.'))).toBe(false);
  });

  it('writes each message exactly once across a stop and restart', async () => {
    await running.stop();
    await db.query(`select pg_logical_emit_message(false, 'audit', 'while stopped')`);
    await db.query(
      `begin; insert into items values (3, 'stopped'); select pg_logical_emit_message(true, 'outbox', 'tx while stopped'); commit;`,
    );
    running = await runCapture(config());
    await waitForMarker(running, 'mk.message', message2b64('tx while stopped'));
    await db.query(`select pg_logical_emit_message(false, 'audit', 'after restart')`);
    const records = await waitForMarker(running, 'mk.message', message2b64('after restart'));
    expect(records.map((r) => `${message(r).message.prefix}:${content(r).toString('latin1')}`)).toEqual([
      'outbox:\u0000\u0001\u0002\u00fe\u00ff\n"\\',
      `outbox:${Buffer.from('{"id": 2, "name": "Zoë"}').toString('latin1')}`,
      'audit:kept',
      'audit:second',
      'audit:while stopped',
      'outbox:tx while stopped',
      'audit:after restart',
    ]);
    const items = await readTopic(running.log, 'mk.public.items');
    expect(items.map((r) => envelope(r).after!.id)).toEqual([1, 2, 3]);
  });

  it('splits a primary key change into delete, tombstone and create', async () => {
    await db.query(`insert into moved values (1, 'a'); update moved set id = 2, name = 'b' where id = 1;`);
    const records = await waitForRecords(running.log, 'mk.public.moved', 4);
    expect(records.map((r) => [r.key, r.value === null ? 'tombstone' : envelope(r).op])).toEqual([
      ['{"id":1}', 'c'],
      ['{"id":1}', 'd'],
      ['{"id":1}', 'tombstone'],
      ['{"id":2}', 'c'],
    ]);
    const del = envelope(records[1]!);
    const create = envelope(records[3]!);
    expect(del).toMatchObject({ before: { id: 1, name: null }, after: null });
    expect(create).toMatchObject({ before: null, after: { id: 2, name: 'b' } });
    expect(del.transaction).toEqual(create.transaction);
    expect(del.source.lsn).toBe(create.source.lsn);
    expect(records.map((r) => r.headers)).toEqual([{}, {}, {}, {}]);

    await db.query(
      `insert into moved_full values (1, 'a'); update moved_full set name = 'b'; update moved_full set id = 5;`,
    );
    const full = await waitForRecords(running.log, 'mk.public.moved_full', 5);
    expect(full.map((r) => [r.key, r.value === null ? 'tombstone' : envelope(r).op])).toEqual([
      ['{"id":1}', 'c'],
      ['{"id":1}', 'u'],
      ['{"id":1}', 'd'],
      ['{"id":1}', 'tombstone'],
      ['{"id":5}', 'c'],
    ]);
    expect(envelope(full[2]!).before).toEqual({ id: 1, name: 'b' });
  });

  it('marks unchanged TOAST values with the placeholder and the header', async () => {
    await db.query(`insert into docs values (1, repeat(md5(random()::text), 200), 1)`);
    await db.query(`update docs set n = 2 where id = 1`);
    const records = await waitForRecords(running.log, 'mk.public.docs', 2);
    const { rows } = await db.query<{ body: string }>(`select body from docs where id = 1`);
    expect(rows[0]!.body.length).toBe(6400);
    expect(envelope(records[0]!).after).toEqual({ id: 1, body: rows[0]!.body, n: 1 });
    expect(records[0]!.headers).toEqual({});
    expect(envelope(records[1]!).after).toEqual({ id: 1, body: '__debezium_unavailable_value', n: 2 });
    expect(records[1]!.headers).toEqual({ 'tributary.unchanged_toast': '"body"' });
  });
});

function lsnNumber(text: string): number {
  const [hi, lo] = text.split('/');
  return Number((BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`));
}

function message2b64(text: string): string {
  return Buffer.from(text).toString('base64');
}
