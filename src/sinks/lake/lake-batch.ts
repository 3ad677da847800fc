/**
 * One batch's change events as the lake writer takes them: per change, the few values the writer
 * decides with (table, LSN, log position, op, commit time, key) in arrays, and the text DuckDB
 * stages, built as the changes arrive.
 *
 * The staged text: a line per change, its fields split by U+001F (which JSON text never holds
 * raw; the caller turns line breaks between JSON tokens into spaces), `LINES_PER_VALUE` lines per
 * value handed to DuckDB: a few hundred native calls per batch instead of several per change, and
 * no object per change kept until the batch is written (they outlived the young generation).
 */

/** Lines per staged value. */
export const LINES_PER_VALUE = 256;

/** The staged columns of a line's fields (`l`), in the order `push` writes them ('' is NULL). */
export const STAGE_COLUMNS = `l[1] AS tbl, l[2]::INTEGER AS part, l[3]::BIGINT AS off, l[4]::BIGINT AS ts_us,
  l[5]::BIGINT AS lsn, l[6] AS op, nullif(l[7], '')::BIGINT AS txid, nullif(l[8], '')::BIGINT AS tx_order,
  nullif(l[9], '') AS k, nullif(l[10], '') AS before, nullif(l[11], '') AS after`;

const US = '\x1f';

export class LakeBatch {
  readonly tables: string[] = [];
  readonly lsns: number[] = [];
  readonly partitions: number[] = [];
  readonly offsets: number[] = [];
  /** c, u, d, r, t. */
  readonly ops: string[] = [];
  /** Commit times, microseconds since the epoch. */
  readonly commitUs: number[] = [];
  /** JSON text of the key columns; null for a table without key (and truncates). */
  readonly keys: (string | null)[] = [];
  readonly #values: string[] = [];
  readonly #lines: string[] = [];

  get length(): number {
    return this.tables.length;
  }

  /**
   * Adds a change. The texts are as the record wrote them, so DuckDB reads every digit:
   * `lsnText` and `commitText` integers, `txId` and `txOrder` JSON numbers or null, `before` and
   * `after` the row images' JSON or null.
   */
  push(
    table: string,
    lsn: number,
    lsnText: string,
    partition: number,
    offset: number,
    op: string,
    commitUs: number,
    commitText: string,
    txId: string | null,
    txOrder: string | null,
    key: string | null,
    before: string | null,
    after: string | null,
  ): void {
    this.tables.push(table);
    this.lsns.push(lsn);
    this.partitions.push(partition);
    this.offsets.push(offset);
    this.ops.push(op);
    this.commitUs.push(commitUs);
    this.keys.push(key);
    this.#lines.push(
      table +
        US +
        partition +
        US +
        offset +
        US +
        commitText +
        US +
        lsnText +
        US +
        op +
        US +
        (txId ?? '') +
        US +
        (txOrder ?? '') +
        US +
        (key ?? '') +
        US +
        (before ?? '') +
        US +
        (after ?? ''),
    );
    if (this.#lines.length === LINES_PER_VALUE) this.#flush();
  }

  /** The staged text: values of up to `LINES_PER_VALUE` lines. */
  values(): readonly string[] {
    if (this.#lines.length > 0) this.#flush();
    return this.#values;
  }

  #flush(): void {
    this.#values.push(this.#lines.join('\n'));
    this.#lines.length = 0;
  }
}
