import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SourceMessage } from '../../src/core/change-event.ts';
import { PostgresSource } from '../../src/source/postgres/postgres-source.ts';
import { waitFor } from '../support/capture-harness.ts';
import { createDatabase, PG_VERSIONS, type TestDatabase } from '../support/databases.ts';

const ROWS = 20_000;

/**
 * A log that stops taking appends for a while (NATS electing a leader, a full disk) must not
 * corrupt the stream: while the handler waits, the socket keeps buffering, and every buffered
 * chunk must reach the decoder intact once it takes data again. Seen in CI: "unexpected
 * replication message type 0x30" after a NATS node was killed, because the protocol parser
 * reused a buffer whose earlier messages were still queued.
 */
describe.each(PG_VERSIONS)('a stalled handler on PostgreSQL %i', (version) => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createDatabase(version, 'stall');
    await db.query('create table stall (id int primary key, pad text not null)');
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('delivers every change intact when the handler stalls now and then under a stream of small transactions', async () => {
    const source = new PostgresSource({
      url: db.url,
      slot: 'stall_slot',
      publication: 'stall_pub',
      logger: pino({ level: 'silent' }),
    });
    let calls = 0;
    const seen = new Map<number, string>();
    let badType: string | undefined;
    const handler = async (messages: readonly SourceMessage[]) => {
      // The log stalls now and then (a leader election, a slow disk) while the workload goes on:
      // the socket buffers what the server keeps sending meanwhile.
      if (++calls % 40 === 0) await new Promise((resolve) => setTimeout(resolve, 300 + (calls % 7) * 100));
      for (const m of messages) {
        if (m.kind !== 'change') continue;
        const after = m.event.after;
        if (!after || typeof after[0] !== 'string') {
          badType = JSON.stringify(after);
          continue;
        }
        seen.set(Number(after[0]), String(after[1]));
      }
    };
    const running = source.start(handler);
    running.catch(() => undefined);
    await waitFor(() => source.stats.connected, 'the source to connect', 30_000);
    // Four writers of small transactions, with a large row now and then, each on its own
    // connection (one client runs one query at a time).
    const writers = [0, 1, 2, 3].map(async (w) => {
      const client = new pg.Client(db.url);
      await client.connect();
      try {
        for (let from = 1 + w * 10; from <= ROWS; from += 40) {
          await client.query(
            `insert into stall select i, repeat(md5(i::text), case when i % 997 = 0 then 3000 else 1 + i % 23 end)
             from generate_series(${from}, ${from + 9}) i`,
          );
        }
      } finally {
        await client.end();
      }
    });
    await Promise.all(writers);
    await Promise.race([
      waitFor(() => seen.size >= ROWS, 'every change', 120_000),
      running.then(() => {
        throw new Error('the source stopped before delivering every change');
      }),
    ]);
    await source.stop();
    await running;
    expect(badType).toBeUndefined();
    const oracle = await db.query<{ id: number; pad: string }>('select id, pad from stall order by id');
    expect(oracle.rows.length).toBe(ROWS);
    for (const row of oracle.rows) expect(seen.get(row.id)).toBe(row.pad);
  }, 180_000);
});
