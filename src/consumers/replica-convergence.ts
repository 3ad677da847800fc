import { assignPartitions, type PartitionKey } from './partition-assignment.ts';
import type { ReplicaProcess } from './supervisor-replica.ts';

/**
 * Moves the replicas of one consumer one step toward `target`: during a rolling update (replicas
 * of an older generation), one new replica at a time, then one old one drained, until none is
 * old; otherwise starts the missing ones (`spawn` false = not now, e.g. backing off) or stops the
 * extra ones, oldest and not-yet-ready first.
 */
export function convergeReplicas(
  live: readonly ReplicaProcess[],
  target: number,
  generation: number,
  spawn: () => boolean,
): void {
  const active = live.filter((r) => r.state === 'starting' || r.state === 'ready');
  const old = active.filter((r) => r.generation < generation);
  if (old.length > 0 && target > 0) {
    const busy = live.some((r) => r.state === 'starting' || r.state === 'stopping');
    if (busy) return;
    if (active.length < target + 1) spawn();
    else old.sort((a, b) => b.replica - a.replica)[0]!.stop();
    return;
  }
  if (active.length < target) {
    for (let i = active.length; i < target; i++) if (!spawn()) break;
  } else if (active.length > target) {
    const extra = active
      .sort(
        (a, b) =>
          a.generation - b.generation ||
          Number(a.state === 'ready') - Number(b.state === 'ready') ||
          b.replica - a.replica,
      )
      .slice(0, active.length - target);
    for (const r of extra) r.stop();
  }
}

/**
 * Gives free partitions to their target replicas and revokes those that must move (a partition
 * moves only once its owner answered the revoke, or died). `nextRevokeId` numbers each revoke.
 */
export function assignReplicaPartitions(
  partitions: readonly PartitionKey[],
  replicas: Iterable<ReplicaProcess>,
  nextRevokeId: () => number,
): void {
  const all = [...replicas];
  const members = all.filter((r) => r.state === 'ready' && r.stopRequestedAt === undefined);
  const current = new Map<PartitionKey, number>();
  for (const r of all) for (const p of r.owned) current.set(p, r.seq);
  const desired = assignPartitions(
    partitions,
    members.map((r) => r.seq),
    current,
  );
  for (const r of members) {
    const move = [...r.owned].filter((p) => desired.get(p) !== r.seq && !r.isRevoking(p));
    if (move.length > 0) r.revoke(move, nextRevokeId());
  }
  for (const r of members) {
    const gain = partitions.filter((p) => desired.get(p) === r.seq && !current.has(p));
    if (gain.length > 0) r.assign(gain);
  }
}
