import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { consumerRecord } from '../../src/consumers/worker/lazy-record.ts';
import type { Sink } from '../../src/sinks/sink.ts';
import { tableSinkKind } from '../../src/sinks/table/table-sink.ts';
import { createDatabase, type TestDatabase } from '../support/databases.ts';
import { applyBatch, GROUP, type ItemRow, itemRecord, sinkConformance, TOPIC } from './sink-conformance.ts';

const env = { name: 'items-view', dataDir: tmpdir(), topicPrefix: 'shop', format: 'debezium' as const };
const types = { id: 'integer', qty: 'integer', big: 'bigint', price: 'numeric' };
const dbs: TestDatabase[] = [];
afterAll(async () => {
  for (const db of dbs) await db.drop();
});

sinkConformance(
  'table on PostgreSQL',
  async () => {
    const db = await createDatabase(18, 'sink');
    dbs.push(db);
    const sink = (await tableSinkKind.create(
      { target: db.url, schema: 'view', mapping: { 'public.items': { targetTable: 'items_copy', types } } },
      env,
    )) as Sink<unknown>;
    return {
      sink,
      async rows() {
        const exists = await db.query(`select to_regclass('view.items_copy') as t`);
        if (exists.rows[0]?.t === null) return new Map();
        const result = await db.query<ItemRow & { id: string }>(
          'select id::text, name, qty::text, big::text, price::text from view.items_copy',
        );
        return new Map(result.rows.map(({ id, ...row }) => [id, row]));
      },
      close: async () => {},
    };
  },
  { truncateFence: true },
);

sinkConformance(
  'table on SQLite',
  async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'table-sink-')), 'view.db');
    const sink = (await tableSinkKind.create(
      { target: `sqlite:${file}`, mapping: { 'public.items': { types } } },
      env,
    )) as Sink<unknown>;
    return {
      sink,
      async rows() {
        const db = new Database(file, { readonly: true, fileMustExist: false });
        db.defaultSafeIntegers(true);
        try {
          const exists = db.prepare(`select name from sqlite_master where name = 'items'`).get();
          if (!exists) return new Map();
          const rows = db.prepare('select id, name, qty, big, price from items').all() as Record<
            string,
            unknown
          >[];
          const text = (v: unknown) => (v === null ? null : String(v));
          return new Map(
            rows.map((r) => [
              String(r.id),
              { name: text(r.name), qty: text(r.qty), big: text(r.big), price: text(r.price) },
            ]),
          );
        } finally {
          db.close();
        }
      },
      close: async () => {},
    };
  },
  { truncateFence: true },
);

