import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../support/capture-harness.ts';
import { cli } from '../support/cli.ts';
import { createDatabase, PG_VERSIONS, type TestDatabase } from '../support/databases.ts';
import { freePort, type PgCluster, startCluster } from '../support/pg-cluster.ts';

async function slotCount(url: string): Promise<number> {
  const client = new pg.Client(url);
  await client.connect();
  try {
    return (await client.query<{ n: number }>('select count(*)::int as n from pg_replication_slots')).rows[0]!
      .n;
  } finally {
    await client.end();
  }
}

describe.each(PG_VERSIONS)('clear errors on PostgreSQL %i', (version) => {
  let replicaLevel: PgCluster;
  let oneSlot: PgCluster;
  let db: TestDatabase;
  const dir = tempDir();

  beforeAll(async () => {
    [replicaLevel, oneSlot] = await Promise.all([
      startCluster({ version, settings: { wal_level: 'replica' } }),
      startCluster({ version, settings: { max_replication_slots: 1 } }),
    ]);
    db = await createDatabase(version, 'errors');
  });
  afterAll(async () => {
    await Promise.all([replicaLevel?.stop(), oneSlot?.stop(), db?.drop()]);
    dir.remove();
  });

  const run = (url: string, ...extra: string[]) =>
    cli(['run', '--source', url, '--data-dir', dir.path, ...extra]);

  it('refuses wal_level=replica and says how to enable logical replication', async () => {
    const result = await run(replicaLevel.url());
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('[WAL_LEVEL]');
    expect(result.stderr).toContain('ALTER SYSTEM SET wal_level = logical');
  });

  it('refuses a role without REPLICATION', async () => {
    await db.query(`create role plain_${db.name} login`);
    const url = db.url.replace('postgres@', `plain_${db.name}@`);
    const result = await run(url);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('[NO_REPLICATION_PRIVILEGE]');
    expect(result.stderr).toContain(`ALTER ROLE "plain_${db.name}" WITH REPLICATION`);
  });

  it('reports exhausted slots without creating anything', async () => {
    const admin = new pg.Client(oneSlot.url());
    await admin.connect();
    await admin.query(`select pg_create_logical_replication_slot('taken', 'pgoutput')`);
    await admin.end();
    const result = await run(oneSlot.url(), '--slot', 'mine');
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('[SLOTS_EXHAUSTED]');
    expect(result.stderr).toContain('max_replication_slots');
    expect(await slotCount(oneSlot.url())).toBe(1);
  });

  it('names tables without primary key or replica identity, before creating a slot', async () => {
    await db.query(`create table "Keyless" (a int); create table fine (id int primary key)`);
    const result = await run(db.url, '--slot', 'keyless_check');
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('[NO_REPLICA_IDENTITY]');
    expect(result.stderr).toContain('public."Keyless"');
    expect(result.stderr).toContain('ALTER TABLE public."Keyless" REPLICA IDENTITY FULL;');
    const client = new pg.Client(db.url);
    await client.connect();
    const slots = await client.query(`select 1 from pg_replication_slots where slot_name = 'keyless_check'`);
    await client.end();
    expect(slots.rowCount).toBe(0);
  });

  it('explains a wrong source URL', async () => {
    const port = await freePort();
    const refused = await run(`postgres://postgres@127.0.0.1:${port}/x`);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/connection refused/);
    expect(refused.stderr).toMatch(/check the host and port/);

    const missing = await run(db.url.replace(/\/[^/]+$/, '/no_such_db'));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('[SOURCE_DATABASE_MISSING]');

    const malformed = await run('mysql://root@localhost/shop');
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toContain('must start with postgres://');

    const none = await cli(['run', '--data-dir', dir.path], { env: { DATABASE_URL: '' } });
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('no source database given');
  });
});
