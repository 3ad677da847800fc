import type Database from 'better-sqlite3';
import { LogError } from '../../core/errors.ts';
import type { Checkpoint, EventLog, PartitionLag, TopicInfo } from '../../core/event-log.ts';
import type { AppendItem, PartitionOffset, StoredRecord } from '../../core/record.ts';
import { checkReadArguments } from '../append-items.ts';
import { type RetentionPolicy, type RetentionResult, RetentionSweeper } from './retention.ts';
import { SqliteAppender } from './sqlite-appender.ts';
import { SqliteReader } from './sqlite-reader.ts';
import { BUSY_TIMEOUT_MS, classifySqliteError, hasBatchesTable, openLogDatabase } from './sqlite-schema.ts';
import {
  type BatchStatements,
  type LogStatements,
  prepareBatchStatements,
  prepareStatements,
} from './sqlite-statements.ts';
import { DEFAULT_WAL_LIMIT_BYTES, WalBound, type WalBoundStats } from './wal-bound.ts';

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
 *
 * This class checks arguments, classifies errors and owns the connection; the work is in the files
 * beside it: the write path (sqlite-appender.ts), the read path (sqlite-reader.ts, with the row
 * batches it opens in opened-batches.ts), the file format (sqlite-schema.ts), the statements
 * (sqlite-statements.ts), retention (retention.ts) and the bound on the WAL file (wal-bound.ts).
 */
export class EmbeddedEventLog implements EventLog {
  readonly file: string;
  readonly #db: Database.Database;
  readonly #readonly: boolean;
  readonly #retention: RetentionPolicy;
  readonly #clock: () => number;
  readonly #sql: LogStatements;
  readonly #appender: SqliteAppender;
  readonly #reader: SqliteReader;
  /** Prepared once the `batches` table exists (a read-only open of a format 1 log has none). */
  #batchSql: BatchStatements | undefined;
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
    this.#reader = new SqliteReader(this.#sql, () => this.#batches(), file);
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
    checkReadArguments(offset, max);
    return this.#run('read', () => this.#reader.read(topic, partition, offset, max));
  }

  #batches(): BatchStatements | undefined {
    if (this.#batchSql === undefined && hasBatchesTable(this.#db)) {
      this.#batchSql = prepareBatchStatements(this.#db);
    }
    return this.#batchSql;
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

function fail(message: string): never {
  throw new LogError('LOG_FAILED', message);
}
type TopicRow = { topic: string; partition: number; start: number; end: number };
type LagRow = TopicRow & { committed: number };
