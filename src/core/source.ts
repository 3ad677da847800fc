import type { SourceMessage } from './change-event.ts';
import type { Lsn } from './lsn.ts';

/**
 * Receives the stream in order, in batches. The source delivers no further batch until the
 * returned promise settles, so a slow handler slows the source instead of filling memory.
 * A rejected promise stops the source with that error.
 */
export type SourceHandler = (messages: readonly SourceMessage[]) => Promise<void> | void;

/**
 * A stream of committed transactions (begin, changes, commit) in commit order.
 *
 * - Delivery is at least once: after a reconnect or restart the source may deliver again a
 *   transaction that was already delivered, always from its `begin` (a transaction is never
 *   resumed in the middle). The handler de-duplicates with the transaction's `finalLsn`.
 * - The source tells the database it may discard WAL only up to the position passed to
 *   `acknowledge`; call it only with positions whose data is durable downstream.
 */
export interface Source {
  /** Streams until `stop()` or the signal aborts (resolves), or a fatal error (rejects). */
  start(handler: SourceHandler, signal?: AbortSignal): Promise<void>;
  /**
   * Everything up to `lsn` (a commit's end LSN, or a non-transactional message's LSN) is
   * durable downstream.
   */
  acknowledge(lsn: Lsn): void;
  /**
   * Ends the current stream with `error`, as a rejected handler does (the source then handles the
   * error as it would the handler's). For a failure found outside a handler call, e.g. an append
   * that failed while the stream was idle. No effect while no stream runs.
   */
  interrupt?(error: unknown): void;
  /** Idempotent; resolves once the connection is closed and the last acknowledgement sent. */
  stop(): Promise<void>;
}
