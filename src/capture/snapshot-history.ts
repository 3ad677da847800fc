import type { SnapshotJobStatus } from './snapshot-tracker.ts';

/**
 * The snapshot jobs to show: those finished in earlier runs of this data directory (as the last
 * status file kept them), then this run's. The status file, `tributary status` and the API's
 * `/api/snapshots` (the dashboard) all show this one list, so a restart that does not snapshot
 * again forgets nothing. An earlier job is dropped once this run has a job of the same table,
 * kind and condition (the newer one tells more).
 */
export function snapshotHistory(
  earlier: readonly SnapshotJobStatus[],
  current: readonly SnapshotJobStatus[],
): SnapshotJobStatus[] {
  const id = (j: SnapshotJobStatus) => `${j.kind}\0${j.table}\0${j.condition ?? ''}`;
  const now = new Set(current.map(id));
  const kept = earlier.filter((j) => (j.state === 'done' || j.state === 'failed') && !now.has(id(j)));
  return [...kept, ...current];
}
