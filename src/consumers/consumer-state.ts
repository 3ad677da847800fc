import type { PartitionOffset } from '../core/record.ts';
import type { NewDeadLetter } from './consumer-store.ts';

/**
 * What a replica's runner needs of the consumer state: the group's committed offsets and its dead
 * letters. Two implementations: `ConsumerStore` (SQLite beside the embedded log, synchronous) and
 * `NatsConsumerState` (the NATS log's KV bucket, for `tributary consumers run` on any machine).
 *
 * Guarantees every implementation keeps: `commit` never moves a position back unless `force`; a
 * store that fences (NATS) silently drops positions of partitions this replica no longer owns, so a
 * stale owner never moves the group's offsets (the next owner handles those records again:
 * at-least-once); `addDeadLetter` ignores a second pending dead letter for the same record.
 * Calls may overlap (one per key lane); each answer may be a value or a promise of it.
 */
export interface ConsumerState {
  commit(
    group: string,
    positions: readonly PartitionOffset[],
    options?: { force?: boolean },
  ): void | Promise<void>;
  committed(group: string): readonly PartitionOffset[] | Promise<readonly PartitionOffset[]>;
  /** Offsets of a partition at or after `from` the group already dead-lettered (any status). */
  deadLetteredOffsets(
    group: string,
    topic: string,
    partition: number,
    from: number,
  ): Set<number> | Promise<Set<number>>;
  /** The new dead letter's id, or undefined when one is already pending for this record. */
  addDeadLetter(letter: NewDeadLetter): number | undefined | Promise<number | undefined>;
}
