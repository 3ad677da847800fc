import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { Column, Relation, SourceMessage } from '../core/change-event.ts';
import type { Lsn } from '../core/lsn.ts';
import type { Source, SourceHandler } from '../core/source.ts';
import { createEncoder } from '../encode/index.ts';
import { EmbeddedEventLog } from '../log/embedded/sqlite-event-log.ts';
import { Capture } from './capture.ts';
import { readSchemaHistory, schemaHistoryTopic } from './schema-history.ts';

class ScriptedSource implements Source {
  constructor(private readonly batches: readonly (readonly SourceMessage[])[]) {}
  async start(handler: SourceHandler): Promise<void> {
    for (const batch of this.batches) await handler(batch);
  }
  acknowledge(): void {}
  async stop(): Promise<void> {}
}

const int4: Column = {
  name: 'id',
  typeOid: 23,
  typeMod: -1,
  isKey: true,
  type: { kind: 'base', oid: 23, name: 'int4' },
};
const text: Column = {
  name: 'name',
  typeOid: 25,
  typeMod: -1,
  isKey: false,
  type: { kind: 'base', oid: 25, name: 'text' },
};
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
const begin = (finalLsn: Lsn): SourceMessage => ({
  kind: 'begin',
  xid: 9,
  finalLsn,
  commitTimeUs: 1_700_000_000_000_000n,
});
const commit = (commitLsn: Lsn): SourceMessage => ({
  kind: 'commit',
  commitLsn,
  endLsn: commitLsn + 10n,
  commitTimeUs: 1_700_000_000_000_000n,
});

describe('Capture with the schema history', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  async function run(dataDir: string, batches: SourceMessage[][], maxBatchRecords = 2) {
    const log = EmbeddedEventLog.open({ dataDir, durable: false });
    const capture = new Capture({
      source: new ScriptedSource(batches),
      log,
      encoder: createEncoder({ format: 'debezium', topicPrefix: 't' }),
      checkpointName: 'postgres:test',
      serverName: 't',
      database: 'db',
      maxBatchRecords,
      schemaHistoryTopic: schemaHistoryTopic('t'),
      logger: pino({ level: 'silent' }),
    });
    await capture.run();
    const entries = await readSchemaHistory(log, { topicPrefix: 't', table: 'public.items' });
    await log.close();
    return entries.map((e) => [e.type, e.lsn, e.table.columns.map((c) => c.name).join(',')]);
  }

  function dir(): string {
    const path = mkdtempSync(join(tmpdir(), 'tributary-schema-'));
    dirs.push(path);
    return path;
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
