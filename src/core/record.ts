/**
 * What the event log stores. Keys and values are UTF-8 text (JSON for every built-in encoder);
 * `null` value = tombstone. Headers are small string pairs (never row values).
 */
export interface Record {
  readonly topic: string;
  readonly key: string | null;
  readonly value: string | null;
  readonly headers: Readonly<{ [name: string]: string }>;
  /** Milliseconds since the Unix epoch: the source commit time for change records. */
  readonly timestamp: number;
}

/** A record to append; without `partition`, the log picks one from the key's hash. */
export interface AppendRecord extends Record {
  readonly partition?: number;
}

/**
 * Several records of one partition stored as one opaque blob and rendered at read time by a
 * registered codec (see docs/embedded-log.md, "Row batches"). Offsets are dense as for records.
 */
export interface AppendBatch {
  readonly kind: 'batch';
  readonly topic: string;
  /** Records in the batch (≥ 1). */
  readonly count: number;
  /** Timestamp of every record of the batch (ms since epoch), used by retention. */
  readonly timestamp: number;
  /** Name of the codec that renders the records (see src/log/batch-codecs.ts). */
  readonly codec: string;
  /** Codec-specific text (e.g. JSON), stored as is. */
  readonly header: string;
  readonly data: Uint8Array;
}
export type AppendItem = AppendRecord | AppendBatch;

/** A record as stored, with its place in the log. Offsets start at 0 in each partition. */
export interface StoredRecord extends Record {
  readonly partition: number;
  readonly offset: number;
}

export interface TopicPartition {
  readonly topic: string;
  readonly partition: number;
}

export interface PartitionOffset extends TopicPartition {
  /** For a committed position: the next offset the group will read. */
  readonly offset: number;
}
