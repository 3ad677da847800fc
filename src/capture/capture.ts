import type { Logger } from 'pino';
import {
  HEARTBEAT_PREFIX,
  type LogicalMessage,
  type Op,
  type Relation,
  type SchemaMessage,
  type SourceMessage,
} from '../core/change-event.ts';
import type { Encoder, EventContext } from '../core/encoder.ts';
import type { EventLog } from '../core/event-log.ts';
import { formatLsn, type Lsn } from '../core/lsn.ts';
import type { AppendItem } from '../core/record.ts';
import type { Source } from '../core/source.ts';
import { copyRowBatch, copyRowTuples, snapshotMarker, toRowsContext } from '../encode/copy-row-batch.ts';
import type { EncoderOptions } from '../encode/index.ts';
import { WATERMARK_PREFIX } from '../source/postgres/snapshot-reader.ts';
import { type CapturePosition, decodePosition, encodePosition } from './capture-position.ts';
import type { EventTransform } from './event-filter.ts';
import { SchemaHistory } from './schema-history.ts';
import type { SnapshotTracker } from './snapshot-tracker.ts';

export interface CaptureOptions {
  readonly source: Source;
  readonly log: EventLog;
  readonly encoder: Encoder;
  /**
   * The options `encoder` was created with. Given, a snapshot chunk is stored as one row batch
   * rendered at read time by an encoder made from them (src/encode/copy-row-batch.ts); absent,
   * its rows are encoded at once like streamed changes.
   */
  readonly encoderOptions?: EncoderOptions;
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
  /** Snapshot chunks and backfill signals (watermark algorithm, see snapshot-tracker.ts). */
  readonly snapshots?: SnapshotTracker;
  /** Topic of the schema history (new table shapes, see schema-history.ts); unset: none kept. */
  readonly schemaHistoryTopic?: string;
  /** Told of every append that moved the durable position (for the latency metrics). */
  readonly observer?: CaptureObserver;
}

