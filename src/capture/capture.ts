import type { Logger } from 'pino';
import { HEARTBEAT_PREFIX, type LogicalMessage, type SourceMessage } from '../core/change-event.ts';
import type { Encoder, EventContext } from '../core/encoder.ts';
import { LogError } from '../core/errors.ts';
import type { EventLog } from '../core/event-log.ts';
import { formatLsn, type Lsn, parseLsn } from '../core/lsn.ts';
import type { AppendRecord } from '../core/record.ts';
import type { Source } from '../core/source.ts';
import type { EventTransform } from './event-filter.ts';

/**
 * What the capture stores with every append. `lsn` is the end of the last transaction whose
 * records are all in the log, or the LSN of the last non-transactional message in the log
 * (the end of its WAL record), whichever came later; `tx`, when set, is a transaction only partly in the log: its
 * first `events` change events are stored (large transactions are written in pieces so that
 * memory stays bounded).
 */
export interface CapturePosition {
  readonly lsn: Lsn;
  readonly tx: { readonly finalLsn: Lsn; readonly events: number } | null;
}

export function encodePosition(position: CapturePosition): string {
  return JSON.stringify({
    lsn: formatLsn(position.lsn),
    tx: position.tx ? { finalLsn: formatLsn(position.tx.finalLsn), events: position.tx.events } : null,
  });
}

export function decodePosition(text: string): CapturePosition {
  try {
    const raw = JSON.parse(text) as { lsn: string; tx: { finalLsn: string; events: number } | null };
    return {
      lsn: parseLsn(raw.lsn),
      tx: raw.tx ? { finalLsn: parseLsn(raw.tx.finalLsn), events: raw.tx.events } : null,
    };
  } catch (cause) {
    throw new LogError('LOG_CHECKPOINT_INVALID', `the stored capture position is unreadable: ${text}`, {
      cause,
    });
  }
}

export interface CaptureOptions {
  readonly source: Source;
  readonly log: EventLog;
  readonly encoder: Encoder;
  /** Checkpoint key in the log: one per slot. */
  readonly checkpointName: string;
  readonly serverName: string;
  readonly database: string;
  /** Records buffered before writing part of a transaction. */
  readonly maxBatchRecords?: number;
  /**
   * Filters and masks events before encoding. Events are counted before it runs, so the stored
   * count of an interrupted transaction stays aligned with the stream whatever it drops.
   */
  readonly filter?: EventTransform;
  readonly logger: Logger;
  /** Microseconds since the Unix epoch. */
  readonly clock?: () => bigint;
}

export interface CaptureStats {
  transactions: number;
  events: number;
  records: number;
  appends: number;
  /** Commit time (µs) of the last transaction made durable. */
  lastCommitTimeUs: bigint;
  durableLsn: Lsn;
}

/** The `perTable` entry counting a transaction's logical messages (relation ids are OIDs, never 0). */
const MESSAGES = 0;

interface OpenTransaction {
  readonly xid: number;
  readonly finalLsn: Lsn;
  readonly commitTimeUs: bigint;
  /**
   * Change events and transactional messages seen so far (including those skipped because
   * already in the log).
   */
  events: number;
  readonly skip: number;
  readonly perTable: Map<number, number>;
}

/**
 * Moves transactions from a source into the log, exactly once: records and the position are
 * appended atomically, the source is acknowledged only after the append, and on restart the
 * stored position tells which transactions (and which part of an interrupted one) to skip.
 *
 * Logical messages: a transactional one is counted with its transaction's change events, so a
 * resumed transaction skips it like them. A non-transactional one stands alone: it is written as
 * if it were a transaction ending at the message's LSN (PostgreSQL reports the end of the
 * message's WAL record, as a commit's end LSN), which becomes the stored position and is then
 * confirmed to the slot; a re-delivered message at or below the stored position is skipped.
 */
export class Capture {
  readonly stats: CaptureStats = {
    transactions: 0,
    events: 0,
    records: 0,
    appends: 0,
    lastCommitTimeUs: 0n,
    durableLsn: 0n,
  };
  private pending: AppendRecord[] = [];
  private tx: OpenTransaction | undefined;
  private skipping = false;
  /** End LSN of the last transaction fully handed to `pending` or the log. */
  private committedEnd: Lsn = 0n;
  private pendingCommitTimeUs = 0n;
  /** How many of `pending` belong to committed transactions (the rest: the open one's). */
  private pendingCommitted = 0;
  /** Position of the last append handed to the log (`stats.durableLsn` once it has committed). */
  private dispatchedEnd: Lsn = 0n;
  private inFlight: Promise<void> = Promise.resolve();
  private partial: CapturePosition['tx'] = null;
  private readonly clock: () => bigint;
  private readonly maxBatch: number;

  constructor(private readonly options: CaptureOptions) {
    this.clock = options.clock ?? (() => BigInt(Date.now()) * 1000n);
    this.maxBatch = options.maxBatchRecords ?? 500;
  }

  /** Reads the stored position; the source must be created to start from its `lsn`. */
  static async position(log: EventLog, checkpointName: string): Promise<CapturePosition | null> {
    const checkpoint = await log.checkpoint(checkpointName);
    return checkpoint ? decodePosition(checkpoint.position) : null;
  }

  /** Runs until the source stops. */
  async run(signal?: AbortSignal): Promise<void> {
    const stored = await Capture.position(this.options.log, this.options.checkpointName);
    this.committedEnd = stored?.lsn ?? 0n;
    this.stats.durableLsn = this.committedEnd;
    this.dispatchedEnd = this.committedEnd;
    this.partial = stored?.tx ?? null;
    await this.options.source.start((messages) => this.handle(messages), signal);
    await this.settle();
  }

