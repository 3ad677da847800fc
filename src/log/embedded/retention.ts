import type Database from 'better-sqlite3';
import { LogError } from '../../core/errors.ts';
import { BATCH_OVERHEAD_BYTES, OFFSET_BITS, OFFSET_MASK, RECORD_OVERHEAD_BYTES } from './sqlite-schema.ts';

export interface RetentionPolicy {
  /** Delete records whose timestamp is older than `now - maxAgeMs`. */
  readonly maxAgeMs?: number;
  /** Keep each topic under about this many bytes (see `stats()` for how bytes are counted). */
  readonly maxBytes?: number;
}

export interface RetentionResult {
  readonly deletedRecords: number;
  readonly deletedBytes: number;
}

interface PartitionRow {
  partitionId: number;
  topicId: number;
  start: number;
  end: number;
  bytes: number;
}

/** A unit retention deletes whole: a record, or a row batch (offsets `from .. to-1`). */
type Item = [from: number, to: number, size: number, timestamp: number];
/** The batch holding an offset or the first one after it. */
type BatchAt = [last: number, base: number, timestamp: number];

/**
 * Deletes records from the head of partitions. Each transaction deletes at most `chunk` records (or
 * whole row batches up to about that many), so the writer lock is held briefly and a concurrent append
 * waits milliseconds, not the whole sweep. Row batches are deleted whole: `start_offset` always lands on
 * a record or on the first offset of a batch. Only the records and batches tables and `start_offset`
 * change: checkpoints and group offsets are never touched.
 */
export class RetentionSweeper {
  readonly #chunk: number;
  readonly #partitions: Database.Statement;
  readonly #partition: Database.Statement;
  readonly #firstKept: Database.Statement;
  readonly #firstKeptBatch: Database.Statement;
  readonly #batchAfter: Database.Statement;
  readonly #sizes: Database.Statement;
  readonly #batchSizes: Database.Statement;
  readonly #deleteRange: Database.Transaction<(partitionId: number, from: number, to: number) => number>;

