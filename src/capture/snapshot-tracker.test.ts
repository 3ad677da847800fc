import { describe, expect, it } from 'vitest';
import type { ChangeEvent, Relation } from '../core/change-event.ts';
import { copyRowTuples, frameLines } from '../encode/copy-row-batch.ts';
import type { SnapshotTable } from '../source/postgres/snapshot-reader.ts';
import { decodePosition, encodePosition } from './capture-position.ts';
import { parseSnapshotSignal } from './snapshot-job.ts';
import { wantsFullSnapshot } from './snapshot-setup.ts';
import { SnapshotRolledBack, SnapshotTracker } from './snapshot-tracker.ts';

const type = { kind: 'base', oid: 23, name: 'int4' } as const;
const relation: Relation = {
  id: 1,
  schema: 'public',
  table: 'items',
  replicaIdentity: 'default',
  columns: [
    { name: 'id', typeOid: 23, typeMod: -1, isKey: true, type },
    { name: 'v', typeOid: 23, typeMod: -1, isKey: false, type },
  ],
  keyIndexes: [0],
};
const table: SnapshotTable = {
  name: { schema: 'public', table: 'items' },
  relation,
  keyColumns: ['id'],
  keyIndexes: [0],
  estimatedRows: 3,
  blocks: 1,
};
const message = (content: string) => ({
  kind: 'message' as const,
  transactional: true,
  lsn: 100n,
  prefix: 'tributary.watermark',
  content: Buffer.from(content),
});
const change = (op: 'c' | 'u' | 'd', id: string): ChangeEvent => ({
  op,
  relation,
  before: op === 'd' ? [id, null] : null,
  after: op === 'd' ? null : [id, '9'],
  lsn: 50n,
});

describe('SnapshotTracker', () => {
  it('restore also restarts a job whose progress stayed but which had a chunk in flight', () => {
    const job = {
      id: 'k',
      schema: 'public',
      table: 'items',
      kind: 'backfill',
      condition: null,
      cursor: null,
      rows: 0,
    } as const;
    const tracker = new SnapshotTracker({ progress: { jobs: [job] } });
    tracker.claim();
    const epoch = tracker.epoch('k');
    const chunk = tracker.open('k', table, epoch);
    tracker.watermark(message(chunk.low));
    tracker.restore({ jobs: [job] });
    // The worker's next chunk would start after the forgotten one: refused, it starts again.
    expect(() => tracker.open('k', table, epoch)).toThrow(SnapshotRolledBack);
    expect(tracker.epoch('k')).not.toBe(epoch);
    // A job without chunks in flight and with its stored progress keeps running as it was.
    const idle = tracker.epoch('k');
    tracker.restore({ jobs: [job] });
    expect(tracker.epoch('k')).toBe(idle);
  });

  it('goes back to the stored progress after lost appends (restore): chunks forgotten, stale ones refused', () => {
    const job = {
      id: 'j',
      schema: 'public',
      table: 'items',
      kind: 'initial',
      condition: null,
      cursor: null,
      rows: 0,
    } as const;
    const tracker = new SnapshotTracker({ progress: { jobs: [job] } });
    expect(tracker.claim()?.id).toBe('j');
    const epoch = tracker.epoch('j');
    // The last chunk finishes the job in memory; its append is then lost.
    const first = tracker.open('j', table, epoch);
    tracker.watermark(message(first.low));
    tracker.fill(first.id, frameLines(['1\t0', '2\t0']), null);
    tracker.watermark(message(first.high));
    tracker.commit();
    expect(tracker.progress()).toBeUndefined();
    // A chunk in flight too (its low watermark seen).
    const second = tracker.open('j', table, epoch);
    tracker.watermark(message(second.low));
    let emitted = false;
    void second.emitted.then(() => {
      emitted = true;
    });
    tracker.restore({ jobs: [job] });
    // Back to what the log holds: the job runs again from its stored cursor.
    expect(tracker.progress()).toEqual({ jobs: [job] });
    expect(tracker.status()[0]).toMatchObject({ state: 'queued', rows: 0 });
    // The chunk in flight is forgotten: its high watermark gives nothing; a stale worker's next
    // chunk is refused.
    expect(tracker.watermark(message(second.high))).toBeNull();
    expect(() => tracker.open('j', table, epoch)).toThrow(SnapshotRolledBack);
    expect(tracker.claim()?.id).toBe('j');
    const again = tracker.open('j', table, tracker.epoch('j'));
    tracker.watermark(message(again.low));
    tracker.fill(again.id, frameLines(['1\t0', '2\t0']), null);
    expect(copyRowTuples(tracker.watermark(message(again.high))!.rows).map((r) => r[0])).toEqual(['1', '2']);
    tracker.commit();
    expect(tracker.status()[0]).toMatchObject({ state: 'done', rows: 2 });
    return Promise.resolve().then(() => expect(emitted).toBe(true));
  });

  it('drops the chunk rows changed between the watermarks and commits progress at the commit', () => {
    const tracker = new SnapshotTracker({
      progress: {
        jobs: [
          {
            id: 'j',
            schema: 'public',
            table: 'items',
            kind: 'backfill',
            condition: null,
            cursor: null,
            rows: 0,
          },
        ],
      },
    });
    expect(tracker.claim()?.id).toBe('j');
    const chunk = tracker.open('j', table);
    tracker.observe(change('u', '1')); // before the low watermark: the SELECT sees it
    tracker.watermark(message(chunk.low));
    tracker.observe(change('u', '2'));
    tracker.observe(change('d', '3'));
    tracker.fill(chunk.id, frameLines(['1\t0', '2\t0', '3\t0']), null);
    // Read, not yet in the log: shown as progress (rowsRead), not counted as rows.
    expect(tracker.status()[0]).toMatchObject({ state: 'running', rows: 0, rowsRead: 3 });
    const out = tracker.watermark(message(chunk.high))!;
    expect(copyRowTuples(out.rows).map((row) => row[0])).toEqual(['1']);
    expect(out.snapshot).toBe('incremental');
    expect(out.lastIsFinal).toBe(false);
    expect(tracker.progress()?.jobs[0]?.rows).toBe(0);
    tracker.rollback(); // the stream restarted: the watermark comes again
    expect(tracker.watermark(message(chunk.high))!.rows.count).toBe(1);
    tracker.commit();
    expect(tracker.progress()).toBeUndefined();
    expect(tracker.status()[0]).toMatchObject({ state: 'done', rows: 1 });
  });

  it('ignores watermarks of another run', () => {
    const tracker = new SnapshotTracker();
    const other = JSON.stringify({ run: 'x', snapshotId: 'j', chunk: '1', kind: 'high' });
    expect(tracker.watermark(message(other))).toBeNull();
  });

  it('turns signal table inserts into backfill jobs at the commit', () => {
    const signalRelation: Relation = {
      ...relation,
      table: 'tributary_signal',
      columns: [
        { name: 'id', typeOid: 25, typeMod: -1, isKey: true, type },
        { name: 'type', typeOid: 25, typeMod: -1, isKey: false, type },
        { name: 'data', typeOid: 3802, typeMod: -1, isKey: false, type },
      ],
    };
    const tracker = new SnapshotTracker({ signalTable: 'public.tributary_signal' });
    const data = JSON.stringify({ 'data-collections': ['public.items'], 'additional-condition': 'id > 1' });
    const event: ChangeEvent = {
      op: 'c',
      relation: signalRelation,
      before: null,
      after: ['s1', 'execute-snapshot', data],
      lsn: 1n,
    };
    expect(tracker.signal(event)).toBe(true);
    expect(tracker.signal(change('c', '1'))).toBe(false);
    expect(tracker.progress()).toBeUndefined();
    tracker.commit();
    expect(tracker.progress()?.jobs).toEqual([
      expect.objectContaining({ id: 's1/0', table: 'items', kind: 'backfill', condition: 'id > 1' }),
    ]);
  });
});

