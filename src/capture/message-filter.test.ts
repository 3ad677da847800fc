import { describe, expect, it } from 'vitest';
import type { SourceMessage } from '../core/change-event.ts';
import { Capture } from './capture.ts';
import {
  begin,
  commit,
  logicalMessage as message,
  runCapture,
  ScriptedSource,
  tempDataDirs,
} from './capture-test-support.ts';
import { EventFilter } from './event-filter.ts';

describe('filter.excludeMessagePrefixes', () => {
  const tempDir = tempDataDirs('tributary-msgfilter-');

  async function run(dataDir: string, batches: SourceMessage[][]) {
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
    return runCapture(
      dataDir,
      new ScriptedSource(batches),
      { maxBatchRecords: 1, ...(filter ? { filter } : {}) },
      async (log) => ({
        prefixes: (await log.read('t.message', 0, 0, 100)).map(
          (r) => JSON.parse(r.value!).message.prefix as string,
        ),
        position: await Capture.position(log, 'postgres:test'),
      }),
    );
  }

  it('drops the messages of the listed prefixes, keeps the count of a resumed transaction, moves the position', async () => {
    const dir = tempDir();
    const tx = [
      begin(),
      message('debug', 150n, true),
      message('outbox', 160n, true),
      message('internal.x', 170n, true),
      message('outbox2', 180n, true),
    ];
    // The stream ends inside the transaction after the first kept message was written.
    const first = await run(dir, [tx.slice(0, 3)]);
    expect(first.prefixes).toEqual(['outbox']);
    const second = await run(dir, [
      [...tx, commit()],
      [message('debug', 220n, false)],
      [message('internaly', 230n, false)],
    ]);
    expect(second.prefixes).toEqual(['outbox', 'outbox2', 'internaly']);
    expect(second.position).toEqual({ lsn: 230n, tx: null });
  });
});
