import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { describe, expect, it } from 'vitest';
import type { ConsumerRecord } from '../../consumers/define-consumer.ts';
import { LakeCatalog } from './lake-catalog.ts';
import { queryLake } from './lake-query.ts';
import { LAKE_OPTIONS } from './lake-sink.ts';
import { LakeTarget } from './lake-target.ts';
import type { LakeTx } from './lake-tx.ts';

let offset = 0;
function change(op: string, key: number | null, after: Record<string, unknown> | null, lsn: number) {
  const o = offset++;
  const value = {
    before: op === 'd' ? { id: key } : null,
    after,
    source: { schema: 'public', table: 't', lsn, ts_us: 1_767_323_045_000_000 + lsn, txId: lsn },
    transaction: { total_order: 1 },
    op,
  };
  return {
    topic: 'x.public.t',
    partition: 0,
    offset: o,
    key: key === null ? null : JSON.stringify({ id: key }),
    value,
    headers: {},
    timestamp: 0,
  } as ConsumerRecord<unknown>;
}

async function commit(target: LakeTarget, records: ConsumerRecord<unknown>[]) {
  const session = await target.open();
  try {
    const last = records.at(-1)!;
    await session.transaction(
      'g',
      [{ topic: last.topic, partition: 0, offset: last.offset + 1 }],
      async (tx) => {
        (tx as LakeTx).add(records);
      },
    );
  } finally {
    await session.close();
  }
}

const rows = async (root: string, sql: string) => (await queryLake(root, sql)).rows;

