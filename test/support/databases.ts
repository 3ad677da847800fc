import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { PG_VERSIONS } from './global-setup.ts';

export { PG_VERSIONS };

export function clusterUrl(version: number): string {
  const url = inject('pgUrls')[String(version)];
  if (!url) throw new Error(`no PostgreSQL ${version} cluster in this run`);
  return url;
}

export interface TestDatabase {
  readonly name: string;
  readonly url: string;
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    sql: string,
    params?: unknown[],
  ): Promise<pg.QueryResult<R>>;
  /** Drops the database and its slots; kept when KEEP_TEST_DATABASES is set, for inspection. */
  drop(): Promise<void>;
}

/** A fresh database in the version's cluster, with a client connected to it. */
export async function createDatabase(version: number, prefix = 't'): Promise<TestDatabase> {
  const server = clusterUrl(version);
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client(server);
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = server.replace(/\/postgres$/, `/${name}`);
  const client = new pg.Client(url);
  await client.connect();
  return {
    name,
    url,
    query: (sql, params) => client.query(sql, params),
    drop: async () => {
      await client.end();
      if (process.env.KEEP_TEST_DATABASES) return;
      const a = new pg.Client(server);
      await a.connect();
      try {
        await a.query(
          `select pg_drop_replication_slot(slot_name) from pg_replication_slots where database = $1 and not active`,
          [name],
        );
        await a.query(`drop database if exists ${name} with (force)`);
      } finally {
        await a.end();
      }
    },
  };
}
