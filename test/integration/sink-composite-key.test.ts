/**
 * A table with a two-column primary key of text columns through the `table` (SQLite), `redis`
 * and `search` sinks of one real `tributary run`: keys that a plain `:`-join would confuse
 * (`a:b` + `c` and `a` + `b:c`), updates, deletes and a key change at the source. Each target ends
 * equal to the source by SQL, row for row, and its keys name each row exactly (the Redis key with
 * `\` and `:` escaped inside values, the search key the JSON array of the values). A Redis
 * pattern or a search key that leaves out a key column would make rows share a key: its records
 * are dead letters naming the column, and nothing is written.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { SearchReader } from '../../src/sinks/search/search-reader.ts';
import { waitFor } from '../support/capture-harness.ts';
import { cli, startCli } from '../support/cli.ts';
import { createDatabase } from '../support/databases.ts';
import { dirs } from './sink-oracle-support.ts';

const redis = new Redis('redis://127.0.0.1:6379/0');
const prefix = `composite-${randomBytes(4).toString('hex')}`;
afterAll(async () => {
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
  dirs.removeAll();
});

type Line = { region: string; code: string; name: string | null; qty: string | null; price: string | null };
const order = (a: Line, b: Line) =>
  a.region < b.region ? -1 : a.region > b.region ? 1 : a.code < b.code ? -1 : a.code > b.code ? 1 : 0;
const text = (v: unknown) => (v === null || v === undefined ? null : String(v));
const line = (r: Record<string, unknown>): Line => ({
  region: String(r.region),
  code: String(r.code),
  name: text(r.name),
  qty: text(r.qty),
  price: text(r.price),
});
/** The Redis key of a row: values joined by `:`, with `\` and `:` escaped in each. */
const redisKey = (l: Line) =>
  `${prefix}:lines:${[l.region, l.code].map((v) => v.replace(/[\\:]/g, (c) => `\\${c}`)).join(':')}`;

