import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { consumerRecord } from '../../consumers/worker/lazy-record.ts';
import type { PartitionOffset, StoredRecord } from '../../core/record.ts';
import { encodeRecords, recordsCodec } from '../../log/embedded/record-batch.ts';
import { queryLake } from './lake-query.ts';
import { LAKE_OPTIONS, lakeWrite } from './lake-sink.ts';
import { LakeTarget } from './lake-target.ts';
import type { LakeTx } from './lake-tx.ts';

function change(offset: number, op: string, id: number, after: Record<string, unknown> | null): StoredRecord {
  const lsn = 100 + offset;
  const source = `{"schema":"public","table":"t","lsn":${lsn},"ts_us":${1_767_323_045_000_000 + lsn},"txId":${lsn}}`;
  const before = op === 'd' ? `{"id":${id}}` : 'null';
  return {
    topic: 'x.public.t',
    partition: 0,
    offset,
    key: op === 't' ? null : `{"id":${id}}`,
    value: `{"before":${before},"after":${after ? JSON.stringify(after) : 'null'},"source":${source},"op":"${op}"}`,
    headers: {},
    timestamp: 0,
  };
}

const BATCHES: StoredRecord[][] = [
  [
    change(0, 'c', 1, { id: 1, qty: 2 }),
    change(1, 'c', 2, { id: 2, qty: 3 }),
    change(2, 'c', 3, { id: 3, qty: 4 }),
  ],
  [change(3, 'u', 1, { id: 1, qty: 2.5 }), change(4, 'd', 2, null), change(5, 'c', 4, { id: 4, qty: 5 })],
  [
    change(6, 'u', 3, { id: 3, qty: 6, note: 'new column' }),
    change(7, 'c', 5, { id: 5, qty: 1, note: null }),
  ],
  [change(8, 't', 0, null), change(9, 'c', 6, { id: 6, qty: 7, note: 'after the truncate' })],
];

const QUERIES = [
  'select id, qty, note, _lsn from silver.t order by id',
  'select _offset, op, "key", before, after from bronze.t order by _offset',
];

async function answers(root: string): Promise<unknown[][][]> {
  return Promise.all(QUERIES.map(async (q) => (await queryLake(root, q)).rows));
}

describe('lake: a batch read ahead', () => {
  it('while the previous batch is written gives the same lake as a batch read in its transaction', async () => {
    // Read in the transaction, batch by batch.
    const plainRoot = mkdtempSync(join(tmpdir(), 'lake-scan-'));
    const plain = await new LakeTarget(plainRoot, LAKE_OPTIONS.parse({})).open();
    for (const batch of BATCHES) {
      const last = batch.at(-1)!;
      await plain.transaction(
        'g',
        [{ topic: last.topic, partition: 0, offset: last.offset + 1 }],
        async (tx) => {
          (tx as LakeTx).add(batch.map(consumerRecord));
        },
      );
    }
    await plain.close();

    // As a replica's sink: each batch offers the next one; the second batch's first transaction
    // fails after its write (its read-ahead is used up) and runs again; the third was offered
    // whole but runs without its last record first (a revocation), then the rest.
    const root = mkdtempSync(join(tmpdir(), 'lake-scan-'));
    const session = await new LakeTarget(root, LAKE_OPTIONS.parse({})).open();
    const write = lakeWrite();
    const third = BATCHES[2]!;
    const runs: { batch: StoredRecord[]; upcoming: StoredRecord[]; fail?: boolean }[] = [
      { batch: BATCHES[0]!, upcoming: BATCHES[1]! },
      { batch: BATCHES[1]!, upcoming: third, fail: true },
      { batch: BATCHES[1]!, upcoming: third },
      { batch: third.slice(0, 1), upcoming: third.slice(1) },
      { batch: third.slice(1), upcoming: BATCHES[3]! },
      { batch: BATCHES[3]!, upcoming: [] },
    ];
    for (const { batch, upcoming, fail } of runs) {
      const last = batch.at(-1)!;
      const run = session.transaction(
        'g',
        [{ topic: last.topic, partition: 0, offset: last.offset + 1 }],
        async (tx) => {
          await write(batch.map(consumerRecord), tx, { upcoming: () => upcoming.map(consumerRecord) });
          if (fail) throw new Error('killed before the commit');
        },
      );
      if (fail) await expect(run).rejects.toThrow(/killed/);
      else await run;
    }
    await session.close();

    const expected = await answers(plainRoot);
    expect(expected[0]).toEqual([['6', 7, 'after the truncate', '109']]);
    expect(expected[1]).toHaveLength(10);
    expect(await answers(root)).toEqual(expected);
  });
});