describe('lake target', () => {
  it('keeps old files readable as columns are added and widened; a second reader opens the files', async () => {
    const root = mkdtempSync(join(tmpdir(), 'lake-target-'));
    const target = new LakeTarget(root, LAKE_OPTIONS.parse({}));
    await commit(target, [
      change('c', 1, { id: 1, qty: 2, price: '1.50', tags: ['a'] }, 10),
      change('c', 2, { id: 2, qty: 3, price: '2.50', tags: null }, 11),
    ]);
    // A column added, a float column's first whole value widened to DOUBLE, a delete, a truncate-free update.
    await commit(target, [
      change('u', 1, { id: 1, qty: 2.5, price: '1.75', tags: ['a', 'b'], note: 'x' }, 20),
      change('d', 2, null, 21),
      change('c', 3, { id: 3, qty: 7, price: '99999999999999999999.99', tags: null, note: null }, 22),
    ]);
    expect(await rows(root, 'select id, qty, price, tags, note from silver.t order by id')).toEqual([
      ['1', 2.5, '1.75', '["a","b"]', 'x'],
      ['3', 7, '99999999999999999999.99', null, null],
    ]);
    expect(await rows(root, 'select count(*)::INTEGER from bronze.t')).toEqual([[5]]);
    // BIGINT comes back as exact text in JSON.
    const catalog = new LakeCatalog(join(root, 'catalog.db'));
    const silver = catalog.files(catalog.currentSnapshot(), 'silver');
    const bronze = catalog.files(catalog.currentSnapshot(), 'bronze');
    catalog.close();
    // Open format: hyparquet reads the first silver file (the old schema) on its own.
    const first = await parquetReadObjects({ file: await asyncBufferFromFile(join(root, silver[0]!.path)) });
    expect(
      first.map((r) => [r.id, r.qty, r.price, r._op]).sort((a, b) => Number(a[0]) - Number(b[0])),
    ).toEqual([
      [1n, 2n, '1.50', 'c'],
      [2n, 3n, '2.50', 'c'],
    ]);
    // And a bronze file (ZSTD, as bronze is written) with hyparquet's codecs.
    const file = await asyncBufferFromFile(join(root, bronze[0]!.path));
    const codecs = (await parquetMetadataAsync(file)).row_groups[0]!.columns.map((c) => c.meta_data?.codec);
    expect(new Set(codecs)).toEqual(new Set(['ZSTD']));
    const changes = await parquetReadObjects({ file, compressors });
    expect(
      changes
        .map((r) => [r.op, r.key, JSON.parse(r.after as string).price])
        .sort((a, b) => (a[1] < b[1] ? -1 : 1)),
    ).toEqual([
      ['c', '{"id":1}', '1.50'],
      ['c', '{"id":2}', '2.50'],
    ]);
  });

  it('stops on an incompatible type change naming the column and both types, writing nothing', async () => {
    const root = mkdtempSync(join(tmpdir(), 'lake-target-'));
    const target = new LakeTarget(root, LAKE_OPTIONS.parse({}));
    await commit(target, [change('c', 1, { id: 1, qty: 2 }, 10)]);
    await expect(commit(target, [change('c', 2, { id: 2, qty: 'many' }, 11)])).rejects.toThrow(
      /column qty changed type from BIGINT to VARCHAR/,
    );
    expect(await rows(root, 'select id, qty from silver.t')).toEqual([['1', '2']]);
    const catalog = new LakeCatalog(join(root, 'catalog.db'));
    expect(catalog.db.prepare('select next_offset from tributary_consumer_offsets').all()).toEqual([
      { next_offset: offset - 1 },
    ]);
    const named = catalog.allPaths();
    catalog.close();
    const onDisk = (readdirSync(root, { recursive: true }) as string[]).filter((f) => f.endsWith('.parquet'));
    expect(new Set(onDisk)).toEqual(named);
  });

  it('removes orphan files of a dead writer when it opens, and applies truncates', async () => {
    const root = mkdtempSync(join(tmpdir(), 'lake-target-'));
    const target = new LakeTarget(root, LAKE_OPTIONS.parse({}));
    await commit(target, [change('c', 1, { id: 1 }, 10), change('c', 2, { id: 2 }, 11)]);
    // A file a killed writer (pid 999999999, not alive) left between its write and its commit.
    const orphan = join(root, 'silver', 't', '999999999-orphan.parquet');
    writeFileSync(orphan, 'half-written');
    await commit(target, [change('t', null, null, 20), change('c', 5, { id: 5 }, 21)]);
    expect(readdirSync(join(root, 'silver', 't'))).not.toContain('999999999-orphan.parquet');
    expect(await rows(root, 'select id from silver.t')).toEqual([['5']]);
  });

  it("flags each silver row with the checks it fails, and a text 'NaN' with none", async () => {
    const root = mkdtempSync(join(tmpdir(), 'lake-target-'));
    const target = new LakeTarget(root, LAKE_OPTIONS.parse({}));
    await commit(target, [
      change('c', 1, { id: 1, qty: 1.5, name: 'NaN' }, 10),
      change('c', 2, { id: 2, qty: 'NaN', name: 'x' }, 11),
      change('c', 3, { id: 3, qty: '-Infinity', name: '__debezium_unavailable_value' }, 12),
      change('c', null, { id: 4, qty: 2, name: 'Infinity' }, 13),
    ]);
    const flags = await rows(root, 'select id, qty::VARCHAR, _dq_flags from silver.t order by id');
    expect(flags).toEqual([
      ['1', '1.5', []],
      ['2', 'nan', ['non_finite']],
      ['3', '-inf', ['toast_unavailable', 'non_finite']],
      ['4', '2.0', ['no_key']],
    ]);
  });

  it('refreshes the gold models with the first changes, then after modelsRefreshChanges more', async () => {
    const root = mkdtempSync(join(tmpdir(), 'lake-target-'));
    mkdirSync(join(root, 'models'));
    writeFileSync(join(root, 'models', 'n.sql'), 'SELECT count(*)::INTEGER AS n FROM silver.t');
    const target = new LakeTarget(root, LAKE_OPTIONS.parse({ modelsRefreshChanges: 3 }));
    const session = await target.open();
    const gold = async () => (await rows(root, 'select n from gold.n'))[0]?.[0];
    const seen: unknown[] = [];
    try {
      for (const batch of [[1], [2], [3, 4], [5]]) {
        const records = batch.map((id) => change('c', id, { id }, 100 + id));
        await session.transaction(
          'g',
          [{ topic: 'x.public.t', partition: 0, offset: offset }],
          async (tx) => {
            (tx as LakeTx).add(records);
          },
        );
        // Models refresh beside the batches.
        await target.idle();
        seen.push(await gold());
      }
    } finally {
      await session.close();
    }
    // At once (the sink's first changes), not after 1 more, after 3 more, not after 1 more.
    expect(seen).toEqual([1, 1, 4, 4]);
  });

  it('refreshes models beside the batches: a slow model holds up no batch, and close stops it', async () => {
    const root = mkdtempSync(join(tmpdir(), 'lake-target-'));
    mkdirSync(join(root, 'models'));
    // Runs for many minutes unless stopped.
    writeFileSync(
      join(root, 'models', 'slow.sql'),
      'SELECT sum(hash(i)) AS h FROM range(1000000000000) t(i)',
    );
    const target = new LakeTarget(
      root,
      LAKE_OPTIONS.parse({ modelsRefreshChanges: 1, modelsTimeoutSeconds: 3600 }),
    );
    const session = await target.open();
    const models = () => {
      const catalog = new LakeCatalog(join(root, 'catalog.db'));
      try {
        return catalog.db.prepare('select name, refreshed_at, error from lake_models').all();
      } finally {
        catalog.close();
      }
    };
    try {
      for (const id of [1, 2, 3]) {
        await session.transaction('g', [{ topic: 'x.public.t', partition: 0, offset }], async (tx) => {
          (tx as LakeTx).add([change('c', id, { id }, 200 + id)]);
        });
      }
      // Every batch committed while the model (due after the first) still runs.
      expect(await rows(root, 'select id from silver.t where id in (1, 2, 3) order by id')).toEqual([
        ['1'],
        ['2'],
        ['3'],
      ]);
      expect(models()).toEqual([]);
    } finally {
      await session.close();
    }
    // Stopped by close: no error stored, no gold file.
    expect(models()).toEqual([]);
    const gold = join(root, 'gold');
    const files = existsSync(gold) ? readdirSync(gold, { recursive: true }).map(String) : [];
    expect(files.filter((f) => f.endsWith('.parquet'))).toEqual([]);
  });

  it('keeps a dropped column readable: the old rows keep their values, new rows have NULL', async () => {
    const root = mkdtempSync(join(tmpdir(), 'lake-target-'));
    const target = new LakeTarget(root, LAKE_OPTIONS.parse({}));
    await commit(target, [change('c', 1, { id: 1, a: 'x', b: 10 }, 10)]);
    await commit(target, [change('c', 2, { id: 2, a: 'y' }, 20), change('u', 1, { id: 1, a: 'z' }, 21)]);
    await commit(target, [change('c', 3, { id: 3, a: 'w', b: null }, 30)]);
    expect(await rows(root, 'select id, a, b from silver.t order by id')).toEqual([
      ['1', 'z', null],
      ['2', 'y', null],
      ['3', 'w', null],
    ]);
    expect(
      await rows(root, "select after->>'b' as b, count(*)::INTEGER from bronze.t group by all order by b"),
    ).toEqual([
      ['10', 1],
      [null, 3],
    ]);
  });
});
