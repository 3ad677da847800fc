import { LogError } from '../../core/errors.ts';
import type { Checkpoint } from '../../core/event-log.ts';
import type { AppendItem, AppendRecord, StoredRecord } from '../../core/record.ts';
import { checkBatch, hasHeaders, isBatch } from '../append-items.ts';
import { batchCodec } from '../batch-codecs.ts';
import { partitionForKey } from '../partitioner.ts';
import { EMPTY_HEADERS, encodeRecords, RECORDS_CODEC } from './record-batch.ts';
import { BATCH_OVERHEAD_BYTES, MAX_PARTITION_ID, RECORD_OVERHEAD_BYTES } from './sqlite-schema.ts';
import type { BatchStatements, LogStatements } from './sqlite-statements.ts';

interface PartitionState {
  readonly id: number;
  next: number;
  /** Indexes of the running append's records bound here, and the bytes stored, flushed at its end. */
  readonly pending: number[];
  pendingBytes: number;
  /** Set while the running append has claimed offsets here (records or a batch). */
  touched: boolean;
}

interface TopicState {
  readonly id: number;
  readonly partitions: PartitionState[];
}

/**
 * Records of one append that land on consecutive offsets of a partition, this many or more, are stored
 * as one row batch of codec `records` (see record-batch.ts); fewer stay rows of `records`.
 */
export const MIN_RECORDS_PER_BATCH = 2;
/**
 * Longer runs are cut into batches of this many: retention removes a batch whole (once all of its
 * records are past the age limit), so this is its granularity; capture appends 500 at most by default.
 */
export const MAX_RECORDS_PER_BATCH = 1_000;
/** A batch needing more than this (huge records) is encoded in memory of its own, not kept. */
const MAX_KEPT_BUFFER = 8 * 1024 * 1024;

/**
 * The write path. The log has one writer, so topics and next offsets live in memory and an append
 * needs no SELECT; `PRAGMA data_version` tells us when another connection wrote, and we reload.
 */
export class SqliteAppender {
  readonly #sql: LogStatements;
  readonly #batches: () => BatchStatements;
  readonly #file: string;
  readonly #defaultPartitions: number;
  readonly #clock: () => number;
  readonly #topics = new Map<string, TopicState>();
  #dataVersion = -1;
  /**
   * Where record batches are encoded, reused from append to append (SQLite copies a bound blob): a
   * fresh buffer per append left megabytes of garbage outside V8's heap between collections, which
   * the 1,000,000-row transaction test saw as resident memory.
   */
  #scratch = Buffer.alloc(0);
  readonly #buffer = (size: number): Buffer => {
    if (size > MAX_KEPT_BUFFER) return Buffer.allocUnsafe(size);
    if (this.#scratch.length < size)
      this.#scratch = Buffer.allocUnsafe(Math.max(size, 2 * this.#scratch.length));
    return this.#scratch;
  };

  constructor(
    sql: LogStatements,
    batches: () => BatchStatements,
    file: string,
    defaultPartitions: number,
    clock: () => number,
  ) {
    this.#sql = sql;
    this.#batches = batches;
    this.#file = file;
    this.#defaultPartitions = defaultPartitions;
    this.#clock = clock;
  }

  /**
   * Writes the items and the checkpoint in one transaction; returns once it has committed. Returns the
   * stored records, in list order: plain records and the records of expanded batches, not the records
   * of a batch stored as one blob.
   */
  append(items: readonly AppendItem[], checkpoint: Checkpoint | undefined): StoredRecord[] {
    try {
      return this.#sql.transaction(() => this.#appendInTransaction(items, checkpoint));
    } catch (error) {
      // The transaction rolled back: forget the offsets and topics it had claimed in memory.
      this.#dataVersion = -1;
      throw error;
    }
  }

