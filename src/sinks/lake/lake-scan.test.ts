import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { consumerRecord } from '../../consumers/worker/batch-handler.ts';
import type { StoredRecord } from '../../core/record.ts';
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
