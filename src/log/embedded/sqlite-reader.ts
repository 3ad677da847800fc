import type { StoredRecord } from '../../core/record.ts';
import { OpenedBatches } from './opened-batches.ts';
import { EMPTY_HEADERS } from './record-batch.ts';
import { OFFSET_MASK } from './sqlite-schema.ts';
import type { BatchStatements, LogStatements } from './sqlite-statements.ts';

type ReadRow = [number, string | null, string | null, string | null, number];
/**
 * A row of the merged read: a batch (`base` set; `data` only for codec `records`, and not for the
 * batch the reader holds opened already) or a record (`base` null). The first column is the raw
 * id, for the order only (it exceeds safe integers).
 */
type MergedRow =
  | [
      id: number,
      last: number,
      base: number,
      codec: string,
      header: string,
      data: Uint8Array | null,
      timestamp: number,
    ]
  | [
      id: number,
      offset: number,
      base: null,
      key: string | null,
      value: string | null,
      headers: string | null,
      timestamp: number,
    ];

/**
 * The read path of the embedded log: records of a partition from an offset, whether stored as
 * rows of `records` or inside row batches, in offset order. Reads run synchronously
 * (better-sqlite3) on the log's connection, each from one consistent snapshot where it can.
 * Arguments are checked and errors classified by the caller (EmbeddedEventLog).
 */
export class SqliteReader {
  readonly #sql: LogStatements;
  readonly #batches: () => BatchStatements | undefined;
  readonly #opened: OpenedBatches;
  /** Partition ids, cached by "topic\0partition"; ids never change once assigned. */
  readonly #partitionIds = new Map<string, number>();
  /** Partitions whose last read met a batch: their next read starts with the merged statement. */
  readonly #batchFirst = new Set<number>();

  constructor(sql: LogStatements, batches: () => BatchStatements | undefined, file: string) {
    this.#sql = sql;
    this.#batches = batches;
    this.#opened = new OpenedBatches(file);
  }

  /** Up to `max` records of a partition from `offset` (non-negative integers, checked by the caller). */
  read(topic: string, partition: number, offset: number, max: number): StoredRecord[] {
    const id = this.#partitionId(topic, partition);
    if (id === undefined || max === 0) return [];
    const from = Math.min(offset, OFFSET_MASK);
    const batches = this.#batches();
    if (batches !== undefined && this.#batchFirst.has(id)) {
      const out: StoredRecord[] = [];
      this.#readMerged(batches, topic, partition, id, from, max, out);
      return out;
    }
    const rows = this.#sql.read.all(id, from, id + 1, 0, max) as ReadRow[];
    // Offsets are dense over records and batches, so `max` records at from..from+max-1 prove that no
    // batch lies in the range: the common case costs the one query it always did.
    let prefix = 0;
    if (rows.length > 0 && rows[0]![0] === from) {
      prefix = rows.at(-1)![0] === from + rows.length - 1 ? rows.length : contiguous(rows, from);
    }
    if (prefix === max) return recordsOf(rows, max, topic, partition);
    if (batches === undefined) return recordsOf(rows, rows.length, topic, partition);
    // At the live end of a partition: the rows are contiguous and no batch follows them (one that is
    // appended after this lookup lies beyond them), so they are the answer.
    if (prefix === rows.length && batches.next.get(id, from + prefix, id) === undefined) {
      return recordsOf(rows, prefix, topic, partition);
    }
    const out = recordsOf(rows, prefix, topic, partition);
    this.#batchFirst.add(id);
    this.#readMerged(batches, topic, partition, id, from + prefix, max - prefix, out);
    return out;
  }

  /**
   * Appends to `out` up to `need` records from `offset`, from one statement that merges the
   * partition's batches and records by offset: one consistent snapshot, and one lock cycle on the
   * database files (which costs more than the query itself: 8-12 µs a statement on this machine).
   * A batch of another codec than `records` comes without its data (a snapshot chunk is megabytes,
   * read in many calls): it is fetched once, then kept among the opened batches.
   */
  #readMerged(
    batches: BatchStatements,
    topic: string,
    partition: number,
    id: number,
    offset: number,
    need: number,
    out: StoredRecord[],
  ): void {
    const first = out.length;
    let fromBatches = 0;
    for (let attempt = 0; need > 0; ) {
      let fetch: MergedRow | undefined;
      // The batch the last read stopped inside comes without its data: copying a blob of
      // thousands of records out of SQLite again for each read of a part of it cost more than
      // the read (bench/lake-backlog.ts, appends of 10,000 records).
      const opened = this.#opened.holding(id, offset) ?? -1;
      for (const row of batches.merged.iterate(
        id,
        opened,
        id,
        offset,
        id,
        id,
        offset,
        id,
      ) as IterableIterator<MergedRow>) {
        const [, last, base] = row;
        // Offsets are dense in one snapshot; only the head may lie above `offset` (removed by retention).
        if (out.length > first && (base ?? last) !== offset) break;
        if (base === null) {
          const [, , , key, value, headers, timestamp] = row;
          out.push({
            topic,
            partition,
            offset: last,
            key,
            value,
            headers: headers === null ? EMPTY_HEADERS : JSON.parse(headers),
            timestamp,
          });
          offset = last + 1;
          need--;
        } else {
          const [, , , codec, header, data] = row;
          const stored = {
            codec: codec as string,
            header: header as string,
            data: data as Uint8Array | null,
          };
          const batch = this.#opened.cached(id, last, base, stored, topic, partition);
          if (batch === undefined) {
            fetch = row; // its data comes from another statement, once this one is done
            break;
          }
          const served = this.#opened.serve(
            batch,
            id,
            topic,
            partition,
            base,
            last,
            Math.max(offset, base),
            need,
            out,
          );
          fromBatches += served;
          offset = Math.max(offset, base) + served;
          need -= served;
        }
        if (need === 0) break;
      }
      if (fetch === undefined) break;
      const [, last, base, codec] = fetch;
      const batch = this.#opened.fetch(batches, id, last, base!, topic, partition, codec as string);
      if (batch === undefined) {
        // Removed by retention since the merged read found it: read again from there, a few times.
        if (++attempt > 3) break;
        continue;
      }
      const served = this.#opened.serve(
        batch,
        id,
        topic,
        partition,
        base!,
        last,
        Math.max(offset, base!),
        need,
        out,
      );
      fromBatches += served;
      offset = Math.max(offset, base!) + served;
      need -= served;
    }
    // A partition read back to records (e.g. single-record appends) starts with them again.
    if (fromBatches === 0 && out.length > first) this.#batchFirst.delete(id);
  }

  #partitionId(topic: string, partition: number): number | undefined {
    const cacheKey = `${topic}\0${partition}`;
    let id = this.#partitionIds.get(cacheKey);
    if (id === undefined) {
      id = this.#sql.partitionId.get(topic, partition) as number | undefined;
      if (id !== undefined) this.#partitionIds.set(cacheKey, id);
    }
    return id;
  }
}

/** How many rows from the first are at consecutive offsets from `from`. */
function contiguous(rows: readonly ReadRow[], from: number): number {
  let n = 0;
  while (n < rows.length && rows[n]![0] === from + n) n++;
  return n;
}

function recordsOf(
  rows: readonly ReadRow[],
  count: number,
  topic: string,
  partition: number,
): StoredRecord[] {
  const out: StoredRecord[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const [offset, key, value, headers, timestamp] = rows[i]!;
    out[i] = {
      topic,
      partition,
      offset,
      key,
      value,
      headers: headers === null ? EMPTY_HEADERS : JSON.parse(headers),
      timestamp,
    };
  }
  return out;
}