describe('lake: records read from the embedded log', () => {
  it('are staged as their bytes and give the lake their text gives, wherever their places are', async () => {
    // Two tables on alternating partitions (more runs of offsets than the stage chooses by CASE),
    // tombstones, a value that is not an object, an envelope with no commit time (the record's
    // timestamp is), and one pretty-printed (its blob holds a line feed: staged as text).
    const records: StoredRecord[] = [];
    const next = new Map<string, number>();
    const add = (
      table: string,
      partition: number,
      key: string | null,
      value: string | null,
      timestamp = 0,
    ) => {
      const topic = `x.public.${table}`;
      const offset = next.get(`${topic}:${partition}`) ?? 0;
      next.set(`${topic}:${partition}`, offset + 1);
      records.push({ topic, partition, offset, key, value, headers: {}, timestamp });
    };
    let lsn = 100;
    const envelope = (table: string, op: string, id: number, after: object | null, source = true) =>
      JSON.stringify({
        before: op === 'd' ? { id } : null,
        after,
        source: source
          ? { schema: 'public', table, lsn: ++lsn, ts_us: 1_767_323_045_000_000 + lsn }
          : { lsn: ++lsn },
        op,
      });
    for (let i = 0; i < 150; i++) {
      const table = i % 3 === 0 ? 'u' : 't';
      const id = (i % 40) + 1;
      add(table, i % 2, `{"id":${id}}`, envelope(table, 'c', id, { id, qty: i }));
      if (i % 25 === 24) {
        add(table, i % 2, `{"id":${id}}`, envelope(table, 'd', id, null));
        add(table, i % 2, `{"id":${id}}`, null);
      }
    }
    add('t', 0, '"plain"', '"not an object"');
    add('t', 0, '{"id":999}', envelope('t', 'c', 999, { id: 999, qty: 1 }, false), 1_767_323_046_500);
    const blob = records.slice();
    const pretty: StoredRecord[] = [];
    add(
      'u',
      1,
      '{"id":500}',
      JSON.stringify(JSON.parse(envelope('u', 'c', 500, { id: 500, qty: 2 })), null, 2),
    );
    add('u', 1, '{"id":501}', envelope('u', 'c', 501, { id: 501, qty: 3 }));
    pretty.push(...records.slice(blob.length));
    // A few runs (chosen by CASE).
    for (let i = 0; i < 6; i++)
      add(
        i % 2 ? 'u' : 't',
        i % 2,
        `{"id":${600 + i}}`,
        envelope(i % 2 ? 'u' : 't', 'c', 600 + i, { id: 600 + i, qty: i }),
      );
    const few = records.slice(blob.length + pretty.length);

    const fromLog = (batch: StoredRecord[]) => {
      const { header, data } = encodeRecords(
        batch,
        batch.map(() => null),
        batch.map((_, i) => i),
      );
      const opened = recordsCodec.open(header, data);
      return batch.map((r, i) => opened.stored!(i, r.topic, r.partition, r.offset));
    };
    const rootOf: { text?: string; bytes?: string } = {};
    const lakeOf = async (batches: StoredRecord[][], as: 'text' | 'bytes') => {
      const root = mkdtempSync(join(tmpdir(), 'lake-scan-'));
      rootOf[as] = root;
      const session = await new LakeTarget(root, LAKE_OPTIONS.parse({})).open();
      for (const batch of batches) {
        const ends = new Map<string, PartitionOffset>();
        for (const r of batch) ends.set(`${r.topic}:${r.partition}`, { ...r, offset: r.offset + 1 });
        await session.transaction('g', [...ends.values()], async (tx) => {
          (tx as LakeTx).add(batch.map(consumerRecord));
        });
      }
      await session.close();
      const ask = async (sql: string) => (await queryLake(root, sql)).rows;
      return Promise.all([
        ask(
          'select _partition, _offset, op, "key", commit_ts, after from bronze.t order by _partition, _offset',
        ),
        ask(
          'select _partition, _offset, op, "key", commit_ts, after from bronze.u order by _partition, _offset',
        ),
        ask('select * from silver.t order by id'),
        ask('select * from silver.u order by id'),
      ]);
    };
    const asText = await lakeOf([blob, pretty, few], 'text');
    const asBytes = await lakeOf([fromLog(blob), fromLog(pretty), fromLog(few)], 'bytes');
    expect(asBytes).toEqual(asText);

    // Each change event once, at its record's place; the one with no commit time at the record's.
    const changes = (table: string) =>
      records
        .filter((r) => r.topic === `x.public.${table}` && r.value?.startsWith('{'))
        .map((r) => [r.partition, String(r.offset)])
        .sort((a, b) => Number(a[0]) - Number(b[0]) || Number(a[1]) - Number(b[1]));
    expect(asBytes[0]!.map((r) => [r[0], r[1]])).toEqual(changes('t'));
    expect(asBytes[1]!.map((r) => [r[0], r[1]])).toEqual(changes('u'));
    const late = (await queryLake(rootOf.bytes!, "select commit_ts from bronze.t where after->>'id' = '999'"))
      .rows;
    expect(String(late[0]![0])).toBe('2026-01-02 03:04:06.5');
    expect(asBytes[3]!.map((r) => r[0]).slice(-5)).toEqual(['500', '501', '601', '603', '605']);
  });
});

describe('lake: a record it cannot read', () => {
  it('fails its batch naming the record, for a value or a key that is not JSON', async () => {
    const root = mkdtempSync(join(tmpdir(), 'lake-scan-'));
    const session = await new LakeTarget(root, LAKE_OPTIONS.parse({})).open();
    const good = change(0, 'c', 1, { id: 1, qty: 2 });
    const cases: [StoredRecord, RegExp][] = [
      [
        { ...change(1, 'c', 2, { id: 2 }), value: '{"op":"c","after":{"id":' },
        /the change at x\.public\.t partition 0 offset 1 is not JSON/,
      ],
      [
        { ...change(1, 'c', 2, { id: 2 }), key: '{id:2}' },
        /the key of the change at x\.public\.t partition 0 offset 1 is not JSON/,
      ],
    ];
    for (const [bad, message] of cases) {
      const run = session.transaction('g', [{ topic: 'x.public.t', partition: 0, offset: 2 }], async (tx) => {
        (tx as LakeTx).add([good, bad].map(consumerRecord));
      });
      await expect(run).rejects.toThrow(message);
    }
    // Nothing was committed: the lake has no table yet.
    expect(
      (await queryLake(root, 'select count(*) from bronze.t').catch((e: Error) => e.message)) as string,
    ).toMatch(/bronze\.t/);
    await session.close();
  });
});
