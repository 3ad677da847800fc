import type Database from 'better-sqlite3';
import { LogError } from '../../core/errors.ts';
import type { Checkpoint, EventLog, PartitionLag, TopicInfo } from '../../core/event-log.ts';
import type { AppendRecord, PartitionOffset, StoredRecord } from '../../core/record.ts';
import { type RetentionPolicy, type RetentionResult, RetentionSweeper } from './retention.ts';
import { EMPTY_HEADERS, SqliteAppender } from './sqlite-appender.ts';
import { classifySqliteError, OFFSET_MASK, openLogDatabase } from './sqlite-schema.ts';
import { type LogStatements, prepareStatements } from './sqlite-statements.ts';

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
  #sweeper: RetentionSweeper | undefined;
  #closed = false;

  private constructor(db: Database.Database, file: string, options: EmbeddedEventLogOptions) {
    this.#db = db;
    this.file = file;
    this.#readonly = options.readonly ?? false;
    this.#retention = options.retention ?? {};
    this.#clock = options.clock ?? Date.now;
    this.#sql = prepareStatements(db);
    this.#appender = new SqliteAppender(this.#sql, file, options.defaultPartitions ?? 1, this.#clock);
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

  async append(records: readonly AppendRecord[], checkpoint?: Checkpoint): Promise<readonly StoredRecord[]> {
    this.#writable('append to');
    if (records.length === 0 && checkpoint === undefined) return [];
    try {
      return this.#appender.append(records, checkpoint);
    } catch (error) {
      throw classifySqliteError(error, this.file, 'append to');
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
      const rows = this.#sql.read.all(id, Math.min(offset, OFFSET_MASK), id, max) as ReadRow[];
      return rows.map(([recordOffset, key, value, headers, timestamp]) => ({
        topic,
        partition,
        offset: recordOffset,
        key,
        value,
        headers: headers === null ? EMPTY_HEADERS : JSON.parse(headers),
        timestamp,
      }));
    });
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
    return this.#run('apply retention to', () => {
      this.#sweeper ??= new RetentionSweeper(this.#db);
      return this.#sweeper.enforce(policy, now);
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
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
type TopicRow = { topic: string; partition: number; start: number; end: number };
type LagRow = TopicRow & { committed: number };
