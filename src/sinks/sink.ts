/**
 * Sinks: built-in consumers that are configured, not coded (`sinks.<name>` in the config).
 *
 * A sink runs exactly like a consumer folder: the pipeline writes a generated consumer module for
 * it under `<dataDir>/sinks/<name>/` (see `sink-setup.ts`), and the supervisor runs it with the
 * same replicas, offsets, retries, dead letters, scaling, metrics, logs and `consumers` listing.
 * Its consumer group is the sink's name.
 *
 * Contract of a `Sink` (every kind keeps it; the conformance suite in `test/conformance/` checks):
 * - Exactly-once effect: `target` is a `TransactionalTarget`. The worker opens one transaction per
 *   batch, `write` applies the batch through `tx`, and the batch's partition offsets are written
 *   by the target in the same transaction (`tributary_consumer_offsets` in SQL targets, a key in
 *   Redis written by the same MULTI/EXEC...). After a crash at any instant the target holds each
 *   record's effect once. A target that cannot commit atomically (a webhook) says what it gives
 *   instead in its own doc comment (at least once, with an idempotency key).
 * - Order: records of one partition arrive in log order, batch after batch; batches of different
 *   partitions may be written concurrently on different `tx` (one lane per partition).
 * - `write` may be called again with records already applied (a retried batch whose transaction
 *   rolled back): it must only depend on `tx`, never on state kept outside the transaction.
 * - A record the target can never hold (a value too long, a type it cannot represent) throws a
 *   `SinkRecordError` naming the column and the reason: the worker retries it alone and then
 *   dead-letters it with that reason; nothing of a failed batch is applied.
 * - `open` runs when the replica's target session opens (before the first batch): create tables,
 *   check columns; `close` when it closes. Both may be called on any replica; they must be
 *   idempotent across replicas (create if not exists).
 *
 * Record values are the capture's format: the Debezium envelope (`format: debezium`, the default)
 * or the unwrapped row; `sink-records.ts` turns either into a uniform row change.
 */

import type { Logger } from 'pino';
import type { z } from 'zod';
import type { TributaryConfig } from '../config/config-schema.ts';
import type { ConsumerContext, ConsumerRecord } from '../consumers/define-consumer.ts';
import type { TransactionalTarget } from '../consumers/transactional.ts';
import { TributaryError } from '../core/errors.ts';
import type { NatsLogRef } from '../log/open-event-log.ts';

/** What a sink knows of the pipeline it runs in (plain data: it crosses into the worker process). */
export interface SinkEnvironment {
  /** The sink's name (`sinks.<name>`): its consumer group, its log file, its dead letters. */
  readonly name: string;
  readonly dataDir: string;
  readonly topicPrefix: string;
  readonly format: TributaryConfig['format'];
  /** The NATS log the capture writes (absent: the embedded log of `dataDir`). */
  readonly log?: NatsLogRef;
}

export interface SinkOpenContext {
  readonly env: SinkEnvironment;
  readonly logger: Logger;
}

export interface Sink<Tx = unknown> {
  /** Where the writes and the offsets commit together. */
  readonly target: TransactionalTarget<Tx>;
  /** Prepares the target (tables, indexes, checks) once per replica, before the first batch. */
  open?(context: SinkOpenContext, tx: Tx | undefined): Promise<void>;
  /** Applies one batch inside the target's transaction `tx` (see the contract above). */
  write(batch: readonly ConsumerRecord<unknown>[], tx: Tx, context: ConsumerContext<Tx>): Promise<void>;
  /** Releases what `open` took (not the target session: the worker closes that). */
  close?(): Promise<void>;
}

/** The options every sink accepts, besides its kind's own (see `sink-options.ts`). */
export interface CommonSinkOptions {
  readonly kind: string;
  /** Captured tables (`schema.table`) whose topics it reads; or `topics`. */
  readonly tables?: readonly string[];
  readonly topics?: readonly string[];
  readonly replicas?: number | { readonly min: number; readonly max: number };
  readonly batchSize?: number;
  readonly retryAttempts?: number;
  readonly memoryMb?: number;
  /** Off: the sink is configured but not run. */
  readonly enabled?: boolean;
}

/** What `check` may look at besides the sink's options (main process only, never written out). */
export interface SinkCheckContext {
  /** The source database (to check that named tables and columns exist), when configured. */
  readonly sourceUrl?: string;
  /** The captured tables the sink reads (`schema.table`), when given by `tables`. */
  readonly tables?: readonly string[];
}

/**
 * A kind of sink, registered by name in `sink-registry.ts`. `options` validates the kind's own
 * options (the common ones are checked first); `create` runs in the replica's process.
 */
export interface SinkKind<Options = unknown> {
  readonly kind: string;
  /** One line for `docs/sinks.md` and errors. */
  readonly description: string;
  readonly options: z.ZodType<Options>;
  /** Topics read when neither `tables` nor `topics` is given (e.g. a service's fixed tables). */
  defaultTables?(options: Options): readonly string[];
  /**
   * Batching when `batchSize` is not set (default 500 records, no wait): a target whose commit
   * costs files (the lake) takes larger batches, waiting up to `maxWaitMs` to fill one.
   */
  readonly defaultBatch?: { readonly maxRecords: number; readonly maxWaitMs?: number };
  /**
   * Before the pipeline starts (`run`, `up`), in the main process: an unreachable target, an
   * unknown column... throw a `ConfigError` naming `sinks.<name>.<field>` and the fix.
   */
  check?(options: Options, env: SinkEnvironment, context?: SinkCheckContext): Promise<void>;
  create(options: Options, env: SinkEnvironment): Sink<unknown> | Promise<Sink<unknown>>;
}

/** A record the target can never hold: dead-lettered (after its own retries) with this reason. */
export class SinkRecordError extends TributaryError {
  constructor(message: string, options: { cause?: unknown; hint?: string } = {}) {
    super('SINK_RECORD_REJECTED', message, { ...options, retryable: false });
  }
}