  private async handle(messages: readonly SourceMessage[]): Promise<void> {
    for (const message of messages) {
      switch (message.kind) {
        case 'begin': {
          if (this.tx) {
            // The stream restarted inside a transaction: what of it is not in the log yet comes again.
            this.pending.length = this.pendingCommitted;
            this.tx = undefined;
          }
          // A transaction that ends at or before what is stored was delivered again: skip it.
          this.skipping = message.finalLsn < this.committedEnd;
          if (this.skipping) break;
          const resumed =
            this.partial && this.partial.finalLsn === message.finalLsn ? this.partial.events : 0;
          this.tx = {
            xid: message.xid,
            finalLsn: message.finalLsn,
            commitTimeUs: message.commitTimeUs,
            events: 0,
            skip: resumed,
            perTable: new Map(),
          };
          break;
        }
        case 'change': {
          const tx = this.tx;
          if (this.skipping || !tx) break;
          tx.events++;
          const tableOrder = (tx.perTable.get(message.event.relation.id) ?? 0) + 1;
          tx.perTable.set(message.event.relation.id, tableOrder);
          if (tx.events <= tx.skip) break;
          const event = this.options.filter ? this.options.filter.apply(message.event) : message.event;
          if (event === null) break;
          this.options.encoder.encode(event, this.context(tx, tableOrder), this.pending);
          this.stats.events++;
          if (this.pending.length >= this.maxBatch) await this.flush();
          break;
        }
        case 'commit': {
          if (this.skipping || !this.tx) {
            this.skipping = false;
            break;
          }
          this.committedEnd = message.endLsn;
          this.pendingCommitted = this.pending.length;
          this.pendingCommitTimeUs = message.commitTimeUs;
          this.tx = undefined;
          this.partial = null;
          this.stats.transactions++;
          break;
        }
        case 'message':
          await this.message(message);
          break;
      }
    }
    // Group commit: write when a transaction has committed (there is something to acknowledge).
    // The rest of an open transaction waits for its commit or a full batch.
    if (this.committedEnd > this.dispatchedEnd) await this.flush();
  }

  /** Heartbeats (our own prefix) produce no record; a non-transactional one still moves the position. */
  private async message(message: LogicalMessage): Promise<void> {
    const heartbeat = message.prefix === HEARTBEAT_PREFIX;
    if (message.transactional) {
      const tx = this.tx;
      if (heartbeat || this.skipping || !tx) return;
      tx.events++;
      const order = (tx.perTable.get(MESSAGES) ?? 0) + 1;
      tx.perTable.set(MESSAGES, order);
      if (tx.events <= tx.skip) return;
      this.options.encoder.encodeMessage(message, this.context(tx, order), this.pending);
    } else {
      if (this.tx) {
        // The stream restarted inside a transaction (a non-transactional message is never sent
        // within one): what of it is not in the log yet comes again after its begin.
        this.pending.length = this.pendingCommitted;
        this.tx = undefined;
      }
      if (message.lsn <= this.committedEnd) return;
      if (!heartbeat) {
        this.options.encoder.encodeMessage(
          message,
          {
            serverName: this.options.serverName,
            database: this.options.database,
            lastCommittedLsn: this.committedEnd,
            nowUs: this.clock(),
          },
          this.pending,
        );
      }
      this.committedEnd = message.lsn;
      this.pendingCommitted = this.pending.length;
      if (heartbeat) return;
    }
    this.stats.events++;
    if (this.pending.length >= this.maxBatch) await this.flush();
  }

  private context(tx: OpenTransaction, dataCollectionOrder: number): EventContext {
    return {
      serverName: this.options.serverName,
      database: this.options.database,
      xid: tx.xid,
      commitLsn: tx.finalLsn,
      lastCommittedLsn: this.committedEnd,
      commitTimeUs: tx.commitTimeUs,
      totalOrder: tx.events,
      dataCollectionOrder,
      snapshot: 'false',
      nowUs: this.clock(),
    };
  }

  /**
   * Hands the pending records to the log with the position they reach. At most one append is
   * being written while the next batch is read and encoded (bounded memory, overlap with a
   * threaded log); the source is acknowledged only when an append has committed.
   */
  private async flush(): Promise<void> {
    const tx = this.tx;
    const position: CapturePosition = {
      lsn: this.committedEnd,
      tx: tx ? { finalLsn: tx.finalLsn, events: Math.max(tx.events, tx.skip) } : null,
    };
    const records = this.pending;
    this.pending = [];
    this.pendingCommitted = 0;
    // If the stream restarts before this transaction's commit, its first events are skipped.
    this.partial = position.tx;
    this.dispatchedEnd = position.lsn;
    const commitTimeUs = this.pendingCommitTimeUs;
    await this.inFlight;
    const append = this.options.log
      .append(records, { source: this.options.checkpointName, position: encodePosition(position) })
      .then(() => {
        this.stats.records += records.length;
        this.stats.appends++;
        if (position.lsn > this.stats.durableLsn) {
          this.stats.durableLsn = position.lsn;
          this.stats.lastCommitTimeUs = commitTimeUs;
          this.options.source.acknowledge(position.lsn);
        }
      });
    this.inFlight = append;
    // A failure surfaces at the next flush or in `settle()`; never as an unhandled rejection.
    append.catch(() => undefined);
  }

  /** Resolves when every append handed to the log has committed (rejects if one failed). */
  async settle(): Promise<void> {
    await this.inFlight;
  }
}
