import { describe, expect, it } from 'vitest';
import type { SnapshotJobStatus } from '../capture/snapshot-tracker.ts';
import { SnapshotProgress, snapshotLine } from './snapshot-command.ts';

const job = (over: Partial<SnapshotJobStatus> = {}): SnapshotJobStatus => ({
  table: 'public.orders',
  kind: 'initial',
  condition: null,
  state: 'running',
  rows: 0,
  totalRows: 2000,
  rowsPerSecond: 0,
  etaSeconds: null,
  ...over,
});

describe('snapshot progress of run and up', () => {
  it('counts the rows read by a chunk not yet in the log (a one-chunk table no longer shows 0)', () => {
    expect(snapshotLine(job({ rowsRead: 1500 }))).toBe(
      'public.orders initial running · 1,500/2,000 rows (75%) · 0 rows/s',
    );
    expect(snapshotLine(job({ state: 'done', rows: 2000, rowsRead: 2000 }))).toBe(
      'public.orders initial done · 2,000/2,000 rows (100%)',
    );
  });

  it('says once that the snapshot finished, with the rows of each table', () => {
    const progress = new SnapshotProgress();
    expect(progress.next([])).toEqual({ running: null, finished: null });
    expect(progress.next([job({ rowsRead: 10 })]).running).toMatch(
      /^snapshot public\.orders initial running · 10\//,
    );
    const done = [job({ state: 'done', rows: 2000 }), job({ table: 'public.items', state: 'done', rows: 7 })];
    expect(progress.next(done)).toEqual({
      running: null,
      finished: 'snapshot finished: public.orders 2,000 rows, public.items 7 rows',
    });
    expect(progress.next(done)).toEqual({ running: null, finished: null });
  });
});
