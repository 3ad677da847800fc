import type Database from 'better-sqlite3';
import { RECORDS_CODEC } from './record-batch.ts';
import { OFFSET_BITS, OFFSET_MASK } from './sqlite-schema.ts';

/** Every statement the log runs, prepared once per connection. */
export interface LogStatements {
  /** Runs `work` in a BEGIN IMMEDIATE transaction: the write lock is taken up front, never upgraded. */
  transaction<T>(work: () => T): T;
  readonly insertRows: RecordInserter;
  readonly advancePartition: Database.Statement;
  readonly upsertCheckpoint: Database.Statement;
  readonly insertTopic: Database.Statement;
  readonly insertPartition: Database.Statement;
  readonly dataVersion: Database.Statement;
  readonly allPartitions: Database.Statement;
  readonly checkpoint: Database.Statement;
  readonly read: Database.Statement;
  readonly partitionId: Database.Statement;
  readonly topicInfo: Database.Statement;
  commitOffsets(rows: readonly (readonly [string, string, number, number, number])[]): void;
  readonly committed: Database.Statement;
  readonly lag: Database.Statement;
  readonly stats: Database.Statement;
  readonly topicStats: Database.Statement;
}

export function prepareStatements(db: Database.Database): LogStatements {
  const tx = db.transaction((work: () => unknown) => work());
  const upsertOffset = db.prepare(
    `INSERT INTO group_offsets (group_name, topic, partition, next_offset, updated_at) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (group_name, topic, partition) DO UPDATE SET next_offset = excluded.next_offset, updated_at = excluded.updated_at`,
  );
  const commitOffsets = db.transaction(
    (rows: readonly (readonly [string, string, number, number, number])[]) => {
      for (const row of rows) upsertOffset.run(...row);
    },
  );
  const insertRows = new RecordInserter(db);
  return {
    transaction: <T>(work: () => T) => {
      insertRows.reset();
      return tx.immediate(work) as T;
    },
    insertRows,
    advancePartition: db.prepare(
      'UPDATE partitions SET end_offset = ?, bytes = bytes + ? WHERE partition_id = ?',
    ),
    upsertCheckpoint: db.prepare(
      `INSERT INTO checkpoints (source, position, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (source) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at`,
    ),
    insertTopic: db.prepare('INSERT INTO topics (name, partitions, created_at) VALUES (?, ?, ?)'),
    insertPartition: db.prepare('INSERT INTO partitions (topic_id, partition) VALUES (?, ?)'),
    dataVersion: db.prepare('PRAGMA data_version').pluck(),
    allPartitions: db.prepare(
      `SELECT t.name, t.topic_id AS topicId, p.partition_id AS id, p.end_offset AS end
       FROM partitions p JOIN topics t USING (topic_id) ORDER BY t.topic_id, p.partition`,
    ),
    checkpoint: db.prepare('SELECT position FROM checkpoints WHERE source = ?').pluck(),
    read: db
      .prepare(
        `SELECT id & ${OFFSET_MASK}, key, value, headers, timestamp FROM records
         WHERE id >= (? << ${OFFSET_BITS}) + ? AND id < (? << ${OFFSET_BITS}) + ? ORDER BY id LIMIT ?`,
      )
      .raw(),
    partitionId: db
      .prepare(
        'SELECT p.partition_id FROM partitions p JOIN topics t USING (topic_id) WHERE t.name = ? AND p.partition = ?',
      )
      .pluck(),
    topicInfo: db.prepare(
      `SELECT t.name AS topic, p.partition, p.start_offset AS start, p.end_offset AS end
       FROM topics t JOIN partitions p USING (topic_id) ORDER BY t.name, p.partition`,
    ),
    commitOffsets: (rows) => commitOffsets.immediate(rows),
    committed: db.prepare(
      `SELECT topic, partition, next_offset AS offset FROM group_offsets WHERE group_name = ?
       ORDER BY topic, partition`,
    ),
    lag: db.prepare(
      `SELECT t.name AS topic, p.partition, coalesce(g.next_offset, 0) AS committed,
              p.start_offset AS start, p.end_offset AS end
       FROM topics t JOIN partitions p USING (topic_id)
       LEFT JOIN group_offsets g ON g.group_name = ? AND g.topic = t.name AND g.partition = p.partition
       WHERE t.name IN (SELECT topic FROM group_offsets WHERE group_name = ?)
       ORDER BY t.name, p.partition`,
    ),
    stats: db.prepare(
      `SELECT coalesce(sum(end_offset - start_offset), 0) AS records, coalesce(sum(bytes), 0) AS bytes,
              (SELECT count(*) FROM topics) AS topics FROM partitions`,
    ),
    topicStats: db.prepare(
      `SELECT t.name AS topic, sum(p.end_offset - p.start_offset) AS records, sum(p.bytes) AS bytes
       FROM topics t JOIN partitions p USING (topic_id) GROUP BY t.name ORDER BY t.name`,
    ),
  };
}

