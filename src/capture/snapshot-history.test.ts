import { describe, expect, it } from 'vitest';
import { snapshotHistory } from './snapshot-history.ts';
import type { SnapshotJobStatus } from './snapshot-tracker.ts';

const job = (table: string, state: SnapshotJobStatus['state'], over: Partial<SnapshotJobStatus> = {}) =>
  ({
    table,
    kind: 'initial',
    condition: null,
    state,
    rows: 10,
    totalRows: 10,
    rowsPerSecond: 0,
    etaSeconds: null,
    ...over,
  }) as SnapshotJobStatus;

describe('snapshotHistory', () => {
  it("keeps earlier runs' finished jobs, drops their unfinished ones and those this run redoes", () => {
    const earlier = [job('public.a', 'done'), job('public.b', 'failed'), job('public.c', 'running')];
    expect(snapshotHistory(earlier, [])).toEqual([job('public.a', 'done'), job('public.b', 'failed')]);
    const again = job('public.b', 'running', { rows: 3 });
    const backfill = job('public.a', 'queued', { kind: 'backfill' });
    expect(snapshotHistory(earlier, [again, backfill])).toEqual([job('public.a', 'done'), again, backfill]);
  });
});
