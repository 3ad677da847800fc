/**
 * The user API: `consumers/<name>/index.ts` default-exports `defineConsumer({...})`.
 *
 * Delivery contract (kept by the worker, `worker/consumer-runner.ts`):
 * - At least once: a record's offset is committed only after `handle` resolved for it (and for
 *   every record before it in its partition), so after a crash a record may be handled again.
 *   With `transactional`, the offsets are written in the same transaction as the handler's writes
 *   (`ctx.tx`), so the effect is exactly once.
 * - Order per key: records of one key reach `handle` in log order, one batch after the other.
 *   Different keys go to different lanes (`concurrency`) and are handled in parallel. A
 *   transactional consumer orders per partition instead (one lane per partition), because its
 *   offset is one number per partition.
 * - A batch that throws is retried with exponential backoff; after the last attempt its records
 *   are retried one by one, and a record that still fails goes to the dead letters
 *   (`tributary dlq`) and the partition moves on.
 */
import type { Logger } from 'pino';
import type { TransactionalTarget } from './transactional.ts';

/** The key columns' object (Debezium's record key). */
export type RowKey = { [column: string]: unknown };

/** Debezium's `source` block for the PostgreSQL connector. */
export interface DebeziumSource {
  readonly version: string;
  readonly connector: 'postgresql';
  readonly name: string;
  readonly ts_ms: number;
  readonly ts_us: number;
  readonly ts_ns: number;
  readonly snapshot: 'true' | 'false' | 'first' | 'last' | 'incremental';
  readonly db: string;
  readonly sequence: string;
  readonly schema: string;
  readonly table: string;
  readonly txId: number | null;
  readonly lsn: number | null;
  readonly xmin: number | null;
}

export type DebeziumOp = 'c' | 'u' | 'd' | 'r' | 't' | 'm';

/** The value of a record in the default `debezium` format (JSON converter, `schemas.enable=false`). */
export interface DebeziumEnvelope<Row = { [column: string]: unknown }> {
  readonly before: Row | null;
  readonly after: Row | null;
  readonly source: DebeziumSource;
  readonly transaction: {
    readonly id: string;
    readonly total_order: number;
    readonly data_collection_order: number;
  } | null;
  readonly op: DebeziumOp;
  readonly ts_ms: number;
  readonly ts_us: number;
  readonly ts_ns: number;
}

/** Short name for `DebeziumEnvelope`. */
export type Envelope<Row = { [column: string]: unknown }> = DebeziumEnvelope<Row>;

/** The value of a record in the `unwrap` format: the row plus the fields ExtractNewRecordState adds. */
export type UnwrappedRow<Row = { [column: string]: unknown }> = Row & {
  readonly __op: 'c' | 'u' | 'd' | 'r';
  readonly __table: string;
  readonly __schema: string;
  readonly __lsn: number;
  readonly __source_ts_ms: number;
  readonly __deleted: 'true' | 'false';
};

/** A record as `handle` sees it: the value parsed from JSON (`null` for a tombstone). */
export interface ConsumerRecord<Value = DebeziumEnvelope> {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  /** The key as stored (JSON text of the key columns), `null` when the row has no key. */
  readonly key: string | null;
  readonly value: Value | null;
  readonly headers: Readonly<{ [name: string]: string }>;
  /** Milliseconds since the epoch: the source commit time. */
  readonly timestamp: number;
}

/** Counters the handler may increment; sent to the supervisor with the heartbeats. */
export interface ConsumerMetrics {
  /** Adds `by` (default 1) to the counter `name` (letters, digits and `_`). */
  increment(name: string, by?: number): void;
}

export interface ConsumerContext<Tx = undefined> {
  /** pino logger with `consumer` and `replica` fields. Never log row values you would not print. */
  readonly logger: Logger;
  readonly metrics: ConsumerMetrics;
  /** Aborted when the replica shuts down: stop long work early (the batch is then not committed). */
  readonly signal: AbortSignal;
  /** 1 for the first try of this batch, 2 for the first retry... */
  readonly attempt: number;
  /** The open transaction of the `transactional` target (`undefined` otherwise). */
  readonly tx: Tx;
  readonly consumer: string;
  readonly replica: number;
  /**
   * The lane's next batch when it already waits in full (empty otherwise), for work that needs no
   * transaction and can be done ahead while this batch waits on I/O (parsing, planning). It may
   * still change before it runs (a revocation drops records): keep such work by the records'
   * topic, partition and offset, and use it only for the same records.
   */
  readonly upcoming?: () => readonly ConsumerRecord<unknown>[];
}

