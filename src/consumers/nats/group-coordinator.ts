/**
 * Shares a consumer group's partitions among `tributary consumers run` processes through the NATS
 * log's KV bucket (group-keys.ts); no process holds the assignment in memory alone.
 *
 * Each tick (every `leaseMs / 4`), for the replicas of this process:
 * 1. every ready replica rewrites its member key (`m.<group>.<member>`): its heartbeat;
 * 2. the live members are those whose key changed within `leaseMs` (member-liveness.ts);
 * 3. every process computes the same balanced, sticky assignment of the partitions over the live
 *    members (`assignPartitions`, the supervisor's), from the same owners read from the bucket;
 * 4. a replica takes a partition meant for it only when the partition's entry has no owner or a
 *    dead one, by compare-and-set on the entry's revision (two takers: one wins); then assigns it to
 *    the replica process. A partition it owns but that is meant for another is revoked (the replica
 *    drains and commits), then released (owner null, again by compare-and-set), and taken by the
 *    other on its next tick. An entry that names another owner is revoked at once (fenced).
 * So a partition has one owner at a time in the bucket; a replica commits only while it is that
 * owner (nats-consumer-state.ts). A process that cannot write its heartbeats for `leaseMs` revokes
 * everything: it must assume the others took its partitions.
 *
 * Paused (`consumers pause`, nats-consumer-control.ts): the replicas still write their heartbeats,
 * revoke what they read (drained, offsets committed) and neither release, take nor assign anything:
 * the owners in the bucket stay as they were, so on resume each replica reads its own partitions
 * again from their committed offsets.
 */
import type { KV, KvEntry } from '@nats-io/kv';
import type { Logger } from 'pino';
import { listEntries } from '../../log/nats/nats-kv-keys.ts';
import { unavailable } from '../../log/nats/nats-setup.ts';
import { assignPartitions, type PartitionKey, parsePartitionKey } from '../partition-assignment.ts';
import {
  groupKeys,
  type PartitionEntry,
  parseMemberKey,
  parsePartitionEntry,
  partitionEntryText,
} from './group-keys.ts';
import { MemberLiveness } from './member-liveness.ts';

/** What the coordinator needs of one local replica (a `ReplicaProcess` in standalone-consumer.ts). */
export interface LocalReplica {
  readonly member: string;
  /** Started and described itself: may be given partitions. */
  readonly ready: boolean;
  /** Partitions it may be reading (assigned, revocation not yet confirmed). */
  readonly owned: ReadonlySet<PartitionKey>;
  isRevoking(partition: PartitionKey): boolean;
  assign(partitions: readonly PartitionKey[]): void;
  revoke(partitions: readonly PartitionKey[]): void;
  /** The member key's value: who and where it is, its counters. */
  memberInfo(): object;
}

export interface GroupCoordinatorOptions {
  readonly kv: KV;
  readonly group: string;
  readonly leaseMs: number;
  readonly logger: Logger;
  readonly clock?: () => number;
}

interface Current {
  readonly entry: KvEntry | null;
  readonly value: PartitionEntry;
}

export class GroupCoordinator {
  readonly #o: GroupCoordinatorOptions;
  readonly #clock: () => number;
  readonly #liveness: MemberLiveness;
  #lastBeatAt: number;

  constructor(options: GroupCoordinatorOptions) {
    this.#o = options;
    this.#clock = options.clock ?? Date.now;
    this.#liveness = new MemberLiveness(options.leaseMs, this.#clock);
    this.#lastBeatAt = this.#clock();
  }