  constructor(db: Database.Database, chunk = 5_000) {
    this.#chunk = chunk;
    const size = `${RECORD_OVERHEAD_BYTES} + coalesce(length(key), 0) + coalesce(length(value), 0) + coalesce(length(headers), 0)`;
    // length() of a BLOB reads its size from the row header, not the blob itself.
    const batchSize = `${BATCH_OVERHEAD_BYTES} + length(codec) + length(header) + length(data)`;
    const range = `id >= (? << ${OFFSET_BITS}) + ? AND id < (? << ${OFFSET_BITS}) + ?`;
    const columns =
      'partition_id AS partitionId, topic_id AS topicId, start_offset AS start, end_offset AS end, bytes';
    this.#partitions = db.prepare(`SELECT ${columns} FROM partitions ORDER BY topic_id, partition`);
    this.#partition = db.prepare(`SELECT ${columns} FROM partitions WHERE partition_id = ?`);
    this.#firstKept = db
      .prepare(
        `SELECT id & ${OFFSET_MASK} FROM records WHERE ${range} AND timestamp >= ? ORDER BY id LIMIT 1`,
      )
      .pluck();
    // Batches ending in a range (they start in it too, since ranges start on a boundary).
    this.#firstKeptBatch = db
      .prepare(`SELECT base_offset FROM batches WHERE ${range} AND timestamp >= ? ORDER BY id LIMIT 1`)
      .pluck();
    // The batch holding an offset or the first one after it: `[last, base, timestamp]`.
    this.#batchAfter = db
      .prepare(
        `SELECT id & ${OFFSET_MASK}, base_offset, timestamp FROM batches
         WHERE id >= (? << ${OFFSET_BITS}) + ? AND id < ((? + 1) << ${OFFSET_BITS}) ORDER BY id LIMIT 1`,
      )
      .raw();
    this.#sizes = db
      .prepare(
        `SELECT id & ${OFFSET_MASK}, ${size}, timestamp FROM records WHERE ${range} ORDER BY id LIMIT ?`,
      )
      .raw();
    this.#batchSizes = db
      .prepare(
        `SELECT base_offset, (id & ${OFFSET_MASK}) + 1, ${batchSize}, timestamp FROM batches
         WHERE ${range} ORDER BY id LIMIT ?`,
      )
      .raw();
    const sumSizes = db.prepare(`SELECT coalesce(sum(${size}), 0) FROM records WHERE ${range}`).pluck();
    const sumBatchSizes = db
      .prepare(`SELECT coalesce(sum(${batchSize}), 0) FROM batches WHERE ${range}`)
      .pluck();
    const remove = db.prepare(`DELETE FROM records WHERE ${range}`);
    const removeBatches = db.prepare(`DELETE FROM batches WHERE ${range}`);
    const advance = db.prepare(
      'UPDATE partitions SET start_offset = ?, bytes = max(0, bytes - ?) WHERE partition_id = ? AND start_offset < ?',
    );
    this.#deleteRange = db.transaction((partitionId: number, from: number, to: number) => {
      // Callers end ranges on batch boundaries; a range that would split a batch is a bug, refused.
      const across = this.#batchAfter.get(partitionId, to, partitionId) as BatchAt | undefined;
      if (across !== undefined && across[1] < to) {
        throw new LogError(
          'LOG_FAILED',
          `Retention tried to delete part of the row batch at offset ${across[1]}`,
        );
      }
      const bytes =
        (sumSizes.get(partitionId, from, partitionId, to) as number) +
        (sumBatchSizes.get(partitionId, from, partitionId, to) as number);
      remove.run(partitionId, from, partitionId, to);
      removeBatches.run(partitionId, from, partitionId, to);
      advance.run(to, bytes, partitionId, to);
      return bytes;
    });
  }

  enforce(policy: RetentionPolicy, now: number): RetentionResult {
    let deletedRecords = 0;
    let deletedBytes = 0;
    const deleteRange = (partitionId: number, from: number, to: number) => {
      deletedBytes += this.#deleteRange.immediate(partitionId, from, to);
      deletedRecords += to - from;
    };
    const all = this.#partitions.all() as PartitionRow[];
    if (policy.maxAgeMs !== undefined) {
      const cutoff = now - policy.maxAgeMs;
      for (const row of all) this.#byAge(row.partitionId, cutoff, deleteRange);
    }
    if (policy.maxBytes !== undefined) {
      const byTopic = new Map<number, number[]>();
      for (const row of all) byTopic.set(row.topicId, [...(byTopic.get(row.topicId) ?? []), row.partitionId]);
      for (const ids of byTopic.values()) this.#bySize(ids, policy.maxBytes, deleteRange);
    }
    return { deletedRecords, deletedBytes };
  }

  #current(partitionId: number): PartitionRow {
    return this.#partition.get(partitionId) as PartitionRow;
  }

  #byAge(partitionId: number, cutoff: number, deleteRange: (id: number, from: number, to: number) => void) {
    // Only the head is deleted, so a young record stops the sweep even if older ones follow it.
    for (;;) {
      const { start, end } = this.#current(partitionId);
      if (start >= end) return;
      let limit = Math.min(end, start + this.#chunk);
      // A batch across the window's end belongs to the window: it is kept or deleted whole.
      const across = this.#batchAfter.get(partitionId, limit, partitionId) as BatchAt | undefined;
      const straddles = across !== undefined && across[1] < limit;
      const candidates = [
        this.#firstKept.get(partitionId, start, partitionId, limit, cutoff) as number | undefined,
        this.#firstKeptBatch.get(partitionId, start, partitionId, limit, cutoff) as number | undefined,
        straddles && across[2] >= cutoff ? across[1] : undefined,
      ].filter((offset) => offset !== undefined);
      if (candidates.length > 0) {
        const kept = Math.min(...candidates);
        if (kept > start) deleteRange(partitionId, start, kept);
        return;
      }
      if (straddles) limit = across[0] + 1;
      deleteRange(partitionId, start, limit);
    }
  }

  /** Up to about `max` items from the head of a partition, and whether more follow them. */
  #head(row: PartitionRow, max: number): { items: Item[]; more: boolean } {
    const records = this.#sizes.all(row.partitionId, row.start, row.partitionId, row.end, max) as [
      number,
      number,
      number,
    ][];
    const batches = this.#batchSizes.all(row.partitionId, row.start, row.partitionId, row.end, max) as Item[];
    // Both lists are complete only up to where a full one stops: merge by offset up to there.
    let bound = Number.POSITIVE_INFINITY;
    if (records.length === max) bound = records.at(-1)![0];
    if (batches.length === max) bound = Math.min(bound, batches.at(-1)![0]);
    const items: Item[] = [];
    let r = 0;
    let b = 0;
    for (;;) {
      const record = records[r];
      const batch = batches[b];
      let item: Item;
      if (record !== undefined && (batch === undefined || record[0] < batch[0])) {
        item = [record[0], record[0] + 1, record[1], record[2]];
        r++;
      } else if (batch !== undefined) {
        item = batch;
        b++;
      } else break;
      if (item[0] > bound) break;
      items.push(item);
    }
    return { items, more: bound !== Number.POSITIVE_INFINITY };
  }

  #bySize(
    partitionIds: number[],
    maxBytes: number,
    deleteRange: (id: number, from: number, to: number) => void,
  ) {
    for (;;) {
      const rows = partitionIds.map((id) => this.#current(id));
      let excess = rows.reduce((sum, row) => sum + row.bytes, 0) - maxBytes;
      if (excess <= 0) return;
      // Oldest first across the topic: merge the heads of all partitions by timestamp. A partition whose
      // fetched head runs out stops the merge, since its next records might be older than the others'.
      const perPartition = Math.max(1, Math.floor(this.#chunk / partitionIds.length));
      const heads = rows
        .filter((row) => row.start < row.end)
        .map((row) => ({ row, ...this.#head(row, perPartition), taken: 0 }));
      if (heads.every((head) => head.items.length === 0)) return;
      for (;;) {
        let pick: (typeof heads)[number] | undefined;
        for (const head of heads) {
          const item = head.items[head.taken];
          if (item !== undefined && (pick === undefined || item[3] < pick.items[pick.taken]![3])) pick = head;
        }
        if (pick === undefined) break;
        excess -= pick.items[pick.taken++]![2];
        if (excess <= 0) break;
        if (pick.taken === pick.items.length && pick.more) break;
      }
      for (const { row, items, taken } of heads) {
        if (taken > 0) deleteRange(row.partitionId, row.start, items[taken - 1]![1]);
      }
    }
  }
}