export interface CaptureObserver {
  /** Called once per append that became durable, with the source commit time (µs) of its last transaction. */
  durable(commitTimeUs: bigint, records: number): void;
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
  /**
   * Change events written, per relation (as received) and operation; plain counters so the hot
   * path stays cheap, read by the metrics at scrape time.
   */
  readonly eventsByTable = new Map<Relation, Partial<Record<Op, number>>>();
  private pending: AppendItem[] = [];
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
  /** The last transaction held nothing but snapshot watermarks without rows (see `handle`). */
  private onlyWatermarks = false;
  private history: SchemaHistory | undefined;
  /**
   * An append failed (e.g. a full disk): what was handed to the log after the last durable append
   * is lost, but `committedEnd` and the rest still count it as written. The stream restarts from
   * the last acknowledged position; before its first batch the capture goes back to the stored
   * position, as a restarted process does (see `resync`).
   */
  private appendFailed = false;
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
    await this.reloadPosition();
    await this.options.source.start((messages) => this.handle(messages), signal);
    await this.settle();
  }

  /**
   * Reads the stored position (and schema history) again. For a capture that just became the
   * leader of a shared log (capture-standby.ts): called once it holds the slot and has fenced the
   * former leader, before the first message is handled, so that whatever the former leader
   * appended until then is skipped. The stream may start earlier than that position: transactions
   * at or below it are skipped as after any restart.
   */
  async reloadPosition(): Promise<void> {
    const stored = await Capture.position(this.options.log, this.options.checkpointName);
    this.committedEnd = stored?.lsn ?? 0n;
    this.stats.durableLsn = this.committedEnd;
    this.dispatchedEnd = this.committedEnd;
    this.partial = stored?.tx ?? null;
    await this.loadSchemaHistory();
  }

  /**
   * After a failed append, before the restarted stream's first batch: back to the position stored
   * in the log, with nothing pending, exactly as at start-up. Without this the capture skipped, as
   * already written, every transaction of the lost appends (`committedEnd` was past them), and kept
   * rethrowing the failed append's error from `inFlight` (the disk-full loop of issue 14).
   */
  private async resync(): Promise<void> {
    this.inFlight = Promise.resolve();
    const stored = await Capture.position(this.options.log, this.options.checkpointName);
    // The tracker's chunks are not replayed by the stream: if the lost appends moved a snapshot
    // on, it goes back to the progress stored in the log and reads those chunks again (as a restart
    // would, which plans from that progress).
    this.options.snapshots?.restore(stored?.snapshot);
    this.committedEnd = stored?.lsn ?? 0n;
    this.dispatchedEnd = this.committedEnd;
    this.partial = stored?.tx ?? null;
    this.pending = [];
    this.pendingCommitted = 0;
    this.tx = undefined;
    this.skipping = false;
    this.onlyWatermarks = false;
    await this.loadSchemaHistory();
    this.appendFailed = false;
    this.options.logger.info(
      { lsn: formatLsn(this.committedEnd) },
      'resuming from the last durable position after a failed append',
    );
  }

  private async handle(messages: readonly SourceMessage[]): Promise<void> {
    if (this.appendFailed) await this.resync();
    for (const message of messages) {
      switch (message.kind) {
        case 'begin': {
          this.onlyWatermarks = true;
          if (this.tx) {
            // The stream restarted inside a transaction: what of it is not in the log yet comes again.
            this.pending.length = this.pendingCommitted;
            this.history?.truncate(this.pending.length);
            this.options.snapshots?.rollback();
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
          this.onlyWatermarks = false;
          const tx = this.tx;
          if (this.skipping || !tx) break;
          tx.events++;
          const tableOrder = (tx.perTable.get(message.event.relation.id) ?? 0) + 1;
          tx.perTable.set(message.event.relation.id, tableOrder);
          const snapshots = this.options.snapshots;
          if (snapshots) {
            // Signals take effect at the commit, so even a resumed transaction's count again.
            if (snapshots.signal(message.event)) break;
            snapshots.observe(message.event);
          }
          if (tx.events <= tx.skip) break;
          const event = this.options.filter ? this.options.filter.apply(message.event) : message.event;
          if (event === null) break;
          this.options.encoder.encode(event, this.context(tx, tableOrder), this.pending);
          this.stats.events++;
          this.count(message.event.relation, event.op);
          if (this.pending.length >= this.maxBatch) await this.flush();
          break;
        }
        case 'commit': {
          if (this.skipping || !this.tx) {
            this.skipping = false;
            break;
          }
          this.committedEnd = message.endLsn;
          this.options.snapshots?.commit();
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
        case 'schema':
          this.schema(message);
          break;
      }
    }
    // Group commit: write when a transaction has committed (there is something to acknowledge).
    // The rest of an open transaction waits for its commit or a full batch. A batch that ends with
    // a snapshot's low watermark and brought no record waits for the next one (one append saved
    // per chunk; the watermark is of no use after a restart).
    if (this.committedEnd > this.dispatchedEnd && !(this.onlyWatermarks && this.pending.length === 0))
      await this.flush();
  }

  /** Heartbeats (our own prefix) produce no record; a non-transactional one still moves the position. */
  private async message(message: LogicalMessage): Promise<void> {
    const heartbeat = message.prefix === HEARTBEAT_PREFIX;
    if (message.prefix === WATERMARK_PREFIX && message.transactional) {
      if (!this.skipping && this.tx) this.snapshotChunk(message, this.tx);
      return;
    }
    this.onlyWatermarks = false;
    if (message.transactional) {
      const tx = this.tx;
      if (heartbeat || this.skipping || !tx) return;
      tx.events++;
      const order = (tx.perTable.get(MESSAGES) ?? 0) + 1;
      tx.perTable.set(MESSAGES, order);
      if (tx.events <= tx.skip) return;
      // Dropped after counting, so that a resumed transaction skips the same number.
      if (this.options.filter?.keepMessage?.(message.prefix) === false) return;
      this.options.encoder.encodeMessage(message, this.context(tx, order), this.pending);
    } else {
      if (this.tx) {
        // The stream restarted inside a transaction (a non-transactional message is never sent
        // within one): what of it is not in the log yet comes again after its begin.
        this.pending.length = this.pendingCommitted;
        this.history?.truncate(this.pending.length);
        this.options.snapshots?.rollback();
        this.tx = undefined;
      }
      if (message.lsn <= this.committedEnd) return;
      if (!heartbeat && this.options.filter?.keepMessage?.(message.prefix) !== false) {
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

  private async loadSchemaHistory(): Promise<void> {
    const topic = this.options.schemaHistoryTopic;
    if (!topic) return;
    const { log, serverName, database } = this.options;
    this.history = await SchemaHistory.load(log, { topic, serverName, database });
  }

  /** A table shape goes to the schema history, in the same append as the changes after it. */
  private schema(message: SchemaMessage): void {
    const tx = this.tx;
    // A shape met in the part of a transaction already in the log was recorded then.
    if (!this.history || this.skipping || !tx || tx.events < tx.skip) return;
    if (this.options.filter?.keepTable?.(message.relation) === false) return;
    const context = { xid: tx.xid, commitTimeUs: tx.commitTimeUs, nowUs: this.clock() };
    this.history.observe(message, context, this.pending);
  }

  /**
   * At a high watermark, the chunk's rows that no streamed change touched become read events in
   * the watermark's transaction. They are not counted in `tx.events`: the watermark's
   * transaction holds nothing else and is never written in pieces (no flush before its commit).
   * When the filter leaves the table's read events as they are, the rows go to the log as one
   * row batch (rendered when read); otherwise each row is filtered and encoded now.
   */
  private snapshotChunk(message: LogicalMessage, tx: OpenTransaction): void {
    const chunk = this.options.snapshots?.watermark(message);
    if (!chunk) return;
    this.onlyWatermarks = false;
    const { rows, relation } = chunk;
    if (rows.count === 0) return;
    const { filter, encoder, encoderOptions } = this.options;
    const context = this.context(tx, 1);
    const probe = { op: 'r', relation, before: null, after: [], lsn: message.lsn } as const;
    if (encoderOptions && (!filter || filter.apply(probe) === probe)) {
      this.pending.push(
        copyRowBatch(
          {
            v: 2,
            encoder: encoderOptions,
            relation,
            lsn: message.lsn.toString(),
            context: toRowsContext(context),
            firstOrder: 1,
            snapshot: chunk.snapshot,
            lastIsFinal: chunk.lastIsFinal,
          },
          rows,
        ),
      );
      this.stats.events += rows.count;
      this.count(relation, 'r', rows.count);
      return;
    }
    copyRowTuples(rows).forEach((after, i) => {
      const read = { op: 'r', relation, before: null, after, lsn: message.lsn } as const;
      const event = filter ? filter.apply(read) : read;
      if (event === null) return;
      encoder.encode(
        event,
        {
          ...context,
          totalOrder: i + 1,
          dataCollectionOrder: i + 1,
          snapshot: snapshotMarker(chunk, i, rows.count),
        },
        this.pending,
      );
      this.stats.events++;
      this.count(relation, event.op);
    });
  }

  private count(relation: Relation, op: Op, n = 1): void {
    const counts = this.eventsByTable.get(relation);
    if (counts) counts[op] = (counts[op] ?? 0) + n;
    else this.eventsByTable.set(relation, { [op]: n });
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
      snapshot: this.options.snapshots?.progress(),
    };
    const records = this.pending;
    this.pending = [];
    this.history?.flushed();
    this.pendingCommitted = 0;
    // If the stream restarts before this transaction's commit, its first events are skipped.
    this.partial = position.tx;
    this.dispatchedEnd = position.lsn;
    const commitTimeUs = this.pendingCommitTimeUs;
    try {
      await this.inFlight;
    } catch (error) {
      this.appendFailed = true;
      throw error;
    }
    const append = this.options.log
      .append(records, { source: this.options.checkpointName, position: encodePosition(position) })
      .then(() => {
        const count = recordCount(records);
        this.stats.records += count;
        this.stats.appends++;
        if (position.lsn > this.stats.durableLsn) {
          this.stats.durableLsn = position.lsn;
          this.stats.lastCommitTimeUs = commitTimeUs;
          this.options.source.acknowledge(position.lsn);
          if (commitTimeUs > 0n) this.options.observer?.durable(commitTimeUs, count);
        }
      });
    this.inFlight = append;
    // A failure surfaces at the next flush or in `settle()`, never as an unhandled rejection; and
    // at once to the source, which ends the stream as if the handler had failed: an append failing
    // while the stream is idle (a full disk after the last change) must not wait for the next one.
    append.catch((error: unknown) => {
      const source = this.options.source;
      if (!source.interrupt) return;
      // No further batch of this stream reaches `handle`: the next one starts a new stream.
      this.appendFailed = true;
      source.interrupt(error);
    });
  }

  /** Resolves when every append handed to the log has committed (rejects if one failed). */
  async settle(): Promise<void> {
    await this.inFlight;
  }
}

/** Records in a list of log items (a row batch holds several). */
function recordCount(items: readonly AppendItem[]): number {
  let count = 0;
  for (const item of items) count += 'kind' in item ? item.count : 1;
  return count;
}
