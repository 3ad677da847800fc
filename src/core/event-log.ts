import type { AppendItem, PartitionOffset, StoredRecord, TopicPartition } from './record.ts';

/**
 * The source position stored with the records. `source` names the capture (one per slot);
 * `position` is the source's own opaque text (for PostgreSQL: JSON with the LSN).
 */
export interface Checkpoint {
  readonly source: string;
  readonly position: string;
}

export interface TopicInfo {
  readonly topic: string;
  readonly partitions: readonly PartitionInfo[];
}

export interface PartitionInfo {
  readonly partition: number;
  /** Oldest offset still stored (retention moves it forward). */
  readonly startOffset: number;
  /** The offset the next appended record will get; `endOffset - startOffset` records are stored. */
  readonly endOffset: number;
}

export interface PartitionLag extends TopicPartition {
  readonly committed: number;
  readonly endOffset: number;
  readonly records: number;
}

/**
 * A durable, partitioned, append-only log of records.
 *
 * Guarantees every implementation keeps (the conformance suite in `test/conformance` checks them):
 * - `append` is atomic: all of the records and the checkpoint become visible and durable
 *   together, or none of them. When the promise resolves they survive a crash of the process
 *   and (with the durable setting, the default) of the machine.
 * - Offsets in a partition are dense, start at 0 and follow append order; records of one key
 *   always go to the same partition, so per-key order is append order.
 * - `read` never returns a record of an append that has not resolved, and may be called from
 *   other processes while one process appends.
 * - Only one writer appends at a time; `append` calls must not overlap.
 */
export interface EventLog {
  /**
   * Appends records and row batches, in list order (creating topics on first use), and stores the
   * checkpoint with them. Returns the stored records; a batch kept as one blob contributes none
   * (a log may instead store a batch as its rendered records, which it then returns).
   */
  append(items: readonly AppendItem[], checkpoint?: Checkpoint): Promise<readonly StoredRecord[]>;
  /** The last checkpoint stored for `source`, or `null` if none. */
  checkpoint(source: string): Promise<Checkpoint | null>;
  /**
   * Up to `max` records of one partition starting at `offset` (fewer at the end). Records appended
   * as records come back with their values still UTF-8 bytes (`BlobRecord`, core/blob-record.ts):
   * decoded only when `value` is read, and taken as bytes by a reader that moves them on.
   */
  read(topic: string, partition: number, offset: number, max: number): Promise<readonly StoredRecord[]>;
  topics(): Promise<readonly TopicInfo[]>;
  /** Stores a consumer group's positions (the next offset to read per partition). */
  commit(group: string, positions: readonly PartitionOffset[]): Promise<void>;
  committed(group: string): Promise<readonly PartitionOffset[]>;
  /** Records not yet consumed by `group`, per partition of the topics it has committed on. */
  lag(group: string): Promise<readonly PartitionLag[]>;
  /** Idempotent. */
  close(): Promise<void>;
}
