import type { Logger } from 'pino';
import type { Lsn } from '../../core/lsn.ts';
import type { TableName } from './table-name.ts';

export interface PostgresSourceOptions {
  readonly url: string;
  readonly slot: string;
  readonly publication: string;
  /** Empty = all tables. */
  readonly tables?: readonly TableName[];
  /** Where to resume (the end LSN of the last durable transaction); the slot's position if later. */
  readonly startLsn?: Lsn;
  /** How often to report the acknowledged position to the server. */
  readonly statusIntervalMs?: number;
  readonly reconnect?: {
    readonly initialDelayMs?: number;
    readonly maxDelayMs?: number;
    readonly maxAttempts?: number;
  };
  /** Milliseconds between heartbeat messages written into the database (0 or unset: none). */
  readonly heartbeatIntervalMs?: number;
  /** Fill unchanged TOASTed values of updates with the row's current value (see ToastFetcher). */
  readonly toastFetch?: boolean;
  readonly logger: Logger;
  /** Microseconds since the Unix epoch; injected for tests. */
  readonly clock?: () => bigint;
  /**
   * Awaited once the server first accepted START_REPLICATION (this process holds the slot: the
   * lock of capture active/standby), before the first message is handled. A rejection ends the
   * stream with that error (retried if it is retryable, like a lost connection).
   */
  readonly onSlotHeld?: () => Promise<void>;
  /**
   * `wal_sender_timeout` of the replication connection (PostgreSQL 12+ lets a client set it): the
   * server ends a walsender whose client has not answered for that long, which releases the slot
   * of a capture cut off by a partition or frozen (capture-standby.ts). Unset: the server's value.
   */
  readonly walSenderTimeoutMs?: number;
}

export interface SourceStats {
  connected: boolean;
  bytesReceived: number;
  messagesReceived: number;
  /** End LSN of the last commit received. */
  lastReceivedLsn: Lsn;
  /** How far the server has sent the stream: the latest message's or keepalive's position (0 before any). */
  streamedLsn: Lsn;
  /** Position last reported to the server as flushed. */
  confirmedLsn: Lsn;
  reconnects: number;
  /** Set while the event log's disk is full: appending stopped, waiting for free space. */
  diskFull: { since: string; freeBytes: number; neededBytes: number } | null;
  heartbeats: number;
  /** LSN of the last heartbeat message written. */
  lastHeartbeatLsn: Lsn;
}
