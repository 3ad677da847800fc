import type Database from 'better-sqlite3';
import { LogError } from '../../core/errors.ts';
import type { Checkpoint, EventLog, PartitionLag, TopicInfo } from '../../core/event-log.ts';
import type { AppendItem, PartitionOffset, StoredRecord } from '../../core/record.ts';
import { batchCodec, type OpenedBatch } from '../batch-codecs.ts';
import { EMPTY_HEADERS } from './record-batch.ts';
import { type RetentionPolicy, type RetentionResult, RetentionSweeper } from './retention.ts';
import { SqliteAppender } from './sqlite-appender.ts';
import {
  BUSY_TIMEOUT_MS,
  classifySqliteError,
  hasBatchesTable,
  OFFSET_MASK,
  openLogDatabase,
} from './sqlite-schema.ts';
import {
  type BatchStatements,
  type LogStatements,
  prepareBatchStatements,
  prepareStatements,
} from './sqlite-statements.ts';
import { DEFAULT_WAL_LIMIT_BYTES, WalBound, type WalBoundStats } from './wal-bound.ts';

/** Opened row batches kept per log instance: a consumer reads a 20,000-record batch in many calls. */
const OPENED_BATCHES = 4;

export interface EmbeddedEventLogOptions {
  /** Folder holding `log.sqlite` (and its `-wal`/`-shm` files); created if missing unless read-only. */
  readonly dataDir: string;
  /** Partitions given to a topic when its first record is appended. Default 1. */
  readonly defaultPartitions?: number;
  /** Default true: every append is fsynced before it resolves (synchronous=FULL). */
  readonly durable?: boolean;
  /** Open for reading only, e.g. from a consumer process while the capture process appends. */
  readonly readonly?: boolean;
  /** Applied by `enforceRetention()`, which the owner of the log calls on its own schedule. */
  readonly retention?: RetentionPolicy;
  /** Time source for bookkeeping columns; tests inject their own. */
  readonly clock?: () => number;
  /**
   * The writer keeps `log.sqlite-wal` near this size while other processes read (see wal-bound.ts).
   * Default 64 MiB; 0 leaves the file to SQLite's automatic checkpoints.
   */
  readonly walLimitBytes?: number;
}

export interface TopicStats {
  readonly topic: string;
  readonly records: number;
  /** Approximate, as in `EmbeddedLogStats.bytes`. */
  readonly bytes: number;
}

export interface EmbeddedLogStats {
  readonly records: number;
  /** Approximate: characters of key, value and headers plus 24 per record (= bytes for ASCII JSON). */
  readonly bytes: number;
  readonly topics: number;
}

/**
 * The default event log: one SQLite database in WAL mode inside the data directory. One process
 * appends (it keeps the next offsets in memory); any number of processes may read, including with
 * `readonly: true`. Calls are synchronous under the hood (better-sqlite3), so they never interleave.
 */
export class EmbeddedEventLog implements EventLog {
  readonly file: string;
  readonly #db: Database.Database;
  readonly #readonly: boolean;
  readonly #retention: RetentionPolicy;
  readonly #clock: () => number;
  readonly #sql: LogStatements;
  readonly #appender: SqliteAppender;
  /** Partition ids for `read`, cached by "topic\0partition"; ids never change once assigned. */
  readonly #partitionIds = new Map<string, number>();
  /** Prepared once the `batches` table exists (a read-only open of a format 1 log has none). */
  #batchSql: BatchStatements | undefined;
  /** Partitions whose last read met a batch: their next read starts with the merged statement. */
  readonly #batchFirst = new Set<number>();
  /** Recently opened batches by "partitionId:lastOffset", least recently used first. */
  readonly #openedBatches = new Map<string, { readonly base: number; readonly batch: OpenedBatch }>();
  #sweeper: RetentionSweeper | undefined;
  readonly #wal: WalBound | undefined;
  #closed = false;