export interface RetryOptions {
  /** Tries of a batch (and then of each of its records) before dead-lettering. Default 3. */
  readonly attempts?: number;
  /** Delay before the first retry. Default 100 ms. */
  readonly initialDelayMs?: number;
  /** The delay doubles per retry up to this. Default 10 000 ms. */
  readonly maxDelayMs?: number;
}

export interface BatchOptions {
  /** Most records in one call of `handle`. Default 100. */
  readonly maxRecords?: number;
  /** How long a batch that is not full waits for more records. Default 0 (handle what is there). */
  readonly maxWaitMs?: number;
}

/**
 * When dead letters mean the consumer is broken rather than a record is bad. Defaults from the
 * `consumers.failureThreshold` and `consumers.failureAction` settings.
 */
export interface FailureOptions {
  /**
   * Consecutive dead letters (no record handled in between) that make the consumer `failing`:
   * an alert is raised and, with `action: 'pause'`, the consumer pauses before dead-lettering any
   * further record (so at most this many records go to the dead letters). 0 turns it off.
   */
  readonly maxConsecutiveDeadLetters?: number;
  /** `pause` (default): stop, keep the rest for `tributary consumers resume`; `continue`: alert only. */
  readonly action?: 'pause' | 'continue';
}

/**
 * Where to start when the stored offset of a partition is beyond the end of the log (a reused
 * transactional target with a new data directory): `fail` (default) marks the consumer failed
 * with the offsets named; `earliest` starts at the oldest stored record; `latest` at the end.
 * Kafka's `auto.offset.reset`. Default from the `consumers.offsetReset` setting.
 */
export type OffsetReset = 'fail' | 'earliest' | 'latest';

export interface ConsumerDefinition<Value = DebeziumEnvelope, Tx = undefined> {
  /** Topics to read, e.g. `['tributary.public.orders']`. */
  readonly topics: readonly string[];
  /** Consumer group (offsets are kept per group). Default: the consumer's folder name. */
  readonly group?: string;
  /** Fixed count, or a range the supervisor scales in on time lag. Default 1. */
  readonly replicas?: number | { readonly min: number; readonly max: number };
  readonly batch?: BatchOptions;
  /** Key lanes per replica: batches of different keys handled in parallel. Default 4. */
  readonly concurrency?: number;
  readonly retry?: RetryOptions;
  /**
   * Memory limit of each replica's process, in MB. Default 512. The V8 heap is capped to it, and
   * the supervisor kills a replica whose resident memory (RSS: heap, Buffers, native memory)
   * exceeds it by more than the runtime's own share (see docs/consumers.md, "Limits").
   */
  readonly memoryMb?: number;
  /**
   * Environment variables the consumer reads (e.g. `['SHOP_API_KEY']`). A replica process gets
   * only these, plus what the runtime needs (PATH, HOME, TZ, LANG, LC_*, NODE_*...): never the
   * rest of the supervisor's environment, where Tributary's secrets live (`DATABASE_URL`,
   * `TRIBUTARY_TOKEN`, `TRIBUTARY_MASK_SALT`, the alert webhook), which cannot be declared. The
   * first process of a consumer starts before its declaration is known and is replaced as soon as
   * it has loaded: read the variables in `handle` (or lazily), not when the module loads.
   */
  readonly env?: readonly string[];
  /** Write through `ctx.tx`; the offsets commit in the same transaction (exactly-once effect). */
  readonly transactional?: TransactionalTarget<Tx>;
  readonly failure?: FailureOptions;
  readonly offsetReset?: OffsetReset;
  /** Documentation of the value type only: `debezium` (default) or `unwrap`, as captured. */
  readonly format?: 'debezium' | 'unwrap';
  handle(batch: readonly ConsumerRecord<Value>[], ctx: ConsumerContext<Tx>): Promise<void> | void;
}

/** Marks a definition so that the worker can tell it from any other default export. */
export const CONSUMER_DEFINITION: unique symbol = Symbol.for('tributary.consumer');

export type DefinedConsumer<Value = DebeziumEnvelope, Tx = undefined> = ConsumerDefinition<Value, Tx> & {
  readonly [CONSUMER_DEFINITION]: true;
};

/**
 * Declares a consumer. The value type is the first type parameter (`DebeziumEnvelope<Row>` for
 * the default format, `UnwrappedRow<Row>` for `format: 'unwrap'`); the transaction type follows
 * `transactional` (`postgresTarget` gives a `pg` client, `sqliteTarget` a better-sqlite3
 * database). Validation happens when the worker loads it, with errors naming the field.
 */
export function defineConsumer<Value = DebeziumEnvelope, Tx = undefined>(
  definition: ConsumerDefinition<Value, Tx>,
): DefinedConsumer<Value, Tx> {
  return Object.freeze({ ...definition, [CONSUMER_DEFINITION]: true as const });
}
