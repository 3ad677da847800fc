import type { ChangeEvent, LogicalMessage } from './change-event.ts';
import type { Lsn } from './lsn.ts';
import type { AppendItem } from './record.ts';

/** Where an event sits in its transaction and in the source, for the envelope's metadata. */
export interface EventContext {
  /** `topic.prefix` in Debezium terms: the logical name of this capture. */
  readonly serverName: string;
  readonly database: string;
  readonly xid: number;
  /** The commit LSN of the event's transaction (Debezium's transaction id is `xid:commitLsn`). */
  readonly commitLsn: Lsn;
  /** The end LSN of the last transaction before this one (Debezium's `sequence[0]`). */
  readonly lastCommittedLsn: Lsn;
  readonly commitTimeUs: bigint;
  /** 1-based position of the event in its transaction. */
  readonly totalOrder: number;
  /** 1-based position of the event among its transaction's events of the same table. */
  readonly dataCollectionOrder: number;
  /** Debezium's `source.snapshot`: `false` while streaming; `true`/`first`/`last` in snapshots. */
  readonly snapshot: 'false' | 'true' | 'first' | 'last' | 'incremental';
  /** Processing time in microseconds (top-level `ts_ms`/`ts_us`); from the injected clock. */
  readonly nowUs: bigint;
}

/**
 * Where a non-transactional logical message sits: outside any transaction, so it has no xid,
 * commit time or order; its record's times are the processing time.
 */
export interface StandaloneMessageContext {
  readonly serverName: string;
  readonly database: string;
  /** The end LSN of the last transaction before the message (Debezium's `sequence[0]`). */
  readonly lastCommittedLsn: Lsn;
  readonly nowUs: bigint;
}

/**
 * Turns change events into records. Pure and synchronous: the same event and context always
 * give the same records, so re-encoding after a crash yields identical bytes.
 */
export interface Encoder {
  /** Appends the event's records (e.g. a delete and its tombstone) to `out`. */
  encode(event: ChangeEvent, context: EventContext, out: AppendItem[]): void;
  /**
   * Appends the record of a `pg_logical_emit_message` message. A transactional message gets its
   * transaction's `EventContext` (it is counted in `totalOrder` like a change event), a
   * non-transactional one a `StandaloneMessageContext`.
   */
  encodeMessage(
    message: LogicalMessage,
    context: EventContext | StandaloneMessageContext,
    out: AppendItem[],
  ): void;
  /** The topic a table's events go to. */
  topicFor(schema: string, table: string): string;
}