  async tick(
    replicas: readonly LocalReplica[],
    partitions: readonly PartitionKey[],
    paused = false,
  ): Promise<void> {
    const { kv, group, logger } = this.#o;
    const ready = replicas.filter((r) => r.ready);
    try {
      await Promise.all(
        ready.map((r) => kv.put(groupKeys.member(group, r.member), JSON.stringify(r.memberInfo()))),
      );
      this.#lastBeatAt = this.#clock();
    } catch (error) {
      if (this.#clock() - this.#lastBeatAt > this.#o.leaseMs) {
        logger.warn({ err: error }, 'cannot write heartbeats for a lease: revoking every partition');
        for (const r of replicas) {
          const owned = [...r.owned].filter((p) => !r.isRevoking(p));
          if (owned.length > 0) r.revoke(owned);
        }
      }
      throw unavailable(`write the heartbeats of group ${group}`, error);
    }
    if (paused) {
      for (const r of replicas) {
        const reading = [...r.owned].filter((p) => !r.isRevoking(p));
        if (reading.length > 0) r.revoke(reading);
      }
      return;
    }
    const revisions = await this.#memberRevisions();
    const alive = this.#liveness.observe(revisions);
    // Keys of members dead for long (a killed process never deletes its own) are removed.
    for (const m of revisions.keys()) {
      if (!alive.has(m) && this.#liveness.silentFor(m) > 10 * this.#o.leaseMs) {
        await kv.delete(groupKeys.member(group, m)).catch(() => undefined);
      }
    }
    for (const r of ready) alive.add(r.member);
    const members = [...alive].sort();
    const index = new Map(members.map((m, i) => [m, i]));
    const current = await this.#entries(partitions);
    const owners = new Map<PartitionKey, number>();
    for (const [p, c] of current) {
      const i = c.value.owner === null ? undefined : index.get(c.value.owner);
      if (i !== undefined) owners.set(p, i);
    }
    const desired = assignPartitions(
      partitions,
      members.map((_, i) => i),
      owners,
    );
    for (const r of replicas) {
      const mine = index.get(r.member);
      const wanted = (p: PartitionKey) => r.ready && mine !== undefined && desired.get(p) === mine;
      const revoke = [...r.owned].filter(
        (p) => !r.isRevoking(p) && (!wanted(p) || current.get(p)?.value.owner !== r.member),
      );
      if (revoke.length > 0) r.revoke(revoke);
      const assign: PartitionKey[] = [];
      for (const p of partitions) {
        const c = current.get(p) ?? { entry: null, value: { offset: 0, owner: null } };
        if (c.value.owner === r.member) {
          if (!wanted(p) && !r.owned.has(p)) await this.#write(p, c, null);
          else if (wanted(p) && !r.owned.has(p)) assign.push(p);
        } else if (wanted(p) && (c.value.owner === null || !alive.has(c.value.owner))) {
          if (await this.#write(p, c, r.member)) {
            if (c.value.owner !== null) {
              logger.info(
                { ...parsePartitionKey(p), from: c.value.owner, to: r.member, offset: c.value.offset },
                'partition taken over from a member that stopped',
              );
            }
            assign.push(p);
          }
        }
      }
      if (assign.length > 0) r.assign(assign);
    }
  }

  /** Releases what the replicas own in the bucket and removes their member keys (at stop). */
  async leave(replicas: readonly LocalReplica[], partitions: readonly PartitionKey[]): Promise<void> {
    const members = new Set(replicas.map((r) => r.member));
    for (const [p, c] of await this.#entries(partitions)) {
      if (c.value.owner !== null && members.has(c.value.owner)) await this.#write(p, c, null);
    }
    await Promise.all(
      replicas.map((r) =>
        this.#o.kv.delete(groupKeys.member(this.#o.group, r.member)).catch(() => undefined),
      ),
    );
  }

  /** Compare-and-set of a partition's owner, keeping its offset; false when another writer won. */
  async #write(p: PartitionKey, c: Current, owner: string | null): Promise<boolean> {
    const { topic, partition } = parsePartitionKey(p);
    const key = groupKeys.offset(this.#o.group, topic, partition);
    const text = partitionEntryText({ offset: c.value.offset, owner });
    try {
      if (c.entry) await this.#o.kv.update(key, text, c.entry.revision);
      else await this.#o.kv.create(key, text);
      return true;
    } catch (error) {
      this.#o.logger.debug({ err: error, topic, partition, owner }, 'partition entry changed meanwhile');
      return false;
    }
  }

  async #memberRevisions(): Promise<Map<string, number>> {
    const revisions = new Map<string, number>();
    try {
      for (const entry of await listEntries(this.#o.kv, groupKeys.members(this.#o.group))) {
        revisions.set(parseMemberKey(entry.key).member, entry.revision);
      }
    } catch (error) {
      throw unavailable(`read the members of group ${this.#o.group}`, error);
    }
    return revisions;
  }

  async #entries(partitions: readonly PartitionKey[]): Promise<Map<PartitionKey, Current>> {
    const out = new Map<PartitionKey, Current>();
    await Promise.all(
      partitions.map(async (p) => {
        const { topic, partition } = parsePartitionKey(p);
        const entry = await this.#o.kv
          .get(groupKeys.offset(this.#o.group, topic, partition))
          .catch((e: unknown) => {
            throw unavailable(`read the owner of ${topic}/${partition}`, e);
          });
        const live = entry && entry.operation === 'PUT' ? entry : null;
        out.set(p, {
          entry: live,
          value: live ? parsePartitionEntry(live.string()) : { offset: 0, owner: null },
        });
      }),
    );
    return out;
  }
}