/** Statements on the `batches` table, which a read-only open of a format 1 log does not have. */
export interface BatchStatements {
  readonly insert: Database.Statement;
  /** `[last offset, base offset]` of the first batch of a partition ending at or after an offset. */
  readonly next: Database.Statement;
  /** `[codec, header, data]` of the batch of a partition ending at an offset. */
  readonly content: Database.Statement;
  /**
   * Batches and records of a partition from an offset, merged by offset in one statement (see
   * `MergedRow` in sqlite-reader.ts); parameters: the partition id and the last offset of a batch
   * whose data is left out (the reader has it opened already; -1: none), then partition id,
   * offset, partition id, twice.
   */
  readonly merged: Database.Statement;
}

export function prepareBatchStatements(db: Database.Database): BatchStatements {
  return {
    insert: db.prepare(
      `INSERT INTO batches (id, base_offset, timestamp, codec, header, data)
       VALUES ((? << ${OFFSET_BITS}) + ?, ?, ?, ?, ?, ?)`,
    ),
    next: db
      .prepare(
        `SELECT id & ${OFFSET_MASK}, base_offset FROM batches
         WHERE id >= (? << ${OFFSET_BITS}) + ? AND id < ((? + 1) << ${OFFSET_BITS}) ORDER BY id LIMIT 1`,
      )
      .raw(),
    content: db.prepare(`SELECT codec, header, data FROM batches WHERE id = (? << ${OFFSET_BITS}) + ?`).raw(),
    // Ordered by the raw id (each arm is then read in its rowid order and the two are merged, no
    // sort); `id & mask` would need a temporary B-tree.
    merged: db
      .prepare(
        `SELECT id, id & ${OFFSET_MASK}, base_offset, codec, header,
                CASE WHEN codec = '${RECORDS_CODEC}' AND id <> (? << ${OFFSET_BITS}) + ? THEN data END,
                timestamp FROM batches
         WHERE id >= (? << ${OFFSET_BITS}) + ? AND id < ((? + 1) << ${OFFSET_BITS})
         UNION ALL
         SELECT id, id & ${OFFSET_MASK}, NULL, key, value, headers, timestamp FROM records
         WHERE id >= (? << ${OFFSET_BITS}) + ? AND id < ((? + 1) << ${OFFSET_BITS})
         ORDER BY 1`,
      )
      .raw(),
  };
}

const COLUMNS = 6;
/** Rows per multi-row INSERT: one statement per row was measured 1.6-1.9x slower. */
const CHUNK = 100;

/** Buffers record rows and inserts them with multi-row statements, 100 rows or the remainder at once. */
export class RecordInserter {
  readonly #db: Database.Database;
  /** Statements by row count, prepared on first use: at most CHUNK of them. */
  readonly #statements = new Map<number, Database.Statement>();
  readonly #params: unknown[] = new Array(CHUNK * COLUMNS);
  #count = 0;

  constructor(db: Database.Database) {
    this.#db = db;
  }

  add(
    partitionId: number,
    offset: number,
    key: string | null,
    value: string | null,
    headers: string | null,
    timestamp: number,
  ): void {
    const params = this.#params;
    const base = this.#count * COLUMNS;
    params[base] = partitionId;
    params[base + 1] = offset;
    params[base + 2] = key;
    params[base + 3] = value;
    params[base + 4] = headers;
    params[base + 5] = timestamp;
    if (++this.#count === CHUNK) this.flush();
  }

  flush(): void {
    const count = this.#count;
    if (count === 0) return;
    this.#count = 0;
    const params = count === CHUNK ? this.#params : this.#params.slice(0, count * COLUMNS);
    this.#statement(count).run(params);
  }

  /** Drops rows buffered by a transaction that failed before flushing. */
  reset(): void {
    this.#count = 0;
  }

  #statement(rows: number): Database.Statement {
    let statement = this.#statements.get(rows);
    if (statement === undefined) {
      const row = `((? << ${OFFSET_BITS}) + ?, ?, ?, ?, ?)`;
      const values = new Array(rows).fill(row).join(', ');
      statement = this.#db.prepare(
        `INSERT INTO records (id, key, value, headers, timestamp) VALUES ${values}`,
      );
      this.#statements.set(rows, statement);
    }
    return statement;
  }
}
