import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { LogicalMessage, SourceMessage } from '../core/change-event.ts';
import type { Lsn } from '../core/lsn.ts';
import type { Source, SourceHandler } from '../core/source.ts';
import { createEncoder } from '../encode/index.ts';
import { EmbeddedEventLog } from '../log/embedded/sqlite-event-log.ts';
import { Capture } from './capture.ts';
import { EventFilter } from './event-filter.ts';

class ScriptedSource implements Source {
  constructor(private readonly batches: readonly (readonly SourceMessage[])[]) {}
  async start(handler: SourceHandler): Promise<void> {
    for (const batch of this.batches) await handler(batch);
  }
  acknowledge(): void {}
  async stop(): Promise<void> {}
}

const message = (prefix: string, lsn: Lsn, transactional: boolean): LogicalMessage => ({
  kind: 'message',
  transactional,
  lsn,
  prefix,
  content: Buffer.from(prefix),
});
const begin: SourceMessage = { kind: 'begin', xid: 9, finalLsn: 200n, commitTimeUs: 1_700_000_000_000_000n };
const commit: SourceMessage = {
  kind: 'commit',
  commitLsn: 200n,
  endLsn: 210n,
  commitTimeUs: 1_700_000_000_000_000n,
};

describe('filter.excludeMessagePrefixes', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  async function run(dataDir: string, batches: SourceMessage[][]) {
    const log = EmbeddedEventLog.open({ dataDir, durable: false });
    const filter = EventFilter.fromConfig({
      source: { tables: [] },
      filter: {
        excludeTables: [],
        includeColumns: [],
        excludeColumns: [],
        skipOperations: [],
        excludeMessagePrefixes: ['debug', 'internal.*'],
      },
      mask: { columns: [], with: '*', hashColumns: [] },
    });
    const capture = new Capture({
      source: new ScriptedSource(batches),
      log,
      encoder: createEncoder({ format: 'debezium', topicPrefix: 't' }),
      checkpointName: 'postgres:test',
      serverName: 't',
      database: 'db',
      maxBatchRecords: 1,
      ...(filter ? { filter } : {}),
      logger: pino({ level: 'silent' }),
    });
    await capture.run();
    const records = await log.read('t.message', 0, 0, 100);
    const position = await Capture.position(log, 'postgres:test');
    await log.close();
    return { prefixes: records.map((r) => JSON.parse(r.value!).message.prefix as string), position };
  }

  it('drops the messages of the listed prefixes, keeps the count of a resumed transaction, moves the position', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tributary-msgfilter-'));
    dirs.push(dir);
    const tx = [
      begin,
      message('debug', 150n, true),
      message('outbox', 160n, true),
      message('internal.x', 170n, true),
      message('outbox2', 180n, true),
    ];
    // The stream ends inside the transaction after the first kept message was written.
    const first = await run(dir, [tx.slice(0, 3)]);
    expect(first.prefixes).toEqual(['outbox']);
    const second = await run(dir, [
      [...tx, commit],
      [message('debug', 220n, false)],
      [message('internaly', 230n, false)],
    ]);
    expect(second.prefixes).toEqual(['outbox', 'outbox2', 'internaly']);
    expect(second.position).toEqual({ lsn: 230n, tx: null });
  });
});
