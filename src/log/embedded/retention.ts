import type Database from 'better-sqlite3';
import { OFFSET_BITS, OFFSET_MASK, RECORD_OVERHEAD_BYTES } from './sqlite-schema.ts';

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

/**
 * Deletes records from the head of partitions. Each transaction deletes at most `chunk` records, so
 * the writer lock is held briefly and a concurrent append waits milliseconds, not the whole sweep.
 * Only the records table and `start_offset` change: checkpoints and group offsets are never touched.
 */
export class RetentionSweeper {
  readonly #chunk: number;
  readonly #partitions: Database.Statement;
  readonly #partition: Database.Statement;
  readonly #firstKept: Database.Statement;
  readonly #sizes: Database.Statement;
  readonly #deleteRange: Database.Transaction<(partitionId: number, from: number, to: number) => number>;

  constructor(db: Database.Database, chunk = 5_000) {
    this.#chunk = chunk;
    const size = `${RECORD_OVERHEAD_BYTES} + coalesce(length(key), 0) + coalesce(length(value), 0) + coalesce(length(headers), 0)`;
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
    this.#sizes = db
      .prepare(
        `SELECT id & ${OFFSET_MASK}, ${size}, timestamp FROM records WHERE ${range} ORDER BY id LIMIT ?`,
      )
      .raw();
    const sumSizes = db.prepare(`SELECT coalesce(sum(${size}), 0) FROM records WHERE ${range}`).pluck();
    const remove = db.prepare(`DELETE FROM records WHERE ${range}`);
    const advance = db.prepare(
      'UPDATE partitions SET start_offset = ?, bytes = max(0, bytes - ?) WHERE partition_id = ? AND start_offset < ?',
    );
    this.#deleteRange = db.transaction((partitionId: number, from: number, to: number) => {
      const bytes = sumSizes.get(partitionId, from, partitionId, to) as number;
      remove.run(partitionId, from, partitionId, to);
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
      const limit = Math.min(end, start + this.#chunk);
      const kept = this.#firstKept.get(partitionId, start, partitionId, limit, cutoff) as number | undefined;
      if (kept !== undefined) {
        if (kept > start) deleteRange(partitionId, start, kept);
        return;
      }
      deleteRange(partitionId, start, limit);
    }
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
        .map((row) => {
          const items = this.#sizes.all(row.partitionId, row.start, row.partitionId, row.end, perPartition);
          return { row, items: items as [number, number, number][], taken: 0 };
        });
      if (heads.length === 0) return;
      for (;;) {
        let pick: (typeof heads)[number] | undefined;
        for (const head of heads) {
          const item = head.items[head.taken];
          if (item !== undefined && (pick === undefined || item[2] < pick.items[pick.taken]![2])) pick = head;
        }
        if (pick === undefined) break;
        excess -= pick.items[pick.taken++]![1];
        if (excess <= 0) break;
        if (pick.taken === pick.items.length && pick.items.length === perPartition) break;
      }
      for (const { row, items, taken } of heads) {
        if (taken > 0) deleteRange(row.partitionId, row.start, items[taken - 1]![0] + 1);
      }
    }
  }
}
