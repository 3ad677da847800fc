/**
 * The automatic maintenance the sink runs after its batches: compaction once a table has more
 * than `compactFiles` live files, expiry of snapshots older than `snapshotRetentionHours` (age
 * made by moving commit times back in the catalog, no waiting), bronze retention by commit day.
 * The oracle: every retained snapshot answers as it did when it was current, and every file a
 * retained snapshot names is on disk.
 */
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ConsumerRecord } from '../../consumers/define-consumer.ts';
import { LakeCatalog } from './lake-catalog.ts';
import { queryLake } from './lake-query.ts';
import { LAKE_OPTIONS } from './lake-sink.ts';
import { LakeTarget } from './lake-target.ts';
import type { LakeTx } from './lake-tx.ts';

let offset = 0;
const DAY_US = 86_400_000_000;
function change(op: string, id: number, qty: number | null, lsn: number, commitUs: number) {
  const value = {
    before: op === 'd' ? { id } : null,
    after: op === 'd' ? null : { id, qty },
    source: { schema: 'public', table: 't', lsn, ts_us: commitUs, txId: lsn },
    op,
  };
  return {
    topic: 'x.public.t',
    partition: 0,
    offset: offset++,
    key: JSON.stringify({ id }),
    value,
    headers: {},
    timestamp: 0,
  } as ConsumerRecord<unknown>;
}

/** One batch in its own session (as a replica restart would: the once-a-minute expiry runs at once). */
async function commit(target: LakeTarget, records: ConsumerRecord<unknown>[]) {
  const session = await target.open();
  try {
    await session.transaction('g', [{ topic: 'x.public.t', partition: 0, offset: offset }], async (tx) => {
      (tx as LakeTx).add(records);
    });
  } finally {
    await session.close();
  }
}

const SILVER = 'select id::INTEGER as id, qty::INTEGER as qty from silver.t order by id';
const BRONZE = 'select count(*)::INTEGER as n from bronze.t';
const answer = async (root: string, asOf?: string) => {
  const s = await queryLake(root, SILVER, asOf ? { asOf } : {});
  const b = await queryLake(root, BRONZE, asOf ? { asOf } : {});
  return { silver: s.rows, bronze: b.rows };
};

function check(root: string) {
  const catalog = new LakeCatalog(join(root, 'catalog.db'), { readonly: true });
  try {
    const snapshots = catalog.snapshots();
    // Every file any retained snapshot names is on disk; nothing else is.
    for (const s of snapshots)
      for (const f of catalog.files(s.id)) expect(existsSync(join(root, f.path)), f.path).toBe(true);
    const onDisk = (readdirSync(root, { recursive: true }) as string[]).filter((f) => f.endsWith('.parquet'));
    expect(new Set(onDisk)).toEqual(catalog.allPaths());
    return { snapshots };
  } finally {
    catalog.close();
  }
}

describe('lake maintenance, automatic', () => {
  it('compacts by file count and expires by age, never removing a file a retained snapshot needs', async () => {
    const root = mkdtempSync(join(tmpdir(), 'lake-maint-'));
    const target = new LakeTarget(
      root,
      LAKE_OPTIONS.parse({ compactFiles: 3, snapshotRetentionHours: 1, bronzeRetentionDays: 2 }),
    );
    const now = Date.now() * 1000;
    // Five batches: inserts, updates and a delete; the first two committed five days ago (bronze day).
    const answers: { snapshot: number; answer: Awaited<ReturnType<typeof answer>> }[] = [];
    let lsn = 100;
    for (let b = 0; b < 5; b++) {
      const at = b < 2 ? now - 5 * DAY_US : now;
      const batch = [change('c', b * 10 + 1, b, lsn++, at), change('c', b * 10 + 2, b, lsn++, at)];
      if (b > 0) batch.push(change('u', 1, 100 + b, lsn++, at));
      if (b === 3) batch.push(change('d', 12, null, lsn++, at));
      await commit(target, batch);
      const catalog = new LakeCatalog(join(root, 'catalog.db'), { readonly: true });
      const kinds = catalog.snapshots().map((s) => s.kind);
      const appendSnapshot = Math.max(
        ...catalog
          .snapshots()
          .filter((s) => s.kind === 'append')
          .map((s) => s.id),
      );
      const silverFiles = catalog.files(catalog.currentSnapshot(), 'silver').length;
      catalog.close();
      answers.push({ snapshot: appendSnapshot, answer: await answer(root) });
      // By file count: past 3 live silver files the batch's maintenance compacts them into one.
      expect(silverFiles, kinds.join(',')).toBeLessThanOrEqual(3);
      if (b === 3) expect(kinds).toContain('compact');
      check(root);
    }
    // Bronze retention (2 days) took the files of the days five days ago, in a snapshot of its own.
    let { snapshots } = check(root);
    expect(snapshots.map((s) => s.kind)).toContain('retention');
    // Bronze holds the ten changes of today only; silver still has the rows of those days.
    expect((await answer(root)).bronze).toEqual([[10]]);
    expect((await answer(root)).silver).toContainEqual([2, 0]);

    // Time travel to each batch's snapshot still answers as it did: compaction and retention
    // removed files from the current state only.
    const asOfSnapshot = (id: number) =>
      new Date(snapshots.find((s) => s.id === id)!.committedAt).toISOString();
    for (const a of answers) {
      const then = await answer(root, asOfSnapshot(a.snapshot));
      expect(then.silver).toEqual(a.answer.silver);
    }

    // By age: the snapshots of the first three batches are made two hours old; the next batch's
    // maintenance expires them (retention 1 h) and deletes only files no retained snapshot names.
    const old = answers.slice(0, 3).map((a) => a.snapshot);
    const catalog = new LakeCatalog(join(root, 'catalog.db'));
    catalog.db
      .prepare('update lake_snapshots set committed_at = committed_at - 7200000 where id <= ?')
      .run(Math.max(...old));
    catalog.close();
    const filesBefore = (readdirSync(root, { recursive: true }) as string[]).filter((f) =>
      f.endsWith('.parquet'),
    );
    await commit(target, [change('c', 99, 9, lsn++, now)]);
    ({ snapshots } = check(root));
    expect(snapshots.some((s) => old.includes(s.id))).toBe(false);
    const filesAfter = (readdirSync(root, { recursive: true }) as string[]).filter((f) =>
      f.endsWith('.parquet'),
    );
    expect(filesAfter.length).toBeLessThan(filesBefore.length + 2);
    // The retained snapshots still answer as they did; an expired one is refused.
    for (const a of answers.slice(3)) {
      expect((await answer(root, asOfSnapshot(a.snapshot))).silver).toEqual(a.answer.silver);
    }
    await expect(
      queryLake(root, SILVER, { asOf: new Date(Date.now() - 7_000_000).toISOString() }),
    ).rejects.toThrow(/no lake snapshot at or before/);
    // And the current answer is the source's: the last batch on top of the fifth.
    expect((await answer(root)).silver).toEqual([...answers.at(-1)!.answer.silver, [99, 9]]);
  });
});