  private constructor(db: Database.Database, file: string, options: EmbeddedEventLogOptions) {
    this.#db = db;
    this.file = file;
    this.#readonly = options.readonly ?? false;
    this.#retention = options.retention ?? {};
    this.#clock = options.clock ?? Date.now;
    this.#sql = prepareStatements(db);
    this.#appender = new SqliteAppender(
      this.#sql,
      () => this.#batches() ?? fail(`${file} has no batches table`),
      file,
      options.defaultPartitions ?? 1,
      this.#clock,
    );
    const walLimit = options.walLimitBytes ?? DEFAULT_WAL_LIMIT_BYTES;
    if (!this.#readonly && walLimit > 0) this.#wal = new WalBound(db, file, walLimit, BUSY_TIMEOUT_MS);
  }

  static open(options: EmbeddedEventLogOptions): EmbeddedEventLog {
    const partitions = options.defaultPartitions ?? 1;
    if (!Number.isInteger(partitions) || partitions < 1 || partitions > 10_000) {
      throw new LogError(
        'LOG_INVALID_ARGUMENT',
        `defaultPartitions must be an integer from 1 to 10000, got ${partitions}`,
      );
    }
    const { db, file } = openLogDatabase({
      dataDir: options.dataDir,
      readonly: options.readonly ?? false,
      durable: options.durable ?? true,
    });
    try {
      return new EmbeddedEventLog(db, file, options);
    } catch (error) {
      db.close();
      throw classifySqliteError(error, file, 'open');
    }
  }

  /**
   * Appends records and row batches in list order. A batch of a topic with one partition is stored
   * as one blob and contributes nothing to the returned records; a batch of a topic with several is
   * rendered by its codec and stored (and returned) as ordinary records partitioned by key.
   */
  async append(items: readonly AppendItem[], checkpoint?: Checkpoint): Promise<readonly StoredRecord[]> {
    this.#writable('append to');
    if (items.length === 0 && checkpoint === undefined) return [];
    let stored: StoredRecord[];
    try {
      stored = this.#appender.append(items, checkpoint);
    } catch (error) {
      throw classifySqliteError(error, this.file, 'append to');
    }
    this.#boundWal();
    return stored;
  }

  /** Checkpoints that kept the write-ahead log bounded while readers read (see wal-bound.ts). */
  get walStats(): WalBoundStats {
    return this.#wal?.stats ?? { restarts: 0, busy: 0, idle: 0 };
  }

