import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningCapture } from '../../src/capture/capture-runner.ts';
import { readSchemaHistory, type SchemaHistoryEntry } from '../../src/capture/schema-history.ts';
import type { EventLog } from '../../src/core/event-log.ts';
import {
  captureConfig,
  envelope,
  readTopic,
  runCapture,
  tempDirs,
  waitFor,
  waitForRecords,
} from '../support/capture-harness.ts';
import { cli } from '../support/cli.ts';
import { createDatabase, PG_VERSIONS, type TestDatabase } from '../support/databases.ts';

const PREFIX = 'se';

const history = (log: EventLog, table: string) => readSchemaHistory(log, { topicPrefix: PREFIX, table });

/** Waits until a table's topic holds a row whose `after.id` is `id`, then returns its rows. */
async function waitForId(log: EventLog, table: string, id: number) {
  return waitFor(async () => {
    const rows = (await readTopic(log, `${PREFIX}.public.${table}`)).map(envelope);
    return rows.some((r) => r.after?.id === id) ? rows : undefined;
  }, `row ${id} of ${table}`);
}

const columnNames = (entry: SchemaHistoryEntry) => entry.table.columns.map((c) => c.name);

describe.each(PG_VERSIONS)('schema evolution on PostgreSQL %i', (version) => {
  const dirs = tempDirs();
  let db: TestDatabase;
  let dataDir: string;
  let running: RunningCapture | undefined;
  const config = () => captureConfig(db.url, dataDir, { topicPrefix: PREFIX, 'snapshot.mode': 'never' });

  beforeAll(async () => {
    db = await createDatabase(version, 'schema');
    dataDir = dirs.make();
    await db.query(`
      create table items (id int primary key, a int not null, b text);
      create table doomed (id int primary key);
    `);
    running = await runCapture(config());
  });

  afterAll(async () => {
    await running?.stop();
    await db?.drop();
    dirs.removeAll();
  });

  it('carries each column change into the events after it, losing none around it', async () => {
    const log = running!.log;
    await db.query(`insert into items values (1, 1, 'x')`);
    // Add a column: the change just before and just after in separate transactions.
    await db.query(`alter table items add column c int`);
    await db.query(`insert into items values (2, 2, 'y', 2)`);
    // Drop a column, and rename one, between two changes of one transaction.
    await db.query(`begin; insert into items values (3, 3, 'z', 3); alter table items drop column b;
                    insert into items values (4, 4, 4); commit`);
    await db.query(`begin; insert into items values (5, 5, 5); alter table items rename column a to a2;
                    insert into items values (6, 6, 6); update items set c = 66 where id = 6; commit`);
    // Change a type, with a value the old type could not hold right after.
    await db.query(`insert into items values (7, 7, 7)`);
    await db.query(`alter table items alter column c type bigint`);
    await db.query(`insert into items values (8, 8, 8000000000)`);
    const rows = await waitForId(log, 'items', 8);

    expect(rows.map((r) => [r.op, r.after])).toEqual([
      ['c', { id: 1, a: 1, b: 'x' }],
      ['c', { id: 2, a: 2, b: 'y', c: 2 }],
      ['c', { id: 3, a: 3, b: 'z', c: 3 }],
      ['c', { id: 4, a: 4, c: 4 }],
      ['c', { id: 5, a: 5, c: 5 }],
      ['c', { id: 6, a2: 6, c: 6 }],
      ['u', { id: 6, a2: 6, c: 66 }],
      ['c', { id: 7, a2: 7, c: 7 }],
      ['c', { id: 8, a2: 8, c: 8000000000 }],
    ]);

    const entries = await history(log, 'public.items');
    expect(entries.map((e) => e.type)).toEqual(['CREATE', 'ALTER', 'ALTER', 'ALTER', 'ALTER']);
    expect(entries.map(columnNames)).toEqual([
      ['id', 'a', 'b'],
      ['id', 'a', 'b', 'c'],
      ['id', 'a', 'c'],
      ['id', 'a2', 'c'],
      ['id', 'a2', 'c'],
    ]);
    const [created, added, dropped, renamed, retyped] = entries;
    expect(created!.changes).toBeNull();
    expect(created!.table).toMatchObject({ schema: 'public', table: 'items', primaryKeyColumnNames: ['id'] });
    // The catalog describes the columns that have not changed since (capture lags the DDL here).
    expect(created!.table.columns[0]).toMatchObject({
      name: 'id',
      typeName: 'int4',
      typeExpression: 'integer',
      key: true,
      nullable: false,
      attnum: 1,
    });
    expect(retyped!.table.columns.map((c) => [c.name, c.typeExpression, c.nullable, c.attnum])).toEqual([
      ['id', 'integer', false, 1],
      ['a2', 'integer', false, 2],
      ['c', 'bigint', true, 4],
    ]);
    expect(added!.changes).toMatchObject({ added: ['c'], dropped: [], renamed: [], typeChanged: [] });
    expect(dropped!.changes).toMatchObject({ added: [], dropped: ['b'], renamed: [] });
    expect(renamed!.changes).toMatchObject({ added: [], dropped: [], renamed: [{ from: 'a', to: 'a2' }] });
    expect(retyped!.changes).toMatchObject({
      added: [],
      dropped: [],
      typeChanged: [{ column: 'c', from: expect.stringMatching(/^(int4|integer)$/), to: 'bigint' }],
    });
    // Each shape is recorded at the LSN of its first change, in that change's transaction.
    const firstWith = [1, 2, 4, 6, 8].map((id) => rows.find((r) => r.op === 'c' && r.after?.id === id)!);
    expect(entries.map((e) => e.source.lsn)).toEqual(firstWith.map((r) => r.source.lsn));
    expect(entries.map((e) => e.source.txId)).toEqual(firstWith.map((r) => r.source.txId));
    expect(entries.map((e) => e.source.ts_ms)).toEqual(firstWith.map((r) => r.source.ts_ms));
  });

  it('captures a table created while running and keeps the events of a dropped one', async () => {
    const log = running!.log;
    await db.query(`insert into doomed values (1)`);
    await db.query(`begin; create table fresh (id int primary key, v text); insert into fresh values (1, 'new');
                    insert into doomed values (2); commit`);
    await db.query(`drop table doomed`);
    await db.query(`insert into fresh values (2, 'after drop')`);
    const fresh = await waitForId(log, 'fresh', 2);
    expect(fresh.map((r) => r.after)).toEqual([
      { id: 1, v: 'new' },
      { id: 2, v: 'after drop' },
    ]);
    expect((await readTopic(log, `${PREFIX}.public.doomed`)).map((r) => envelope(r).after)).toEqual([
      { id: 1 },
      { id: 2 },
    ]);
    const entries = await history(log, 'public.fresh');
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({
      type: 'CREATE',
      id: 'public.fresh',
      source: { lsn: fresh[0]!.source.lsn },
    });
    expect(await history(log, 'public.doomed')).toHaveLength(1);
  });

  it('records nothing twice across a restart, and prints the history', async () => {
    const before = await readSchemaHistory(running!.log, { topicPrefix: PREFIX });
    await running!.stop();
    running = await runCapture(config());
    await db.query(`insert into items values (9, 9, 9)`);
    await db.query(`insert into fresh values (3, 'restarted')`);
    await waitForId(running.log, 'fresh', 3);
    await waitForId(running.log, 'items', 9);
    const after = await readSchemaHistory(running.log, { topicPrefix: PREFIX });
    expect(after).toEqual(before);
    await db.query(`alter table fresh add column w int`);
    await db.query(`insert into fresh values (4, 'wider', 4)`);
    await waitForId(running.log, 'fresh', 4);
    expect((await history(running.log, 'public.fresh')).map((e) => e.changes?.added ?? null)).toEqual([
      null,
      ['w'],
    ]);

    const text = await cli(['schema', 'public.items', '--data-dir', dataDir, '--topic-prefix', PREFIX]);
    expect(text.stderr).toBe('');
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('ALTER public.items  (renamed a -> a2)');
    // The old type is named as the stream names it when the catalog no longer has it.
    expect(text.stdout).toMatch(/\(type of c: (int4|integer) -> bigint\)/);
    expect(text.stdout.match(/^\S+\/\S+ {2}/gm)).toHaveLength(5);
    const json = await cli(['schema', 'items', '--json', '--data-dir', dataDir, '--topic-prefix', PREFIX]);
    expect((JSON.parse(json.stdout) as SchemaHistoryEntry[]).map((e) => e.lsn)).toEqual(
      (await history(running.log, 'public.items')).map((e) => e.lsn),
    );
    const missing = await cli(['schema', 'public.nope', '--data-dir', dataDir, '--topic-prefix', PREFIX]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('no schema history for public.nope');
  });
});

describe.each(PG_VERSIONS)('a table added to a listed publication on PostgreSQL %i', (version) => {
  const dirs = tempDirs();
  let db: TestDatabase;
  let running: RunningCapture | undefined;

  beforeAll(async () => {
    db = await createDatabase(version, 'schemapub');
  });

  afterAll(async () => {
    await running?.stop();
    await db?.drop();
    dirs.removeAll();
  });

  it('streams the added table from the ALTER PUBLICATION on, without a restart', async () => {
    await db.query(`create table listed (id int primary key); create table added (id int primary key)`);
    const dataDir = dirs.make();
    const settings = { topicPrefix: PREFIX, 'snapshot.mode': 'never', 'source.tables': 'public.listed' };
    running = await runCapture(captureConfig(db.url, dataDir, settings));
    await db.query(`insert into added values (1)`);
    await db.query(`insert into listed values (1)`);
    await waitForId(running.log, 'listed', 1);
    await db.query(`begin; insert into added values (2); alter publication tributary add table added;
                    insert into listed values (2); commit`);
    await db.query(`insert into added values (3)`);
    await db.query(`insert into listed values (3)`);
    await waitForId(running.log, 'listed', 3);
    const rows = await waitForId(running.log, 'added', 3);
    expect(rows.map((r) => r.after)).toEqual([{ id: 3 }]);
    const entries = await history(running.log, 'public.added');
    expect(entries.map((e) => [e.type, e.source.lsn])).toEqual([['CREATE', rows[0]!.source.lsn]]);

    // The documented way to keep it: add it to source.tables before the next start.
    await running.stop();
    await db.query(`insert into added values (4)`);
    running = await runCapture(
      captureConfig(db.url, dataDir, { ...settings, 'source.tables': 'public.listed,public.added' }),
    );
    await db.query(`insert into added values (5)`);
    const later = await waitForId(running.log, 'added', 5);
    expect(later.map((r) => r.after)).toEqual([{ id: 3 }, { id: 4 }, { id: 5 }]);
    expect(await history(running.log, 'public.added')).toHaveLength(1);
    expect(await waitForRecords(running.log, `${PREFIX}.public.listed`, 3)).toHaveLength(3);
  });
});
