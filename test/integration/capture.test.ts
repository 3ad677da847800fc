import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningCapture } from '../../src/capture/capture-runner.ts';
import type { EventLog } from '../../src/core/event-log.ts';
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

describe.each(PG_VERSIONS)('capture on PostgreSQL %i', (version) => {
  let db: TestDatabase;
  let dir: ReturnType<typeof tempDir>;
  let running: RunningCapture;
  let log: EventLog;

  beforeAll(async () => {
    db = await createDatabase(version, 'capture');
    dir = tempDir();
    await db.query(`
      create table items (id int primary key, name text, qty int);
      create table full_t (id int primary key, a text, b int);
      alter table full_t replica identity full;
      create table idx_t (id int not null, code text not null, note text);
      create unique index idx_t_code on idx_t (code);
      alter table idx_t replica identity using index idx_t_code;
      create table nopk (a int, b text);
      alter table nopk replica identity full;
      create schema "Mixed Case";
      create table "Mixed Case"."Ördër Ítems" ("Key" int primary key, "Välue" text, "quote""d" int);
    `);
    running = await runCapture(captureConfig(db.url, dir.path, { topicPrefix: 'shop' }));
    log = running.log;
    // The (empty) tables' initial snapshot done first: a keyless table's snapshot that ran after
    // the inserts below would read their rows again (docs: keyless tables may get duplicates).
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

  it('captures insert, update, delete with the Debezium envelope, tombstones and transaction metadata', async () => {
    await db.query(
      `begin; insert into items values (1, 'apple', 3), (2, 'pear', 5); update items set qty = 4 where id = 1; delete from items where id = 2; commit;`,
    );
    const records = await waitForRecords(log, 'shop.public.items', 5);
    expect(records.map((r) => (r.value === null ? 'tombstone' : envelope(r).op))).toEqual([
      'c',
      'c',
      'u',
      'd',
      'tombstone',
    ]);
    const [c1, , u1, d2, tomb] = records;
    expect(JSON.parse(c1!.key!)).toEqual({ id: 1 });
    expect(envelope(c1!)).toMatchObject({ before: null, after: { id: 1, name: 'apple', qty: 3 } });
    // REPLICA IDENTITY DEFAULT: no old image for an update that keeps the key.
    expect(envelope(u1!)).toMatchObject({ before: null, after: { id: 1, name: 'apple', qty: 4 } });
    expect(envelope(d2!)).toMatchObject({ before: { id: 2, name: null, qty: null }, after: null });
    expect(tomb!.key).toBe(d2!.key);
    expect(tomb!.value).toBeNull();
    const source = envelope(c1!).source;
    expect(source).toMatchObject({
      connector: 'postgresql',
      name: 'shop',
      db: db.name,
      schema: 'public',
      table: 'items',
      snapshot: 'false',
      xmin: null,
    });
    expect(typeof source.txId).toBe('number');
    expect(typeof source.lsn).toBe('number');
    expect(JSON.parse(source.sequence as string)).toHaveLength(2);
    const txs = records.filter((r) => r.value !== null).map((r) => envelope(r).transaction!);
    expect(new Set(txs.map((t) => t.id)).size).toBe(1);
    expect(txs[0]!.id).toBe(`${source.txId}:${txs[0]!.id.split(':')[1]}`);
    expect(txs.map((t) => t.total_order)).toEqual([1, 2, 3, 4]);
    expect(txs.map((t) => t.data_collection_order)).toEqual([1, 2, 3, 4]);
    // Record timestamps are the commit time.
    expect(Math.abs(c1!.timestamp - (source.ts_ms as number))).toBeLessThanOrEqual(1);
  });

  it('gives before images as each replica identity provides them', async () => {
    await db.query(
      `insert into full_t values (1, 'x', 1); update full_t set b = 2 where id = 1; delete from full_t where id = 1;`,
    );
    const full = await waitForRecords(log, 'shop.public.full_t', 4);
    expect(envelope(full[1]!)).toMatchObject({
      op: 'u',
      before: { id: 1, a: 'x', b: 1 },
      after: { id: 1, a: 'x', b: 2 },
    });
    expect(envelope(full[2]!)).toMatchObject({ op: 'd', before: { id: 1, a: 'x', b: 2 } });

    await db.query(
      `insert into idx_t values (1, 'A', 'n1'); update idx_t set code = 'B' where code = 'A'; delete from idx_t where code = 'B';`,
    );
    const idx = await waitForRecords(log, 'shop.public.idx_t', 6);
    expect(JSON.parse(idx[0]!.key!)).toEqual({ code: 'A' });
    // The identity key changed: a delete of the old key, its tombstone, a create of the new key.
    expect(envelope(idx[1]!)).toMatchObject({
      op: 'd',
      before: { id: null, code: 'A', note: null },
      after: null,
    });
    expect(idx[2]!.value).toBeNull();
    expect(JSON.parse(idx[3]!.key!)).toEqual({ code: 'B' });
    expect(envelope(idx[3]!)).toMatchObject({
      op: 'c',
      before: null,
      after: { id: 1, code: 'B', note: 'n1' },
    });
    expect(envelope(idx[4]!)).toMatchObject({ op: 'd', before: { code: 'B' } });

    await db.query(
      `insert into nopk values (1, 'a'); update nopk set b = 'b'; delete from nopk; insert into nopk values (2, 'z');`,
    );
    const nopk = await waitForRecords(log, 'shop.public.nopk', 4);
    // No key, so no tombstone after the delete (compaction needs a key).
    expect(nopk.map((r) => r.key)).toEqual([null, null, null, null]);
    expect(nopk.map((r) => envelope(r).op)).toEqual(['c', 'u', 'd', 'c']);
    expect(envelope(nopk[1]!)).toMatchObject({ op: 'u', before: { a: 1, b: 'a' }, after: { a: 1, b: 'b' } });
    expect(envelope(nopk[2]!)).toMatchObject({ op: 'd', before: { a: 1, b: 'b' }, after: null });
  });

  it('captures truncate', async () => {
    await db.query(`insert into items values (10, 't', 1)`);
    await db.query(`truncate items, full_t`);
    const records = await waitFor(async () => {
      const r = await readTopic(log, 'shop.public.items');
      return r.some((x) => x.value !== null && envelope(x).op === 't') ? r : undefined;
    }, 'a truncate record');
    const t = records.find((x) => x.value !== null && envelope(x).op === 't')!;
    expect(t.key).toBeNull();
    expect(envelope(t)).toMatchObject({ op: 't', before: null, after: null });
    const full = await readTopic(log, 'shop.public.full_t');
    expect(full.some((x) => x.value !== null && envelope(x).op === 't')).toBe(true);
  });

  it('keeps quoted, mixed-case and non-ASCII names', async () => {
    await db.query(`insert into "Mixed Case"."Ördër Ítems" values (7, 'ünïcødé ✓ 𝄞', 1)`);
    const [r] = await waitForRecords(log, 'shop.Mixed Case.Ördër Ítems', 1);
    expect(JSON.parse(r!.key!)).toEqual({ Key: 7 });
    expect(envelope(r!)).toMatchObject({
      after: { Key: 7, Välue: 'ünïcødé ✓ 𝄞', 'quote"d': 1 },
      source: { schema: 'Mixed Case', table: 'Ördër Ítems' },
    });
  });

  it('resumes after a clean stop without losing or repeating a change', async () => {
    await db.query(`insert into items values (100, 'before stop', 1)`);
    await waitFor(
      async () => (await readTopic(log, 'shop.public.items')).some((r) => r.value?.includes('before stop')),
      'the first insert',
    );
    await running.stop();
    await db.query(
      `insert into items values (101, 'while stopped', 1); update items set qty = 2 where id = 100`,
    );
    running = await runCapture(captureConfig(db.url, dir.path, { topicPrefix: 'shop' }));
    log = running.log;
    const records = await waitFor(async () => {
      const r = await readTopic(log, 'shop.public.items');
      return r.some((x) => x.value?.includes('"qty":2') && x.value.includes('"id":100')) ? r : undefined;
    }, 'the changes made while stopped');
    const keys = records
      .filter((r) => r.value !== null)
      .map((r) => `${envelope(r).op}:${r.key}:${envelope(r).source.lsn}`);
    expect(new Set(keys).size).toBe(keys.length);
    const creates = records
      .filter((r) => r.value !== null && envelope(r).op === 'c')
      .map((r) => envelope(r).after!.name);
    expect(creates.filter((name) => name === 'while stopped')).toHaveLength(1);
    expect(creates.filter((name) => name === 'before stop')).toHaveLength(1);
    expect(
      records.filter((r) => r.value !== null && envelope(r).op === 'u' && envelope(r).after!.id === 100),
    ).toHaveLength(1);
  });
});
