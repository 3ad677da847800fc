import type { TopicPartitionRef } from './consumer-protocol.ts';

/** `topic\0partition`: a partition as a map key. */
export type PartitionKey = string;

export function partitionKey(p: TopicPartitionRef): PartitionKey {
  return `${p.topic}\0${p.partition}`;
}

export function parsePartitionKey(key: PartitionKey): TopicPartitionRef {
  const at = key.lastIndexOf('\0');
  return { topic: key.slice(0, at), partition: Number(key.slice(at + 1)) };
}

/**
 * Spreads partitions over replicas, balanced (counts differ by at most one) and sticky: a
 * partition stays with its current owner whenever that owner is still a member and under its
 * quota, so a scale or restart moves as few partitions as possible (each move costs a drain).
 *
 * Pure: `current` maps a partition to its owner now (owners that are not in `replicas` are
 * ignored); the result maps every partition to a member of `replicas`, or is empty when there are
 * no replicas. Deterministic for the same inputs.
 */
export function assignPartitions(
  partitions: readonly PartitionKey[],
  replicas: readonly number[],
  current: ReadonlyMap<PartitionKey, number>,
): Map<PartitionKey, number> {
  const result = new Map<PartitionKey, number>();
  if (replicas.length === 0) return result;
  const members = [...new Set(replicas)].sort((a, b) => a - b);
  const sorted = [...new Set(partitions)].sort();
  const base = Math.floor(sorted.length / members.length);
  let extra = sorted.length % members.length;
  // Replicas that already own more keep the larger quotas, which keeps more partitions in place.
  const owned = new Map(members.map((r) => [r, 0]));
  for (const p of sorted) {
    const owner = current.get(p);
    if (owner !== undefined && owned.has(owner)) owned.set(owner, owned.get(owner)! + 1);
  }
  const byOwned = [...members].sort((a, b) => owned.get(b)! - owned.get(a)! || a - b);
  const quota = new Map<number, number>();
  for (const r of byOwned) {
    quota.set(r, base + (extra > 0 ? 1 : 0));
    if (extra > 0) extra--;
  }
  const load = new Map(members.map((r) => [r, 0]));
  const free: PartitionKey[] = [];
  for (const p of sorted) {
    const owner = current.get(p);
    if (owner !== undefined && load.has(owner) && load.get(owner)! < quota.get(owner)!) {
      result.set(p, owner);
      load.set(owner, load.get(owner)! + 1);
    } else free.push(p);
  }
  for (const p of free) {
    const target = members.find((r) => load.get(r)! < quota.get(r)!)!;
    result.set(p, target);
    load.set(target, load.get(target)! + 1);
  }
  return result;
}

/**
 * What to say when more replicas are asked for than the consumer's topics have partitions (the
 * CLI prints it after `consumers scale`, the API answers it with the scale); `undefined` when
 * every replica gets a partition, or the partitions are not known yet.
 */
export function idleReplicasNote(
  name: string,
  replicas: number | null,
  partitions: number,
): string | undefined {
  if (replicas === null || partitions === 0 || replicas <= partitions) return undefined;
  const idle = replicas - partitions;
  return `${name} reads ${partitions} partition${partitions === 1 ? '' : 's'}, and a partition is read by one replica at a time: ${idle} of the ${replicas} replicas will be idle. More partitions: the setting log.partitions (--partitions, env TRIBUTARY_PARTITIONS) gives new topics that many; existing topics keep theirs (start with a fresh --data-dir to capture again into more partitions).`;
}
