/**
 * One batch's change events as DuckDB stages them: newline-delimited JSON, a line per record
 * wrapping the record's own envelope with its key, built in UTF-8 as the changes arrive:
 *
 *   {"k":<key>,"v":<envelope, or null for a record that is not a change event>}
 *
 * The key is written as it is when it is a JSON object (DuckDB reads it back as its minified
 * text, which a key made by `JSON.stringify` already is), else as a JSON string. Where each line's
 * record is (topic, partition, offset) is not written per line but kept as runs of consecutive
 * offsets (`runs`), which the stage turns into columns by line number (lake-stage.ts); the record's
 * timestamp only where its envelope has no commit time (`timestampOf`). A line per record, a
 * tombstone's too, keeps the runs long: a batch of one partition is one run.
 *
 * DuckDB's `read_json` parses the lines (lake-stage.ts): the envelope is read once, natively,
 * where reading its fields in JavaScript and handing DuckDB each of them was most of the lake's
 * CPU. An envelope read from the embedded log is copied as its bytes (`pushBytes`), never
 * decoded. The envelope must hold no raw line break (the caller flattens one that does).
 *
 * Memory: the bytes of the batch (about the size of its records), in 1 MiB chunks, until staged.
 */

import { literal } from './lake-columns.ts';

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
export const STAGED_JSON_COLUMNS = `{k: 'VARCHAR',
  v: 'STRUCT(before JSON, after JSON, source STRUCT(lsn BIGINT, ts_us BIGINT, ts_ms BIGINT, txId BIGINT,
    "schema" VARCHAR, "table" VARCHAR), "transaction" STRUCT(total_order BIGINT), op VARCHAR)'}`;

/** A record as the batch needs it: its place in the log, timestamp and key. */
export interface StagedChange {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly timestamp: number;
  readonly key: string | null;
}

/** Lines `first..` (to the next run's first) are records of one partition at offsets `offset..`. */
export interface LineRun {
  readonly first: number;
  /** The topic's index in `LakeBatch.topics`. */
  readonly q: number;
  readonly partition: number;
  readonly offset: number;
}

const HEAD = '{"k":';
const VALUE = ',"v":';
const NULL_LINE = 'null}\n';

export class LakeBatch {
  /** The topics of the batch, by the index the runs carry. */
  readonly topics: string[] = [];
  readonly runs: LineRun[] = [];
  /** Per line, its record. */
  readonly #changes: StagedChange[] = [];
  /** Per line, the envelope text (a string), or undefined where `textOf` gives it. */
  readonly #texts: (string | null | undefined)[] = [];
  readonly #textOf: (change: StagedChange) => string | null;
  readonly #chunks: Buffer[] = [];
  /** The chunks taken, whole (`#chunks` holds their written parts). */
  readonly #taken: Buffer[] = [];
  #chunk: Buffer = EMPTY;
  #at = 0;
  /** The longest line, in bytes at most (DuckDB's `maximum_object_size`). */
  longest = 0;

  /** `textOf`: the envelope text of a change added with `pushBytes` (for an error naming it). */
  constructor(textOf: (change: StagedChange) => string | null = () => null) {
    this.#textOf = textOf;
  }

  get length(): number {
    return this.#changes.length;
  }

  /** Adds a change whose envelope is `text` (one line; null: not a change event, skipped). */
  push(change: StagedChange, text: string | null): void {
    const tail = text === null ? NULL_LINE : text;
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    const start = this.#head(change, text, tail.length * 3);
    this.#at += this.#chunk.write(tail, this.#at, 'utf8');
    if (text !== null) this.#close();
    this.#measure(start);
  }

  /** Adds a change whose envelope is the UTF-8 bytes `data[start, end)` (one line). */
  pushBytes(change: StagedChange, data: Buffer, start: number, end: number): void {
    const from = this.#head(change, undefined, end - start);
    this.#at += data.copy(this.#chunk, this.#at, start, end);
    this.#close();
    this.#measure(from);
  }

  /** The timestamp of line `index`'s record. */
  timestampOf(index: number): number {
    return this.#changes[index]!.timestamp;
  }

  /** Line `index`'s envelope text (null: not a change event). */
  textOf(index: number): string | null {
    const text = this.#texts[index];
    return text === undefined ? this.#textOf(this.#changes[index]!) : text;
  }

  /** Line `index`'s key as written in the line when it is not a JSON string (else undefined). */
  rawKey(index: number): string | undefined {
    const key = this.#changes[index]!.key;
    return key !== null && keyJson(key) === key ? key : undefined;
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
    const c = this.#changes[index]!;
    return `${c.topic} partition ${c.partition} offset ${c.offset}`;
  }

