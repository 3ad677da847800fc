import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, describe, it } from 'vitest';
import { createDatabase } from '../support/databases.ts';
import {
  type CanonicalRow,
  dirs,
  ITEM_TYPES,
  isoToMicros,
  SOURCE_QUERY,
  sinkOracle,
} from './sink-oracle-support.ts';

afterAll(() => dirs.removeAll());

describe('table sink oracle (tributary run, random workload, kill -9 of replicas)', () => {
  it('keeps a PostgreSQL replica equal to the source, row for row', async () => {
    const target = await createDatabase(18, 'sinktgt');
    try {
      await sinkOracle({
        name: 'items-pg',
        seed: 12,
        sink: () => ({
          kind: 'table',
          tables: ['public.items'],
          target: target.url,
          schema: 'replica',
          mapping: { 'public.items': { types: ITEM_TYPES } },
        }),
        offset: async () => {
          const r = await target.query(
            `select coalesce(max(next_offset), 0)::int as o from tributary_consumer_offsets`,
          );
          return r.rows[0]?.o ?? 0;
        },
        read: async () => {
          const client = new pg.Client(target.url);
          await client.connect();
          try {
            await client.query('set search_path = replica');
            return (await client.query<CanonicalRow>(SOURCE_QUERY)).rows;
          } finally {
            await client.end();
          }
        },
      });
    } finally {
      await target.drop();
    }
  });

  it('keeps a SQLite replica equal to the source, row for row', async () => {
    const file = join(dirs.make(), 'replica.db');
    await sinkOracle({
      name: 'items-sqlite',
      seed: 34,
      sink: () => ({
        kind: 'table',
        tables: ['public.items'],
        target: `sqlite:${file}`,
        mapping: { 'public.items': { types: ITEM_TYPES } },
      }),
      offset: async () => {
        const db = new Database(file, { readonly: true, timeout: 5000, fileMustExist: true });
        try {
          const row = db
            .prepare('select coalesce(max(next_offset), 0) as o from tributary_consumer_offsets')
            .get() as { o: number };
          return row.o;
        } finally {
          db.close();
        }
      },
      read: async () => {
        const db = new Database(file, { readonly: true, timeout: 5000 });
        db.defaultSafeIntegers(true);
        try {
          const rows = db.prepare('select * from items order by id').all() as Record<string, unknown>[];
          const text = (v: unknown) => (v === null || v === undefined ? null : String(v));
          return rows.map((r) => ({
            id: text(r.id),
            name: text(r.name),
            qty: text(r.qty),
            big: text(r.big),
            price: text(r.price),
            created: text(r.created),
            updated: r.updated === null ? null : isoToMicros(String(r.updated)),
            doc: text(r.doc),
            flag: r.flag === null ? null : r.flag === 1n ? 'true' : 'false',
            day: text(r.day),
            note: text(r.note),
          }));
        } finally {
          db.close();
        }
      },
    });
  });
});
