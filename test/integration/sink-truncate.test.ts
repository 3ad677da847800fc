/**
 * Truncates with several partitions: a TRUNCATE record goes to partition 0 while the table's rows
 * spread over all three, read by separate lanes of two replicas. The workload makes one side lag
 * on purpose before each truncate (a burst of changes on partition 0, so that changes made after
 * the truncate on partitions 1 and 2 are applied before it; or a burst on partition 1, so that its
 * changes made before the truncate are applied after it), with inserts, updates and deletes around,
 * while replicas are killed with kill -9. Then the target equals the source, row for row.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { partitionForKey } from '../../src/log/partitioner.ts';
import { createDatabase, type TestDatabase } from '../support/databases.ts';
import {
  type CanonicalRow,
  dirs,
  ITEM_TYPES,
  type ReplicaKiller,
  random,
  sinkOracle,
} from './sink-oracle-support.ts';

afterAll(() => dirs.removeAll());

const PARTITIONS = 3;
/** The columns the workload writes, canonical (both targets read the same). */
const QUERY = `select id::text as id, name, qty::text as qty, big::text as big, price::text as price
  from items order by id`;
const OPERATIONS = 240;
const TRUNCATES = [0.2, 0.45, 0.7, 0.9];
const KILLS = [0.1, 0.3, 0.55, 0.8];

/** Inserts, updates and deletes with four truncates, a lagging side before each, kills between. */
function truncatingWorkload(seed: number, truncated: { count: number }) {
  return async (source: TestDatabase, killer: ReplicaKiller): Promise<number> => {
    const rnd = random(seed);
    const live = new Set<number>();
    let nextId = 1;
    /** A fresh id whose record key lands on `partition` (any partition when undefined). */
    const idOn = (partition?: number) => {
      while (partition !== undefined && partitionForKey(`{"id":${nextId}}`, PARTITIONS) !== partition)
        nextId++;
      return nextId++;
    };
    const insert = async (ids: number[]) => {
      await source.query(
        `insert into items (id, name, qty, big, price)
         select id, 'item ' || id, id % 97, 9007199254740993 + id, (id * 1.25)::numeric(12,2)
         from unnest($1::int[]) id`,
        [ids],
      );
      for (const id of ids) live.add(id);
    };
    for (let op = 0; op < OPERATIONS; op++) {
      if (KILLS.some((at) => op === Math.floor(OPERATIONS * at))) await killer.start(rnd);
      const t = TRUNCATES.findIndex((at) => op === Math.floor(OPERATIONS * at));
      if (t >= 0) {
        // Partition 0 (the truncate's) behind, or partition 1 behind, by 400 changes.
        const lagging = t % 2 === 0 ? 0 : 1;
        await insert(Array.from({ length: 200 }, () => idOn(lagging)));
        await source.query('update items set qty = qty + 1 where id = any($1)', [
          [...live].filter((id) => partitionForKey(`{"id":${id}}`, PARTITIONS) === lagging),
        ]);
        await source.query('truncate items');
        live.clear();
        truncated.count++;
        // Right after it, changes on the other partitions.
        for (let i = 0; i < 6; i++) await insert([idOn(1 + (i % 2))]);
        continue;
      }
      const r = rnd();
      const ids = [...live];
      if (r < 0.5 || ids.length < 5) await insert([idOn()]);
      else if (r < 0.85) {
        const id = ids[Math.floor(rnd() * ids.length)]!;
        await source.query('update items set price = $2, name = $3 where id = $1', [
          id,
          (Math.floor(rnd() * 1e7) / 100).toFixed(2),
          `renamed ${op}`,
        ]);
      } else {
        const id = ids[Math.floor(rnd() * ids.length)]!;
        await source.query('delete from items where id = $1', [id]);
        live.delete(id);
      }
    }
    return killer.done();
  };
}

