/**
 * One batch's change events as DuckDB stages them: newline-delimited JSON, a line per change
 * wrapping the record's own envelope text with its place in the log, built in UTF-8 as the
 * changes arrive:
 *
 *   {"o":<offset>,"p":<partition>,"t":<timestamp ms>,"q":<topic index>,"k":<key text as a JSON string or null>,"v":<envelope>}
 *
 * The topic (index into `topics`) names the table of a change whose source does not.
 *
 * DuckDB's `read_json` parses the lines (lake-stage.ts): the envelope is read once, natively,
 * where reading its fields in JavaScript and handing DuckDB each of them was most of the lake's
 * CPU. The envelope must hold no raw line break (the caller flattens one that does).
 *
 * Memory: the bytes of the batch (about the size of its records), in 1 MiB chunks, until staged.
 */

const CHUNK = 1 << 20;
/**
 * Chunks of batches staged already, for the next batches to reuse (at most `SPARE_MAX`): a fresh
 * chunk is new pages the kernel faults in and zeroes as the lines are written. bench/lake.ts at
 * 1.1 M changes: writing the lines and their stage files took 1.05 s of the main thread with fresh
 * chunks, 0.41 s with reused ones.
 */
const spare: Buffer[] = [];
const SPARE_MAX = 64;
const EMPTY = Buffer.alloc(0);
const CLOSE = 0x7d;
const NEWLINE = 0x0a;

/**
 * The `read_json` columns of a staged line. The source's LSN, commit time and transaction are
 * numbers in every Debezium envelope; a record where one is not fails its batch, named.
 */
export const STAGED_JSON_COLUMNS = `{o: 'BIGINT', p: 'INTEGER', t: 'DOUBLE', q: 'INTEGER', k: 'VARCHAR',
  v: 'STRUCT(before JSON, after JSON, source STRUCT(lsn BIGINT, ts_us BIGINT, ts_ms BIGINT, txId BIGINT,
    "schema" VARCHAR, "table" VARCHAR), "transaction" STRUCT(total_order BIGINT), op VARCHAR)'}`;

export class LakeBatch {
  /** The topics of the batch, by the index the lines carry. */
  readonly topics: string[] = [];
  /** Per staged line (by index), where its record is: for an error naming it. */
  readonly partitions: number[] = [];
  readonly offsets: number[] = [];
  /** Per staged line, its topic's index in `topics`. */
  readonly topicOf: number[] = [];
  /** Per staged line, the envelope text (to name a record DuckDB could not read). */
  readonly texts: string[] = [];
  readonly #chunks: Buffer[] = [];
  /** The chunks taken, whole (`#chunks` holds their written parts). */
  readonly #taken: Buffer[] = [];
  #chunk: Buffer = EMPTY;
  #at = 0;
  #topic = -1;
  /** The longest line, in bytes at most (DuckDB's `maximum_object_size`). */
  longest = 0;

  get length(): number {
    return this.offsets.length;
  }

  /** Adds a change: its record's place, timestamp, key text and envelope text (one line). */
  push(
    topic: string,
    partition: number,
    offset: number,
    timestamp: number,
    key: string | null,
    text: string,
  ): void {
    let q = this.#topic;
    if (q < 0 || this.topics[q] !== topic) {
      q = this.topics.indexOf(topic);
      if (q < 0) q = this.topics.push(topic) - 1;
      this.#topic = q;
    }
    this.partitions.push(partition);
    this.offsets.push(offset);
    this.topicOf.push(q);
    this.texts.push(text);
    const head = `{"o":${offset},"p":${partition},"t":${timestamp},"q":${q},"k":${key === null ? 'null' : JSON.stringify(key)},"v":`;
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    const most = (head.length + text.length) * 3 + 2;
    if (this.#at + most > this.#chunk.length) this.#next(most);
    const start = this.#at;
    this.#at += this.#chunk.write(head, this.#at, 'utf8');
    this.#at += this.#chunk.write(text, this.#at, 'utf8');
    this.#chunk[this.#at++] = CLOSE;
    this.#chunk[this.#at++] = NEWLINE;
    if (this.#at - start > this.longest) this.longest = this.#at - start;
  }

  /**
   * Lets the staged bytes go (once DuckDB has them: their chunks are reused by the next batches);
   * `bytes` is empty after.
   */
  dropBytes(): void {
    for (const chunk of this.#taken)
      if (chunk.length === CHUNK && spare.length < SPARE_MAX) spare.push(chunk);
    this.#taken.length = 0;
    this.#chunks.length = 0;
    this.#chunk = EMPTY;
    this.#at = 0;
  }

  /** The staged bytes, in order (valid until `dropBytes`). */
  bytes(): readonly Buffer[] {
    if (this.#at > 0) {
      this.#chunks.push(this.#chunk.subarray(0, this.#at));
      this.#chunk = EMPTY;
      this.#at = 0;
    }
    return this.#chunks;
  }

  /** Where the record of staged line `index` (0-based) is, for an error message. */
  place(index: number): string {
    const topic = this.topics[this.topicOf[index]!];
    return `${topic} partition ${this.partitions[index]} offset ${this.offsets[index]}`;
  }

  #next(most: number): void {
    if (this.#at > 0) this.#chunks.push(this.#chunk.subarray(0, this.#at));
    this.#chunk = (most <= CHUNK && spare.pop()) || Buffer.allocUnsafeSlow(Math.max(CHUNK, most));
    this.#taken.push(this.#chunk);
    this.#at = 0;
  }
}

/**
 * A stage failure: a record DuckDB could not read, named with what `JSON.parse` says of it (the
 * line DuckDB gives may be past the record, a text missing its closing brace runs on).
 */
export function stageFailure(error: unknown, batch: LakeBatch): Error {
  const message = error instanceof Error ? error.message : String(error);
  for (let i = 0; i < batch.length; i++) {
    try {
      JSON.parse(batch.texts[i]!);
    } catch (parse) {
      return new Error(`lake: the change at ${batch.place(i)} is not JSON: ${(parse as Error).message}`, {
        cause: error,
      });
    }
  }
  const line = /\bline (\d+)/.exec(message);
  const index = line ? Number(line[1]) - 1 : -1;
  if (index < 0 || index >= batch.length) return error instanceof Error ? error : new Error(message);
  return new Error(`lake: the change at ${batch.place(index)} could not be read: ${message}`, {
    cause: error,
  });
}