describe('composite primary keys through the table, redis and search sinks', () => {
  it('each target equals the source by SQL; a pattern or key leaving out a key column dead-letters', async () => {
    const source = await createDatabase(18, 'compsrc');
    await source.query(`create table lines (region text, code text, name text, qty int, price numeric(12,2),
      primary key (region, code))`);
    const dataDir = dirs.make();
    const view = join(dataDir, 'lines-view.db');
    const env: NodeJS.ProcessEnv = {
      DATABASE_URL: '',
      TRIBUTARY_DATA_DIR: '',
      TRIBUTARY_SLOT: '',
      TRIBUTARY_HTTP_PORT: '0',
      TRIBUTARY_CONSUMERS_NICENESS: '0',
      TRIBUTARY_CONSUMERS_YIELD_TO_CAPTURE: 'never',
      TRIBUTARY_SINKS: JSON.stringify({
        'lines-view': { kind: 'table', tables: ['public.lines'], target: `sqlite:${view}`, batchSize: 7 },
        'lines-cache': {
          kind: 'redis',
          tables: ['public.lines'],
          key: `${prefix}:lines:{*}`,
          offsetsKey: `${prefix}:offsets`,
          batchSize: 7,
        },
        'lines-search': {
          kind: 'search',
          tables: ['public.lines'],
          key: ['region', 'code'],
          fields: { name: 1 },
          numeric: ['qty'],
          stored: ['region', 'code', 'name', 'qty', 'price'],
          batchSize: 7,
        },
        'bad-cache': {
          kind: 'redis',
          tables: ['public.lines'],
          key: `${prefix}:bad:{region}`,
          offsetsKey: `${prefix}:bad-offsets`,
          retryAttempts: 1,
        },
        'bad-search': { kind: 'search', tables: ['public.lines'], key: 'region', retryAttempts: 1 },
      }),
    };
    const proc = startCli(
      [
        'run',
        '--source',
        source.url,
        '--data-dir',
        dataDir,
        '--slot',
        source.name,
        '--publication',
        source.name,
        '--topic-prefix',
        'shop',
        '--partitions',
        '1',
      ],
      { env },
    );
    try {
      await waitFor(
        () => proc.stderr.includes('"msg":"replication started"') || proc.child.exitCode !== null,
        'replication to start',
      );
      expect(proc.child.exitCode, proc.stderr).toBe(null);
      // Keys a plain join would confuse, a backslash, and the same code in several regions.
      const keys: [string, string][] = [
        ['a:b', 'c'],
        ['a', 'b:c'],
        ['a\\', ':c'],
        ['a', '\\:c'],
      ];
      for (const region of ['north', 'south', 'east'])
        for (let i = 1; i <= 8; i++) keys.push([region, `L${i}`]);
      for (const [i, [region, code]] of keys.entries()) {
        await source.query('insert into lines values ($1, $2, $3, $4, $5)', [
          region,
          code,
          `widget ${i} of ${region}`,
          i,
          `${i}.50`,
        ]);
      }
      await source.query(
        "update lines set qty = qty * 10, name = name || ' bis' where code in ('L2', 'c', 'b:c')",
      );
      await source.query("delete from lines where region = 'south' and code in ('L3', 'L4')");
      await source.query("delete from lines where region = 'a' and code = '\\:c'");
      await source.query("update lines set code = 'L9' where region = 'east' and code = 'L1'"); // a key change
      await source.query("update lines set region = 'west' where region = 'north' and code = 'L5'");
      await source.query("insert into lines values ('south', 'L3', 'back again', 3, '3.75')");

      const expected = (
        await source.query<Record<string, unknown>>(
          'select region, code, name, qty::text as qty, price::text as price from lines',
        )
      ).rows
        .map(line)
        .sort(order);
      const readTable = () => {
        const db = new Database(view, { readonly: true, fileMustExist: true });
        try {
          return (
            db.prepare('select region, code, name, qty, price from lines').all() as Record<string, unknown>[]
          )
            .map(line)
            .sort(order);
        } finally {
          db.close();
        }
      };
      const readRedis = async () => {
        const rows: Line[] = [];
        for (const key of await redis.keys(`${prefix}:lines:*`)) {
          const row = line(await redis.hgetall(key));
          if (key !== redisKey(row))
            throw new Error(`Redis key ${key} does not name its row ${JSON.stringify(row)}`);
          rows.push(row);
        }
        return rows.sort(order);
      };
      const readSearch = () => {
        const reader = new SearchReader(join(dataDir, 'search', 'lines-search.db'));
        try {
          const { hits } = reader.search({ q: '', limit: 1000 });
          for (const h of hits) expect(h.key).toBe(JSON.stringify([h.doc.region, h.doc.code]));
          return hits.map((h) => line(h.doc)).sort(order);
        } finally {
          reader.close();
        }
      };
      // Until all three hold the source (a read failing meanwhile, e.g. a file not created yet, is a no).
      const same = async () => {
        try {
          const all = [readTable(), await readRedis(), readSearch()];
          return JSON.stringify(all) === JSON.stringify([expected, expected, expected]);
        } catch {
          return false;
        }
      };
      await waitFor(same, 'the three targets to equal the source', 90_000).catch(() => undefined);
      for (const sink of ['lines-view', 'lines-cache', 'lines-search']) {
        const r = await cli(['dlq', 'list', sink, '--data-dir', dataDir, '--json'], { env });
        expect(JSON.parse(r.stdout || '[]'), `${sink}: dead letters`).toEqual([]);
      }
      expect(readTable()).toEqual(expected);
      expect(await readRedis()).toEqual(expected);
      expect(readSearch()).toEqual(expected);
      // A word of a name finds exactly its row, keyed by both columns.
      const reader = new SearchReader(join(dataDir, 'search', 'lines-search.db'));
      expect(reader.search({ q: 'back again' }).hits.map((h) => h.key)).toEqual(['["south","L3"]']);
      reader.close();

      // The sinks whose key leaves out `code`: every change a dead letter naming it, nothing written.
      const letters = async (sink: string) => {
        const r = await cli(['dlq', 'list', sink, '--data-dir', dataDir, '--json', '--limit', '500'], {
          env,
        });
        return JSON.parse(r.stdout || '[]') as { error: string }[];
      };
      // (The consumer pauses after a run of consecutive dead letters: not every change gets there.)
      for (const [sink, reason] of [
        ['bad-cache', 'leaves out the key column code'],
        ['bad-search', 'the primary key column code is not in the search key'],
      ] as const) {
        const dead = await waitFor(async () => {
          const l = await letters(sink);
          return l.length >= 3 ? l : undefined;
        }, `${sink}: changes dead-lettered`);
        for (const d of dead) expect(d.error).toContain(reason);
      }
      expect(await redis.keys(`${prefix}:bad:*`)).toEqual([]);
      const bad = new SearchReader(join(dataDir, 'search', 'bad-search.db'));
      expect(bad.search({ q: '' }).total).toBe(0);
      bad.close();
    } finally {
      if (proc.child.exitCode === null) proc.child.kill('SIGTERM');
      await proc.exited;
      await source.drop();
    }
  });
});