describe('table sink on PostgreSQL: every kind of target column', () => {
  it('writes arrays (box[] too), box, bytea, times, json, enums, domains, char(n), bit(n) and bounded types exactly, and NULLs', async () => {
    const db = await createDatabase(18, 'sink');
    dbs.push(db);
    await db.query(`create type mood as enum ('sad', 'ok')`);
    await db.query('create domain posint as integer check (value > 0)');
    await db.query(`create table kinds (id integer primary key, tags text[], nums int[], b box, raw bytea, t time,
      d date, ts timestamp, tz timestamptz, j json, jb jsonb, v varchar(5), c char(3), m mood, p posint,
      f float8, ok boolean, iv interval, n numeric(30, 2), big int8, bits bit(3), pairs char(2)[], boxes box[], _tributary_lsn bigint)`);
    const sink = (await tableSinkKind.create({ target: db.url, createTables: false }, env)) as Sink<unknown>;
    const session = await sink.target.open({ connections: 1 });
    const full =
      '{"id":1,"tags":["a","b \\"q\\" \\\\",null,"NULL",""],"nums":[[1,2],[3,null]],"b":"(1,2),(0,0)","raw":"AAEC/w==",' +
      '"t":45296000001,"d":-719528,"ts":1704164645123456,"tz":"2024-01-02T03:04:05.123456Z","j":"{\\"a\\": [1, 2]}",' +
      '"jb":"{\\"big\\": 12345678901234567890}","v":"abcde","c":"ab","m":"ok","p":7,"f":0.30000000000000004,' +
      '"ok":true,"iv":"P0Y0M1DT0H0M-0.000001S","n":"12345678901234567890.12","big":9223372036854775807,"bits":"101","pairs":["ab","c"],' +
      '"boxes":["(1,2),(0,0)",null,"(3,4),(1,1)"]}';
    const nulls =
      '{"id":2,"tags":null,"nums":null,"b":null,"raw":null,"t":null,"d":null,"ts":null,"tz":null,"j":null,"jb":null,' +
      '"v":null,"c":null,"m":null,"p":null,"f":null,"ok":null,"iv":null,"n":null,"big":null,"bits":null,"pairs":null,' +
      '"boxes":null}';
    const record = (offset: number, id: number, after: string) => ({
      topic: 'shop.public.kinds',
      partition: 0,
      offset,
      key: `{"id":${id}}`,
      value: `{"before":null,"after":${after},"source":{"schema":"public","table":"kinds","lsn":${offset + 1}},"op":"c","ts_ms":1}`,
      headers: {},
      timestamp: 0,
    });
    try {
      await applyBatch(session, sink, [record(0, 1, full), record(1, 2, nulls)]);
      const rows = await db.query(
        `select id, tags::text, nums::text, b::text, raw::text, t::text, d::text, ts::text, tz at time zone 'UTC' as tz,
           j::text, jb::text, v, c, m::text, p, f::text, ok, iv::text, n::text, big::text, bits::text, pairs::text, boxes::text,
           _tributary_lsn::text as lsn
         from kinds order by id`,
      );
      expect(rows.rows).toEqual([
        {
          id: 1,
          tags: '{a,"b \\"q\\" \\\\",NULL,"NULL",""}',
          nums: '{{1,2},{3,NULL}}',
          b: '(1,2),(0,0)',
          raw: '\\x000102ff',
          t: '12:34:56.000001',
          d: '0001-01-01 BC',
          ts: '2024-01-02 03:04:05.123456',
          tz: new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 123)),
          j: '{"a": [1, 2]}',
          jb: '{"big": 12345678901234567890}',
          v: 'abcde',
          c: 'ab ',
          m: 'ok',
          p: 7,
          f: '0.30000000000000004',
          ok: true,
          iv: '1 day -00:00:00.000001',
          n: '12345678901234567890.12',
          big: '9223372036854775807',
          bits: '101',
          pairs: '{ab,"c "}',
          boxes: '{(1,2),(0,0);NULL;(3,4),(1,1)}',
          lsn: '1',
        },
        {
          ...Object.fromEntries(
            [
              'tags',
              'nums',
              'b',
              'raw',
              't',
              'd',
              'ts',
              'tz',
              'j',
              'jb',
              'v',
              'c',
              'm',
              'p',
              'f',
              'ok',
              'iv',
              'n',
              'big',
              'bits',
              'pairs',
              'boxes',
            ].map((c) => [c, null]),
          ),
          id: 2,
          lsn: '2',
        },
      ]);
    } finally {
      await session.close();
      await sink.close?.();
    }
  });
});

describe('table sink on PostgreSQL: lanes creating a table at once', () => {
  it('a lane does not write to a table that another lane created in a transaction still open', async () => {
    const db = await createDatabase(18, 'sink');
    dbs.push(db);
    const sink = (await tableSinkKind.create(
      { target: db.url, schema: 'view', mapping: { 'public.items': { targetTable: 'items_copy', types } } },
      env,
    )) as Sink<unknown>;
    const session = await sink.target.open({ connections: 2 });
    const row = { name: 'a', qty: 1, big: '1', price: '1.00' };
    const logger = { info() {}, warn() {}, error() {}, debug() {} } as never;
    const context = (tx: unknown) =>
      ({
        logger,
        metrics: { increment() {} },
        signal: new AbortController().signal,
        attempt: 1,
        tx,
      }) as never;
    let created!: () => void;
    const tableCreated = new Promise<void>((resolve) => {
      created = resolve;
    });
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    try {
      // Lane A creates the table and keeps its transaction open.
      const first = session.transaction(GROUP, [{ topic: TOPIC, partition: 0, offset: 1 }], async (tx) => {
        await sink.write([consumerRecord(itemRecord(0, 'c', 1, row, 0))], tx, context(tx));
        created();
        await released;
      });
      await tableCreated;
      // Lane B writes the same table: it must wait for A's DDL, not use A's uncommitted catalog.
      let failed: unknown;
      const second = applyBatch(session, sink, [itemRecord(0, 'c', 2, row, 1)]).catch((error: unknown) => {
        failed = error;
      });
      for (;;) {
        if (failed) throw failed;
        const waiting = await db.query(
          `select count(*)::int as n from pg_stat_activity where datname = $1 and wait_event_type = 'Lock'`,
          [db.name],
        );
        if (waiting.rows[0]?.n > 0) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      release();
      await first;
      await second;
      expect(failed).toBeUndefined();
      const rows = await db.query('select id from view.items_copy order by id');
      expect(rows.rows.map((r) => r.id)).toEqual([1, 2]);
    } finally {
      release();
      await session.close();
      await sink.close?.();
    }
  });
});
