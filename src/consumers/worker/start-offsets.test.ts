import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, expect, it } from 'vitest';
import { EmbeddedEventLog } from '../../log/embedded/sqlite-event-log.ts';
import { ConsumerStore } from '../consumer-store.ts';
import { sqliteTarget } from '../transactional.ts';
import { startOffsets } from './start-offsets.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'start-offsets-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

/**
 * A replica of a transactional consumer applied records into the target and died before its
 * offset reached the consumer store; the next owner starts from the target and mirrors that offset
 * into the store, which `consumers` reads the lag from (it showed lag forever when no new record
 * came to the partition).
 */
it('mirrors a transactional target offset ahead of the consumer store into the store', async () => {
  const log = EmbeddedEventLog.open({ dataDir, durable: false, defaultPartitions: 2 });
  const store = ConsumerStore.open({ dataDir });
  const session = await sqliteTarget(join(dataDir, 'target.db')).open({ connections: 1 });
  try {
    await log.append(
      Array.from({ length: 40 }, (_, i) => ({
        topic: 't',
        key: `k${i}`,
        value: '{}',
        headers: {},
        timestamp: 0,
      })),
    );
    const partitions = (await log.topics())[0]!.partitions.map((p) => ({
      topic: 't',
      partition: p.partition,
    }));
    const ends = (await log.topics())[0]!.partitions;
    store.commit('g', [{ topic: 't', partition: 0, offset: 3 }]);
    // The target got further on partition 0 (to its end), and has partition 1 at 2.
    await session.transaction(
      'g',
      [{ topic: 't', partition: 0, offset: ends[0]!.endOffset }],
      async () => {},
    );
    await session.transaction('g', [{ topic: 't', partition: 1, offset: 2 }], async () => {});
    const starts = await startOffsets({
      consumer: { name: 'c', group: 'g', transactional: sqliteTarget('unused') },
      partitions,
      log,
      store,
      target: session,
      policy: 'fail',
      logger: pino({ level: 'silent' }),
    });
    expect([...starts]).toEqual([
      ['t\u00000', ends[0]!.endOffset],
      ['t\u00001', 2],
    ]);
    expect([...store.committed('g')].sort((a, b) => a.partition - b.partition)).toEqual([
      { topic: 't', partition: 0, offset: ends[0]!.endOffset },
      { topic: 't', partition: 1, offset: 2 },
    ]);
  } finally {
    await session.close();
    store.close();
    await log.close();
  }
});