describe('parseSnapshotSignal', () => {
  it('reads per-table conditions and ignores malformed data', () => {
    const jobs = parseSnapshotSignal(
      'a',
      JSON.stringify({
        'data-collections': ['public.a', '"S"."B"'],
        'additional-conditions': [{ 'data-collection': 'public.a', filter: 'x = 1' }],
      }),
    );
    expect(jobs.map((j) => [j.schema, j.table, j.condition])).toEqual([
      ['public', 'a', 'x = 1'],
      ['S', 'B', null],
    ]);
    expect(parseSnapshotSignal('b', 'not json')).toEqual([]);
  });
});

describe('wantsFullSnapshot', () => {
  const stored = { lsn: 5n, tx: null };
  it('follows the mode', () => {
    expect(wantsFullSnapshot('initial', null)).toBe(true);
    expect(wantsFullSnapshot('initial', stored)).toBe(false);
    expect(wantsFullSnapshot('never', null)).toBe(false);
    expect(wantsFullSnapshot('always', stored)).toBe(true);
    expect(wantsFullSnapshot('never', { ...stored, snapshot: { jobs: [], full: true } })).toBe(true);
  });
});

describe('capture position with snapshot progress', () => {
  it('round-trips, and positions written before snapshots still decode', () => {
    const snapshot = {
      jobs: [
        {
          id: 'j',
          schema: 'public',
          table: 'items',
          kind: 'initial' as const,
          condition: null,
          cursor: { after: ['42'] },
          rows: 42,
        },
      ],
    };
    const position = { lsn: 0x10n, tx: null, snapshot };
    expect(decodePosition(encodePosition(position))).toEqual(position);
    expect(decodePosition('{"lsn":"0/10","tx":null}')).toEqual({ lsn: 0x10n, tx: null });
  });
});