  /** After a committed write; a failure here must not fail the write, and recurs at the next one. */
  #boundWal(): void {
    try {
      this.#wal?.afterWrite();
    } catch {
      // e.g. a disk error while checkpointing: the next append reports it if it persists
    }
  }

  async checkpoint(source: string): Promise<Checkpoint | null> {
    const position = this.#run('read a checkpoint from', () => this.#sql.checkpoint.get(source)) as
      | string
      | undefined;
    return position === undefined ? null : { source, position };
  }

  async read(
    topic: string,
    partition: number,
    offset: number,
    max: number,
  ): Promise<readonly StoredRecord[]> {
    if (!Number.isInteger(offset) || offset < 0 || !Number.isInteger(max) || max < 0) {
      throw new LogError(
        'LOG_INVALID_ARGUMENT',
        `read needs a non-negative integer offset and max (${offset}, ${max})`,
      );
    }
    return this.#run('read', () => {
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
    });
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
      for (const row of batches.merged.iterate(
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
          const batch = this.#cachedBatch(id, last, base, row, topic, partition);
          if (batch === undefined) {
            fetch = row; // its data comes from another statement, once this one is done
            break;
          }
          const served = this.#serve(
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
      const batch = this.#openBatch(batches, id, last, base!, topic, partition, codec as string);
      if (batch === undefined) {
        // Removed by retention since the merged read found it: read again from there, a few times.
        if (++attempt > 3) break;
        continue;
      }
      const served = this.#serve(
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

  /** Pushes records `from .. min(last, from + need - 1)` of an opened batch; returns how many. */
  #serve(
    batch: OpenedBatch,
    id: number,
    topic: string,
    partition: number,
    base: number,
    last: number,
    from: number,
    need: number,
    out: StoredRecord[],
  ): number {
    const end = Math.min(last + 1, from + need);
    try {
      for (let o = from; o < end; o++) {
        const r = batch.record(o - base);
        out.push({
          topic,
          partition,
          offset: o,
          key: r.key,
          value: r.value,
          headers: r.headers,
          timestamp: r.timestamp,
        });
      }
    } catch (cause) {
      throw unreadableBatch(this.file, topic, partition, base, last, cause);
    }
    // Read to its end, a batch is not needed again: dropped now, it dies young (cheap to collect).
    if (end === last + 1) this.#openedBatches.delete(`${id}:${last}`);
    return Math.max(0, end - from);
  }

  /** An opened batch from the cache, or opened from the merged row when it carries the data. */
  #cachedBatch(
    id: number,
    last: number,
    base: number,
    row: MergedRow,
    topic: string,
    partition: number,
  ): OpenedBatch | undefined {
    const cacheKey = `${id}:${last}`;
    const cached = this.#openedBatches.get(cacheKey);
    if (cached !== undefined && cached.base === base) {
      this.#openedBatches.delete(cacheKey);
      this.#openedBatches.set(cacheKey, cached);
      return cached.batch;
    }
    const [, , , codec, header, data] = row;
    if (data === null) return undefined;
    return this.#openWith(
      id,
      last,
      base,
      codec as string,
      header as string,
      data as Uint8Array,
      topic,
      partition,
    );
  }

  /** Fetches and opens a batch whose data the merged read left out; undefined if it is gone. */
  #openBatch(
    batches: BatchStatements,
    id: number,
    last: number,
    base: number,
    topic: string,
    partition: number,
    codec: string,
  ): OpenedBatch | undefined {
    const content = batches.content.get(id, last) as [string, string, Uint8Array] | undefined;
    if (content === undefined) return undefined;
    const [, header, data] = content;
    return this.#openWith(id, last, base, codec, header, data, topic, partition);
  }

  /** Opens a batch with its codec, checks its count, and keeps it among the last opened. */
  #openWith(
    id: number,
    last: number,
    base: number,
    codec: string,
    header: string,
    data: Uint8Array,
    topic: string,
    partition: number,
  ): OpenedBatch {
    let opened: OpenedBatch;
    try {
      opened = batchCodec(codec).open(header, data);
    } catch (cause) {
      if (cause instanceof LogError && cause.code === 'LOG_UNKNOWN_CODEC') throw cause;
      throw unreadableBatch(this.file, topic, partition, base, last, cause, codec);
    }
    if (opened.count !== last - base + 1) {
      throw unreadableBatch(
        this.file,
        topic,
        partition,
        base,
        last,
        new Error(`the codec rendered ${opened.count} records`),
        codec,
      );
    }
    const cacheKey = `${id}:${last}`;
    this.#openedBatches.set(cacheKey, { base, batch: opened });
    if (this.#openedBatches.size > OPENED_BATCHES) {
      this.#openedBatches.delete(this.#openedBatches.keys().next().value!);
    }
    return opened;
  }

  #batches(): BatchStatements | undefined {
    if (this.#batchSql === undefined && hasBatchesTable(this.#db)) {
      this.#batchSql = prepareBatchStatements(this.#db);
    }
    return this.#batchSql;
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

  async topics(): Promise<readonly TopicInfo[]> {
    const rows = this.#run('list the topics of', () => this.#sql.topicInfo.all()) as TopicRow[];
    const topics: {
      topic: string;
      partitions: { partition: number; startOffset: number; endOffset: number }[];
    }[] = [];
    for (const row of rows) {
      if (topics.at(-1)?.topic !== row.topic) topics.push({ topic: row.topic, partitions: [] });
      topics
        .at(-1)!
        .partitions.push({ partition: row.partition, startOffset: row.start, endOffset: row.end });
    }
    return topics;
  }

  async commit(group: string, positions: readonly PartitionOffset[]): Promise<void> {
    this.#writable('commit offsets to');
    for (const { offset } of positions) {
      if (!Number.isInteger(offset) || offset < 0) {
        throw new LogError('LOG_INVALID_ARGUMENT', `Group ${group} tried to commit offset ${offset}`);
      }
    }
    const now = this.#clock();
    this.#run('commit offsets to', () =>
      this.#sql.commitOffsets(positions.map((p) => [group, p.topic, p.partition, p.offset, now] as const)),
    );
  }

  async committed(group: string): Promise<readonly PartitionOffset[]> {
    return this.#run('read committed offsets from', () =>
      this.#sql.committed.all(group),
    ) as PartitionOffset[];
  }

  /**
   * Every partition of every topic the group has committed on; a partition it never committed on
   * counts from 0, and records already removed by retention are not counted as lag.
   */
  async lag(group: string): Promise<readonly PartitionLag[]> {
    const rows = this.#run('compute lag in', () => this.#sql.lag.all(group, group)) as LagRow[];
    return rows.map((row) => ({
      topic: row.topic,
      partition: row.partition,
      committed: row.committed,
      endOffset: row.end,
      records: Math.max(0, row.end - Math.max(row.committed, row.start)),
    }));
  }

  /** Cheap totals from the partitions table (no scan of the records). */
  stats(): EmbeddedLogStats {
    return this.#run('read statistics of', () => this.#sql.stats.get()) as EmbeddedLogStats;
  }

  /** Records and approximate bytes stored per topic, from the partitions table (no scan). */
  topicStats(): readonly TopicStats[] {
    return this.#run('read statistics of', () => this.#sql.topicStats.all()) as TopicStats[];
  }

  /** Applies the retention policy (or the given one) as of `now`; safe to call while readers read. */
  async enforceRetention(
    now: number = this.#clock(),
    policy: RetentionPolicy = this.#retention,
  ): Promise<RetentionResult> {
    this.#writable('apply retention to');
    const result = this.#run('apply retention to', () => {
      this.#sweeper ??= new RetentionSweeper(this.#db);
      return this.#sweeper.enforce(policy, now);
    });
    this.#boundWal();
    return result;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#wal?.close();
    this.#db.close();
  }

  #writable(action: string): void {
    if (this.#readonly) {
      throw new LogError('LOG_READONLY', `Cannot ${action} ${this.file}: it was opened read-only`, {
        hint: 'Open the log without readonly in the process that writes (only one process should append).',
      });
    }
    this.#open(action);
  }

  #open(action: string): void {
    if (this.#closed) throw new LogError('LOG_CLOSED', `Cannot ${action} ${this.file}: the log is closed`);
  }

  #run<T>(action: string, work: () => T): T {
    this.#open(action);
    try {
      return work();
    } catch (error) {
      throw classifySqliteError(error, this.file, action);
    }
  }
}

type ReadRow = [number, string | null, string | null, string | null, number];
/**
 * A row of the merged read: a batch (`base` set; `data` only for codec `records`) or a record
 * (`base` null). The first column is the raw id, for the order only (it exceeds safe integers).
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

function unreadableBatch(
  file: string,
  topic: string,
  partition: number,
  base: number,
  last: number,
  cause: unknown,
  codec?: string,
): LogError {
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new LogError(
    'LOG_CORRUPT',
    `The row batch at offsets ${base}..${last} of ${topic}/${partition} in ${file} cannot be rendered` +
      `${codec === undefined ? '' : ` by codec ${codec}`}: ${detail}`,
    { cause, hint: 'Restore the data directory from a backup, or move it away to start a new log.' },
  );
}

function fail(message: string): never {
  throw new LogError('LOG_FAILED', message);
}
type TopicRow = { topic: string; partition: number; start: number; end: number };
type LagRow = TopicRow & { committed: number };
