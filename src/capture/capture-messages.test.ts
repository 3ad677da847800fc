import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { LogicalMessage, Relation, SourceMessage } from '../core/change-event.ts';
import { HEARTBEAT_PREFIX } from '../core/change-event.ts';
import type { Lsn } from '../core/lsn.ts';
import type { Source, SourceHandler } from '../core/source.ts';
import { createEncoder } from '../encode/index.ts';
import { EmbeddedEventLog } from '../log/embedded/sqlite-event-log.ts';
import { Capture } from './capture.ts';

/** Delivers fixed batches, then ends as a stopped source does. */
class ScriptedSource implements Source {
  acknowledged: Lsn = 0n;
  constructor(private readonly batches: readonly (readonly SourceMessage[])[]) {}
  async start(handler: SourceHandler): Promise<void> {
    for (const batch of this.batches) await handler(batch);
  }
  acknowledge(lsn: Lsn): void {
    if (lsn > this.acknowledged) this.acknowledged = lsn;
  }
  async stop(): Promise<void> {}
}

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
const message = (prefix: string, text: string, lsn: Lsn, transactional: boolean): LogicalMessage => ({
  kind: 'message',
  transactional,
  lsn,
  prefix,
  content: Buffer.from(text),
});
const begin: SourceMessage = { kind: 'begin', xid: 9, finalLsn: 200n, commitTimeUs: 1_700_000_000_000_000n };
const commit: SourceMessage = {
  kind: 'commit',
  commitLsn: 200n,
  endLsn: 210n,
  commitTimeUs: 1_700_000_000_000_000n,
};

describe('Capture with logical messages', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  async function run(dataDir: string, batches: SourceMessage[][]) {
    const log = EmbeddedEventLog.open({ dataDir, durable: false });
    const source = new ScriptedSource(batches);
    const capture = new Capture({
      source,
      log,
      encoder: createEncoder({ format: 'debezium', topicPrefix: 't' }),
      checkpointName: 'postgres:test',
      serverName: 't',
      database: 'db',
      maxBatchRecords: 2,
      logger: pino({ level: 'silent' }),
    });
    await capture.run();
    const read = async (topic: string) =>
      (await log.read(topic, 0, 0, 100)).map((r) => JSON.parse(r.value ?? 'null'));
    const result = {
      acknowledged: source.acknowledged,
      position: await Capture.position(log, 'postgres:test'),
      messages: (await read('t.message')).map((v) => Buffer.from(v.message.content, 'base64').toString()),
      ids: (await read('t.public.items')).map((v) => v.after.id),
    };
    await log.close();
    return result;
  }

  it('writes messages exactly once when the stream is delivered again, also inside a resumed transaction', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tributary-capture-'));
    dirs.push(dir);
    const standalone = message('audit', 'A', 100n, false);
    const inTx = [begin, insert(1, 150n), message('outbox', 'm', 160n, true), insert(2, 170n)];
    // First run: the stream ends inside the transaction, after a batch of two records was written.
    const first = await run(dir, [[standalone], inTx]);
    expect(first.position).toEqual({ lsn: 100n, tx: { finalLsn: 200n, events: 2 } });
    expect(first.acknowledged).toBe(100n);
    expect(first.messages).toEqual(['A', 'm']);
    // Second run: everything comes again from the stored position's start, then more.
    const second = await run(dir, [
      [standalone],
      [...inTx, commit],
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