describe('table and redis sinks: truncates on a 3-partition topic (LSN fence), kill -9 of replicas', () => {
  it('keeps a PostgreSQL replica equal to the source', async () => {
    const target = await createDatabase(18, 'sinktrunc');
    const truncated = { count: 0 };
    try {
      const run = await sinkOracle({
        name: 'trunc-pg',
        seed: 56,
        partitions: PARTITIONS,
        query: QUERY,
        workload: truncatingWorkload(56, truncated),
        sink: () => ({
          kind: 'table',
          tables: ['public.items'],
          target: target.url,
          mapping: { 'public.items': { types: ITEM_TYPES } },
        }),
        offset: async () => {
          const r = await target.query(
            `select coalesce(sum(next_offset), 0)::int as o from tributary_consumer_offsets`,
          );
          return r.rows[0]?.o ?? 0;
        },
        read: async () => {
          const client = new pg.Client(target.url);
          await client.connect();
          try {
            return (await client.query<CanonicalRow>(QUERY)).rows;
          } finally {
            await client.end();
          }
        },
      });
      expect(truncated.count).toBe(TRUNCATES.length);
      expect(run.kills).toBeGreaterThan(1);
      // The fence holds the last truncate's LSN (every truncate was applied).
      const fence = await target.query(
        `select lsn from tributary_truncates where table_name = 'public.items'`,
      );
      expect(Number(fence.rows[0]?.lsn)).toBeGreaterThan(0);
    } finally {
      await target.drop();
    }
  });

  it('keeps a SQLite replica equal to the source', async () => {
    const file = join(dirs.make(), 'replica.db');
    const truncated = { count: 0 };
    const sqlite = <T>(read: (db: Database.Database) => T): T => {
      const db = new Database(file, { readonly: true, timeout: 5000, fileMustExist: true });
      db.defaultSafeIntegers(true);
      try {
        return read(db);
      } finally {
        db.close();
      }
    };
    const run = await sinkOracle({
      name: 'trunc-sqlite',
      seed: 78,
      partitions: PARTITIONS,
      query: QUERY,
      workload: truncatingWorkload(78, truncated),
      sink: () => ({
        kind: 'table',
        tables: ['public.items'],
        target: `sqlite:${file}`,
        mapping: { 'public.items': { types: ITEM_TYPES } },
      }),
      offset: async () =>
        Number(
          sqlite(
            (db) =>
              db
                .prepare('select coalesce(sum(next_offset), 0) as o from tributary_consumer_offsets')
                .get() as {
                o: bigint;
              },
          ).o,
        ),
      read: async () =>
        sqlite((db) => {
          const text = (v: unknown) => (v === null || v === undefined ? null : String(v));
          const rows = db.prepare('select * from items order by id').all() as Record<string, unknown>[];
          return rows.map((r) => ({
            id: text(r.id),
            name: text(r.name),
            qty: text(r.qty),
            big: text(r.big),
            price: text(r.price),
          }));
        }),
    });
    expect(truncated.count).toBe(TRUNCATES.length);
    expect(run.kills).toBeGreaterThan(1);
  });

  it('keeps one Redis hash per source row equal to the source', async () => {
    const prefix = `sink-trunc-${randomBytes(4).toString('hex')}`;
    const redis = new Redis('redis://127.0.0.1:6379/0');
    const truncated = { count: 0 };
    try {
      const run = await sinkOracle({
        name: 'trunc-redis',
        seed: 91,
        partitions: PARTITIONS,
        query: QUERY,
        workload: truncatingWorkload(91, truncated),
        sink: () => ({
          kind: 'redis',
          tables: ['public.items'],
          key: `${prefix}:items:{id}`,
          offsetsKey: `${prefix}:offsets`,
        }),
        offset: async () => (await redis.hvals(`${prefix}:offsets`)).reduce((n, v) => n + Number(v), 0),
        read: async () => {
          const rows: CanonicalRow[] = [];
          for (const key of await redis.keys(`${prefix}:items:*`)) {
            const h = await redis.hgetall(key);
            const v = (c: string) => h[c] ?? null;
            rows.push({ id: v('id'), name: v('name'), qty: v('qty'), big: v('big'), price: v('price') });
          }
          return rows.sort((a, b) => Number(a.id) - Number(b.id));
        },
      });
      expect(truncated.count).toBe(TRUNCATES.length);
      expect(run.kills).toBeGreaterThan(1);
      // The fence holds the last truncate's LSN; every row's LSN is recorded beside it.
      expect(Number(await redis.hget(`${prefix}:offsets:truncates`, `${prefix}:items:`))).toBeGreaterThan(0);
      expect(await redis.hlen(`${prefix}:offsets:lsn:${prefix}:items:`)).toBe(
        (await redis.keys(`${prefix}:items:*`)).length,
      );
    } finally {
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
    }
  });
});