  /** Records the line's place: a new run unless it follows the last one's. */
  #place(change: StagedChange): void {
    const line = this.#changes.push(change) - 1;
    const run = this.runs.at(-1);
    if (
      run !== undefined &&
      change.partition === run.partition &&
      change.offset === run.offset + (line - run.first) &&
      this.topics[run.q] === change.topic
    ) {
      return;
    }
    let q = this.topics.indexOf(change.topic);
    if (q < 0) q = this.topics.push(change.topic) - 1;
    this.runs.push({ first: line, q, partition: change.partition, offset: change.offset });
  }

  /**
   * Places a change (`text`: its envelope, undefined where `textOf` gives it) and writes its
   * line's head `{"k":<key>,"v":`, with room made for `body` more bytes and the line's end;
   * returns where the line starts.
   */
  #head(change: StagedChange, text: string | null | undefined, body: number): number {
    this.#place(change);
    this.#texts.push(text);
    const key = keyJson(change.key);
    const most = HEAD.length + key.length * 3 + VALUE.length + body + 2;
    if (this.#at + most > this.#chunk.length) this.#next(most);
    const start = this.#at;
    this.#ascii(HEAD);
    this.#text(key);
    this.#ascii(VALUE);
    return start;
  }

  /** Keeps the longest line's length, for the line that began at `start`. */
  #measure(start: number): void {
    if (this.#at - start > this.longest) this.longest = this.#at - start;
  }

  /** Writes `text`, known to be ASCII, at `#at` (room made). */
  #ascii(text: string): void {
    const chunk = this.#chunk;
    let at = this.#at;
    for (let i = 0; i < text.length; i++) chunk[at++] = text.charCodeAt(i);
    this.#at = at;
  }

  /**
   * Writes `text` as UTF-8 at `#at` (room made). A short ASCII text byte by byte: `Buffer.write`
   * flattens the string and checks its arguments first, which cost more than the copy (a key of
   * a few bytes, per change).
   */
  #text(text: string): void {
    const chunk = this.#chunk;
    let at = this.#at;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c >= 0x80) {
        this.#at = at + chunk.write(text.slice(i), at, 'utf8');
        return;
      }
      chunk[at++] = c;
    }
    this.#at = at;
  }

  #close(): void {
    this.#chunk[this.#at++] = CLOSE;
    this.#chunk[this.#at++] = NEWLINE;
  }

  #next(most: number): void {
    if (this.#at > 0) this.#chunks.push(this.#chunk.subarray(0, this.#at));
    this.#chunk = (most <= CHUNK && spare.pop()) || Buffer.allocUnsafeSlow(Math.max(CHUNK, most));
    this.#taken.push(this.#chunk);
    this.#at = 0;
  }
}

/**
 * A key as its line holds it: a JSON object's text as it is (one line of it), anything else as a
 * JSON string; `null` for none.
 */
function keyJson(key: string | null): string {
  if (key === null) return 'null';
  if (
    key.charCodeAt(0) === 0x7b &&
    key.charCodeAt(key.length - 1) === 0x7d &&
    !key.includes('\n') &&
    !key.includes('\r')
  ) {
    return key;
  }
  return JSON.stringify(key);
}

/** Runs of a batch beyond which its lines' places are joined (ASOF) rather than chosen by CASE. */
const CASE_RUNS = 64;

/**
 * The batch's staged rows (`lines`, a table whose row ids are the line numbers) with their line
 * number `n`, their record's topic index `q`, `part`ition and `off`set from the batch's runs, and
 * the table of a change whose source names none: its topic's last part.
 */
export function placedLines(batch: LakeBatch, lines: string): string {
  const runs = batch.runs;
  const lastParts = `[${batch.topics.map((t) => literal(t.split('.').at(-1)!)).join(', ')}]`;
  const tbl = `coalesce(tbl, lower(CASE WHEN coalesce(src_schema, 'public') = 'public' THEN ${lastParts}[q + 1]
    ELSE src_schema || '_' || ${lastParts}[q + 1] END)) AS tbl`;
  const rest = 'src_schema, src_table, ts_us, lsn, op, txid, tx_order, k, before, after';
  if (runs.length <= CASE_RUNS) {
    const byRun = (value: (r: LineRun) => number, plus = '') => {
      if (runs.length === 1) return `${plus}${value(runs[0]!)}`;
      const whens = runs.slice(1).map((r, i) => `WHEN n < ${r.first} THEN ${value(runs[i]!)}`);
      return `${plus}CASE ${whens.join(' ')} ELSE ${value(runs.at(-1)!)} END`;
    };
    return `SELECT n, q, part, off, ${tbl}, ${rest} FROM (SELECT rowid AS n, ${byRun((r) => r.q)} AS q,
      ${byRun((r) => r.partition)} AS part, ${byRun((r) => r.offset - r.first, 'n + ')} AS off, * FROM ${lines})`;
  }
  const values = runs.map((r) => `(${r.first}, ${r.q}, ${r.partition}, ${r.offset})`).join(', ');
  return `SELECT n, q, part, off, ${tbl}, ${rest} FROM (SELECT l.n, r.q, r.part, r.off + (l.n - r.first) AS off, l.*
    FROM (SELECT rowid AS n, * FROM ${lines}) l
    ASOF JOIN (VALUES ${values}) r(first, q, part, off) ON l.n >= r.first)`;
}

/**
 * A stage failure: a record DuckDB could not read, named with what `JSON.parse` says of it (the
 * line DuckDB gives may be past the record, a text missing its closing brace runs on).
 */
export function stageFailure(error: unknown, batch: LakeBatch): Error {
  const message = error instanceof Error ? error.message : String(error);
  for (let i = 0; i < batch.length; i++) {
    for (const [what, text] of [
      ['key', batch.rawKey(i)],
      ['change', batch.textOf(i)],
    ] as const) {
      if (text === undefined || text === null) continue;
      try {
        JSON.parse(text);
      } catch (parse) {
        const of = what === 'key' ? 'the key of the change' : 'the change';
        return new Error(`lake: ${of} at ${batch.place(i)} is not JSON: ${(parse as Error).message}`, {
          cause: error,
        });
      }
    }
  }
  const line = /\bline (\d+)/.exec(message);
  const index = line ? Number(line[1]) - 1 : -1;
  if (index < 0 || index >= batch.length) return error instanceof Error ? error : new Error(message);
  return new Error(`lake: the change at ${batch.place(index)} could not be read: ${message}`, {
    cause: error,
  });
}
