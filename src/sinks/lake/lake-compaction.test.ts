/**
 * Size-tiered compaction: which files merge (`mergeSets`, pure), what it costs over a long run
 * (each change rewritten a few times, not once per compaction), and that a merge of some of a
 * table's silver files keeps the tombstones that hide rows of the files it did not merge.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ConsumerRecord } from '../../consumers/define-consumer.ts';
import { LakeCatalog } from './lake-catalog.ts';
import { MAX_MERGE_BYTES, mergeSets } from './lake-maintenance.ts';
import { queryLake } from './lake-query.ts';
import { LAKE_OPTIONS } from './lake-sink.ts';
import { LakeTarget } from './lake-target.ts';
import type { LakeTx } from './lake-tx.ts';

const KIB = 1024;
const sizes = (sets: { bytes: number }[][]) => sets.map((s) => s.map((f) => f.bytes));

describe('mergeSets', () => {
  it('merges a size class once it holds `fanout` files, smallest first up to the merge bound', () => {
    const small = (n: number) => Array.from({ length: n }, (_, i) => ({ bytes: 100 * KIB + i }));
    expect(mergeSets(small(3), 4)).toEqual([]);
    expect(sizes(mergeSets(small(4), 4))).toEqual([[102400, 102401, 102402, 102403]]);
    // Another class (four times larger) does not join the small files' merge.
    expect(sizes(mergeSets([...small(3), { bytes: 1024 * KIB }], 4))).toEqual([]);
    // A merge stops at the bound; none when two files exceed it; files at the bound never merge.
    const mib = (list: number[]) => list.map((m) => ({ bytes: m * 1024 * KIB }));
    expect(sizes(mergeSets(mib([20, 21, 22, 23]), 4))).toEqual([mib([20, 21, 22]).map((f) => f.bytes)]);
    expect(sizes(mergeSets(mib([30, 31, 31, 31]), 4))).toEqual([mib([30, 31]).map((f) => f.bytes)]);
    expect(mergeSets(mib([32, 33, 34, 35]), 4)).toEqual([]);
    expect(mergeSets([...small(3), ...Array(4).fill({ bytes: MAX_MERGE_BYTES / 2 })], 4)).toEqual([]);
  });

  it('rewrites each change a few times over a long run, and keeps the file count bounded', () => {
    // 5,000 batches of 300 KiB files, merged files the sum of their inputs.
    let files: { bytes: number }[] = [];
    let written = 0;
    let rewritten = 0;
    let most = 0;
    for (let b = 0; b < 5000; b++) {
      files.push({ bytes: 300 * KIB });
      written += 300 * KIB;
      for (const set of mergeSets(files, 8)) {
        const bytes = set.reduce((n, f) => n + f.bytes, 0);
        files = [...files.filter((f) => !set.includes(f)), { bytes }];
        rewritten += bytes;
      }
      most = Math.max(most, files.filter((f) => f.bytes < MAX_MERGE_BYTES / 2).length);
    }
    // Three classes below the files left as they are (64 KiB × 8^k up to 32 MiB): at most 7
    // files each, and each change is rewritten about once per class it climbs.
    expect(most).toBeLessThanOrEqual(3 * 7 + 1);
    expect(rewritten / written).toBeLessThan(4);
  });
});

let offset = 0;
function change(op: 'c' | 'd', id: number, lsn: number, payload = '') {
  return {
    topic: 'x.public.t',
    partition: 0,
    offset: offset++,
    key: JSON.stringify({ id }),
    value: {
      before: op === 'd' ? { id } : null,
      after: op === 'd' ? null : { id, payload },
      source: { schema: 'public', table: 't', lsn, ts_us: 1_767_323_045_000_000 + lsn, txId: lsn },
      op,
    },
    headers: {},
    timestamp: 0,
  } as ConsumerRecord<unknown>;
}

describe('lake compaction, size-tiered', () => {
  it('keeps a merged delete hiding the row of a file it did not merge', async () => {
    const root = mkdtempSync(join(tmpdir(), 'lake-compaction-'));
    const target = new LakeTarget(root, LAKE_OPTIONS.parse({ compactFiles: 3 }));
    const session = await target.open();
    let lsn = 100;
    const commit = (records: ConsumerRecord<unknown>[]) =>
      session.transaction('g', [{ topic: 'x.public.t', partition: 0, offset }], async (tx) => {
        (tx as LakeTx).add(records);
      });
    try {
      // A large first file (a larger size class than the deltas after it).
      await commit(
        Array.from({ length: 20_000 }, (_, i) => change('c', i + 1, lsn++, randomBytes(12).toString('hex'))),
      );
      // Three small deltas: a delete of a row of the large file, then two inserts. The third
      // small file makes their class merge, without the large file.
      await commit([change('d', 1, lsn++)]);
      await commit([change('c', 30_001, lsn++)]);
      await commit([change('c', 30_002, lsn++)]);
    } finally {
      await session.close();
    }
    const catalog = new LakeCatalog(join(root, 'catalog.db'), { readonly: true });
    const silver = catalog.files(catalog.currentSnapshot(), 'silver');
    const kinds = catalog.snapshots().map((s) => s.kind);
    catalog.close();
    expect(kinds).toContain('compact');
    expect(silver.map((f) => f.rows).sort((a, b) => a - b)).toEqual([3, 20_000]);
    const rows = async (sql: string) => (await queryLake(root, sql)).rows;
    expect(await rows('select count(*)::INTEGER, min(id)::INTEGER, max(id)::INTEGER from silver.t')).toEqual([
      [20_001, 2, 30_002],
    ]);
    expect(await rows('select count(*)::INTEGER from silver.t where id = 1')).toEqual([[0]]);
  });
});
