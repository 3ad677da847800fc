import { describe, expect, it } from 'vitest';
import type { LogicalMessage, Relation, SourceMessage } from '../core/change-event.ts';
import { HEARTBEAT_PREFIX } from '../core/change-event.ts';
import type { Lsn } from '../core/lsn.ts';
import { Capture } from './capture.ts';
import {
  begin,
  commit,
  logicalMessage,
  runCapture,
  ScriptedSource,
  tempDataDirs,
} from './capture-test-support.ts';

const items: Relation = {
  id: 16384,
  schema: 'public',
  table: 'items',
  replicaIdentity: 'default',
  columns: [
    { name: 'id', typeOid: 23, typeMod: -1, isKey: true, type: { kind: 'base', oid: 23, name: 'int4' } },
  ],
  keyIndexes: [0],
};
const insert = (id: number, lsn: Lsn): SourceMessage => ({
  kind: 'change',
  event: { op: 'c', relation: items, before: null, after: [String(id)], lsn },
});
const message = (prefix: string, text: string, lsn: Lsn, transactional: boolean): LogicalMessage =>
  logicalMessage(prefix, lsn, transactional, text);

describe('Capture with logical messages', () => {
  const tempDir = tempDataDirs('tributary-capture-');

  async function run(dataDir: string, batches: SourceMessage[][]) {
    const source = new ScriptedSource(batches);
    return runCapture(dataDir, source, { maxBatchRecords: 2 }, async (log) => {
      const read = async (topic: string) =>
        (await log.read(topic, 0, 0, 100)).map((r) => JSON.parse(r.value ?? 'null'));
      return {
        acknowledged: source.acknowledged,
        position: await Capture.position(log, 'postgres:test'),
        messages: (await read('t.message')).map((v) => Buffer.from(v.message.content, 'base64').toString()),
        ids: (await read('t.public.items')).map((v) => v.after.id),
      };
    });
  }

  it('writes messages exactly once when the stream is delivered again, also inside a resumed transaction', async () => {
    const dir = tempDir();
    const standalone = message('audit', 'A', 100n, false);
    const inTx = [begin(), insert(1, 150n), message('outbox', 'm', 160n, true), insert(2, 170n)];
    // First run: the stream ends inside the transaction, after a batch of two records was written.
    const first = await run(dir, [[standalone], inTx]);
    expect(first.position).toEqual({ lsn: 100n, tx: { finalLsn: 200n, events: 2 } });
    expect(first.acknowledged).toBe(100n);
    expect(first.messages).toEqual(['A', 'm']);
    // Second run: everything comes again from the stored position's start, then more.
    const second = await run(dir, [
      [standalone],
      [...inTx, commit()],
      [message(HEARTBEAT_PREFIX, 'beat', 215n, true)],
      [message('audit', 'B', 220n, false), message(HEARTBEAT_PREFIX, 'beat', 230n, false)],
    ]);
    expect(second.messages).toEqual(['A', 'm', 'B']);
    expect(second.ids).toEqual([1, 2]);
    // A non-transactional heartbeat writes nothing but moves the position, which is confirmed.
    expect(second.position).toEqual({ lsn: 230n, tx: null });
    expect(second.acknowledged).toBe(230n);
  });
});
