import { describe, expect, it } from 'vitest';
import type { Column, Relation, SourceMessage } from '../core/change-event.ts';
import type { Lsn } from '../core/lsn.ts';
import { begin, commit, runCapture, ScriptedSource, tempDataDirs } from './capture-test-support.ts';
import { readSchemaHistory, schemaHistoryTopic } from './schema-history.ts';

const column = (name: string, oid: number, typeName: string, isKey: boolean): Column => ({
  name,
  typeOid: oid,
  typeMod: -1,
  isKey,
  type: { kind: 'base', oid, name: typeName },
});
const int4 = column('id', 23, 'int4', true);
const text = column('name', 25, 'text', false);
const v1: Relation = {
  id: 16384,
  schema: 'public',
  table: 'items',
  replicaIdentity: 'default',
  columns: [int4],
  keyIndexes: [0],
};
const v2: Relation = { ...v1, columns: [int4, text] };

const schema = (relation: Relation, lsn: Lsn): SourceMessage => ({
  kind: 'schema',
  relation,
  lsn,
  details: [],
});
const insert = (relation: Relation, id: number, lsn: Lsn): SourceMessage => ({
  kind: 'change',
  event: { op: 'c', relation, before: null, after: relation.columns.map(() => String(id)), lsn },
});
describe('Capture with the schema history', () => {
  const dir = tempDataDirs('tributary-schema-');

  async function run(dataDir: string, batches: SourceMessage[][], maxBatchRecords = 2) {
    const entries = await runCapture(
      dataDir,
      new ScriptedSource(batches),
      { maxBatchRecords, schemaHistoryTopic: schemaHistoryTopic('t') },
      (log) => readSchemaHistory(log, { topicPrefix: 't', table: 'public.items' }),
    );
    return entries.map((e) => [e.type, e.lsn, e.table.columns.map((c) => c.name).join(',')]);
  }

  it('records each shape once when the stream comes again, also inside a resumed transaction', async () => {
    const data = dir();
    const tx = [
      begin(200n),
      schema(v1, 150n),
      insert(v1, 1, 150n),
      insert(v1, 2, 160n),
      schema(v2, 170n),
      insert(v2, 3, 170n),
    ];
    // The stream ends inside the transaction, after both shapes were written with its first part.
    expect(await run(data, [tx])).toEqual([
      ['CREATE', '0/96', 'id'],
      ['ALTER', '0/AA', 'id,name'],
    ]);
    // A new session sends every shape again: the old one inside the resumed part, the new one
    // before the next transaction's first change.
    const again = await run(data, [
      [...tx, commit(200n)],
      [begin(300n), schema(v2, 250n), insert(v2, 4, 250n), commit(300n)],
    ]);
    expect(again).toEqual([
      ['CREATE', '0/96', 'id'],
      ['ALTER', '0/AA', 'id,name'],
    ]);
  });

  it('records a shape again when the transaction it was met in restarts before being written', async () => {
    const data = dir();
    // The stream restarts inside the transaction before anything of it was written.
    const entries = await run(
      data,
      [
        [begin(200n), schema(v1, 150n), insert(v1, 1, 150n)],
        [begin(200n), schema(v1, 150n), insert(v1, 1, 150n), commit(200n)],
      ],
      100,
    );
    expect(entries).toEqual([['CREATE', '0/96', 'id']]);
  });
});
