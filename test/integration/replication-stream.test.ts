import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReplicationStream } from '../../src/source/postgres/replication-stream.ts';
import { createDatabase, PG_VERSIONS, type TestDatabase } from '../support/databases.ts';

describe.each(PG_VERSIONS)('replication stream on PostgreSQL %i', (version) => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createDatabase(version, 'stream');
  });
  afterAll(async () => {
    await db?.drop();
  });

  // The race behind a hang seen in CI: a slot dropped between the reconnect and START_REPLICATION.
  it('settles with the server error when START_REPLICATION is refused, and the connection stays usable', async () => {
    const client = new pg.Client({ connectionString: db.url, replication: 'database' } as pg.ClientConfig);
    await client.connect();
    try {
      const stream = new ReplicationStream('START_REPLICATION SLOT "no_such_slot" LOGICAL 0/0', () => {});
      client.query(stream as unknown as pg.QueryConfig);
      await expect(stream.done).rejects.toThrow(/no_such_slot/);
      const r = await client.query<{ systemid: string }>('IDENTIFY_SYSTEM');
      expect(r.rows[0]?.systemid).toMatch(/^\d+$/);
    } finally {
      await client.end();
    }
  });
});