  #appendInTransaction(items: readonly AppendItem[], checkpoint: Checkpoint | undefined): StoredRecord[] {
    this.#refreshIfChangedElsewhere();
    const stored: StoredRecord[] = [];
    const headersText: (string | null)[] = [];
    const touched: PartitionState[] = [];
    const touch = (partition: PartitionState) => {
      if (partition.touched) return;
      partition.touched = true;
      touched.push(partition);
    };
    const add = (record: AppendRecord, topic: TopicState) => {
      const partitionNumber = this.#partitionOf(record, topic.partitions.length);
      const partition = topic.partitions[partitionNumber]!;
      const headers = hasHeaders(record.headers) ? JSON.stringify(record.headers) : null;
      touch(partition);
      partition.pending.push(stored.length);
      headersText.push(headers);
      stored.push({
        topic: record.topic,
        partition: partitionNumber,
        offset: partition.next++,
        key: record.key,
        value: record.value,
        headers: headers === null ? EMPTY_HEADERS : record.headers,
        timestamp: record.timestamp,
      });
    };
    for (const item of items) {
      const topic = this.#topics.get(item.topic) ?? this.#createTopic(item.topic);
      if (!isBatch(item)) {
        add(item, topic);
        continue;
      }
      checkBatch(item);
      if (topic.partitions.length === 1) {
        const partition = topic.partitions[0]!;
        touch(partition);
        const base = partition.next;
        partition.next += item.count;
        partition.pendingBytes +=
          BATCH_OVERHEAD_BYTES + item.codec.length + item.header.length + item.data.byteLength;
        this.#batches().insert.run(
          partition.id,
          partition.next - 1,
          base,
          item.timestamp,
          item.codec,
          item.header,
          item.data,
        );
      } else {
        // Records go to partitions by key, which only the rendered records know: store them as records.
        const opened = batchCodec(item.codec).open(item.header, item.data);
        if (opened.count !== item.count) {
          throw new LogError(
            'LOG_INVALID_ARGUMENT',
            `A batch for topic ${item.topic} says ${item.count} records but codec ${item.codec} renders ${opened.count}`,
          );
        }
        for (let i = 0; i < item.count; i++) {
          const r = opened.record(i);
          add(
            { topic: item.topic, key: r.key, value: r.value, headers: r.headers, timestamp: r.timestamp },
            topic,
          );
        }
      }
    }
    // Partition by partition: each multi-row INSERT then writes consecutive ids into one leaf page,
    // instead of hopping between as many places in the B-tree as there are partitions.
    const rows = this.#sql.insertRows;
    for (const partition of touched) {
      const pending = partition.pending;
      let from = 0;
      while (from < pending.length) {
        // A run of records at consecutive offsets (a blob batch of the same append may split them).
        const end = Math.min(pending.length, from + MAX_RECORDS_PER_BATCH);
        let to = from + 1;
        while (to < end && stored[pending[to]!]!.offset === stored[pending[to - 1]!]!.offset + 1) to++;
        if (to - from >= MIN_RECORDS_PER_BATCH) {
          const run = pending.slice(from, to);
          const encoded = encodeRecords(stored, headersText, run, this.#buffer);
          partition.pendingBytes +=
            BATCH_OVERHEAD_BYTES + RECORDS_CODEC.length + encoded.header.length + encoded.data.byteLength;
          this.#batches().insert.run(
            partition.id,
            stored[run.at(-1)!]!.offset,
            stored[run[0]!]!.offset,
            encoded.timestamp,
            RECORDS_CODEC,
            encoded.header,
            encoded.data,
          );
        } else {
          for (let n = from; n < to; n++) {
            const i = pending[n]!;
            const r = stored[i]!;
            const headers = headersText[i] ?? null;
            rows.add(partition.id, r.offset, r.key, r.value, headers, r.timestamp);
            partition.pendingBytes += recordBytes(r, headers);
          }
        }
        from = to;
      }
      rows.flush();
      this.#sql.advancePartition.run(partition.next, partition.pendingBytes, partition.id);
      partition.pending.length = 0;
      partition.pendingBytes = 0;
      partition.touched = false;
    }
    if (checkpoint !== undefined) {
      this.#sql.upsertCheckpoint.run(checkpoint.source, checkpoint.position, this.#clock());
    }
    return stored;
  }

  #partitionOf(record: AppendRecord, partitions: number): number {
    const given = record.partition;
    if (given === undefined) return record.key === null ? 0 : partitionForKey(record.key, partitions);
    if (!Number.isInteger(given) || given < 0 || given >= partitions) {
      throw new LogError(
        'LOG_INVALID_PARTITION',
        `Topic ${record.topic} has partitions 0..${partitions - 1}; a record asked for partition ${given}`,
      );
    }
    return given;
  }

  #createTopic(name: string): TopicState {
    if (typeof name !== 'string' || name.length === 0) {
      throw new LogError(
        'LOG_INVALID_ARGUMENT',
        `A record's topic must be a non-empty string, got ${String(name)}`,
      );
    }
    const id = Number(
      this.#sql.insertTopic.run(name, this.#defaultPartitions, this.#clock()).lastInsertRowid,
    );
    const partitions: PartitionState[] = [];
    for (let p = 0; p < this.#defaultPartitions; p++) {
      const partitionId = Number(this.#sql.insertPartition.run(id, p).lastInsertRowid);
      if (partitionId > MAX_PARTITION_ID) {
        throw new LogError(
          'LOG_FULL',
          `The event log ${this.#file} has used all ${MAX_PARTITION_ID} partition ids`,
        );
      }
      partitions.push({ id: partitionId, next: 0, pending: [], pendingBytes: 0, touched: false });
    }
    const topic = { id, partitions };
    this.#topics.set(name, topic);
    return topic;
  }

  /** Reloads topics and next offsets when another connection (or a rolled-back append) changed them. */
  #refreshIfChangedElsewhere(): void {
    const version = this.#sql.dataVersion.get() as number;
    if (version === this.#dataVersion) return;
    this.#topics.clear();
    const rows = this.#sql.allPartitions.all() as {
      name: string;
      topicId: number;
      id: number;
      end: number;
    }[];
    for (const row of rows) {
      let topic = this.#topics.get(row.name);
      if (topic === undefined) {
        topic = { id: row.topicId, partitions: [] };
        this.#topics.set(row.name, topic);
      }
      topic.partitions.push({ id: row.id, next: row.end, pending: [], pendingBytes: 0, touched: false });
    }
    this.#dataVersion = version;
  }
}

/** A record's size as `stats()` and retention count it when stored as a row. */
function recordBytes(record: { key: string | null; value: string | null }, headers: string | null): number {
  return (
    RECORD_OVERHEAD_BYTES + (record.key?.length ?? 0) + (record.value?.length ?? 0) + (headers?.length ?? 0)
  );
}
