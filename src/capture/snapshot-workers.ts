import type { Logger } from 'pino';
import { isTributaryError } from '../core/errors.ts';
import { type ChunkCursor, nextBlockRange, SnapshotReader } from '../source/postgres/snapshot-reader.ts';
import { formatTableName } from '../source/postgres/table-name.ts';
import { type ChunkReader, ThreadedSnapshotReader } from './snapshot-reader-thread.ts';
import { type SnapshotJobState, SnapshotRolledBack, type SnapshotTracker } from './snapshot-tracker.ts';

export interface SnapshotWorkersOptions {
  readonly url: string;
  readonly tracker: SnapshotTracker;
  /** Rows per chunk (one SELECT between two watermarks). */
  readonly chunkRows: number;
  /** Chunks read and not yet in the capture's batch, across all tables: bounds memory. */
  readonly maxParallelChunks: number;
  /** How an initial snapshot chunks a keyed table: block ranges (the default) or keyset. */
  readonly initialChunks?: 'blocks' | 'key';
  readonly logger: Logger;
  /** Read on a thread of each worker's own (the default), or on the capture's thread. */
  readonly threads?: boolean;
}

/** Counting semaphore whose waiters are released (with `false`) by `close()`. */
class Permits {
  private waiters: ((ok: boolean) => void)[] = [];
  private closed = false;
  constructor(private free: number) {}
  acquire(): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    if (this.free > 0) {
      this.free--;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }
  /** A permit if one is free now, without waiting. */
  tryAcquire(): boolean {
    if (this.closed || this.free === 0) return false;
    this.free--;
    return true;
  }
  release(): void {
    const next = this.waiters.shift();
    if (next) next(true);
    else this.free++;
  }
  close(): void {
    this.closed = true;
    for (const waiter of this.waiters.splice(0)) waiter(false);
  }
}

/** Up to `size` readers (each its own connection, on its own thread), lent one chunk at a time. */
class ReaderPool {
  private readonly idle: ChunkReader[] = [];
  private readonly all: ChunkReader[] = [];
  private waiters: ((reader: ChunkReader | null) => void)[] = [];
  private closed = false;

  constructor(
    readonly size: number,
    private readonly make: () => ChunkReader,
  ) {}

  acquire(): Promise<ChunkReader | null> {
    if (this.closed) return Promise.resolve(null);
    const reader = this.idle.pop();
    if (reader) return Promise.resolve(reader);
    if (this.all.length === 0) {
      // All made at the first loan, their threads started at once (loading takes a while): a
      // capture with nothing to snapshot starts no thread.
      for (let i = 0; i < this.size; i++) {
        const made = this.make();
        made.prepare?.();
        this.all.push(made);
        if (i > 0) this.idle.push(made);
      }
      return Promise.resolve(this.all[0]!);
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  release(reader: ChunkReader): void {
    const next = this.waiters.shift();
    if (next) next(reader);
    else this.idle.push(reader);
  }

  /** Closes every connection (the readers reconnect when used again). */
  async closeConnections(): Promise<void> {
    await Promise.all(this.all.map((r) => r.close()));
  }

  /** Refuses new loans and ends the readers' threads. */
  async end(): Promise<void> {
    this.closed = true;
    for (const waiter of this.waiters.splice(0)) waiter(null);
    await Promise.all(this.all.map((r) => (r instanceof ThreadedSnapshotReader ? r.terminate() : r.close())));
  }
}

/**
 * Runs the snapshot jobs of a tracker: up to `maxParallelChunks` jobs (tables) at once, and up to
 * twice `maxParallelChunks` chunks in flight across them, each read on one of `maxParallelChunks`
 * readers (connection and thread) of a shared pool, its high watermark written on a connection
 * of its own. Within a table, chunks are read in parallel: block ranges (an initial snapshot, or
 * a table without a key) are known ahead; for keyset chunks (backfills), the next chunk's start is
 * found first with an index scan (`boundary`). High
 * watermarks are written in chunk order, so the chunks reach the log in order and the job's
 * cursor (its last chunk in the log) is all a restart needs. A failed job is retried from that
 * cursor once its chunks in flight are settled; a missing table or an invalid condition fails the
 * job (reported in the status) without stopping the capture.
 */
export class SnapshotWorkers {
  private stopping = false;
  private readonly permits: Permits;
  private readonly pool: ReaderPool;
  /**
   * The high watermarks' connection (on this thread): a reader is free for the next chunk as soon
   * as its read is done, rather than after the watermarks of the chunks before it.
   */
  private readonly marks: SnapshotReader;
  private running: Promise<void> | undefined;
  private onStop: () => void = () => undefined;
  private readonly stopped = new Promise<void>((resolve) => {
    this.onStop = resolve;
  });

  constructor(private readonly options: SnapshotWorkersOptions) {
    const parallel = Math.max(1, options.maxParallelChunks);
    // Two chunks per reader: one being read, one waiting for its high watermark and the log.
    this.permits = new Permits(parallel * 2);
    this.marks = new SnapshotReader(options.url);
    this.pool = new ReaderPool(parallel, () =>
      options.threads === false ? new SnapshotReader(options.url) : new ThreadedSnapshotReader(options.url),
    );
  }

  start(): void {
    if (this.running) return;
    const count = Math.max(1, this.options.maxParallelChunks);
    this.running = Promise.all(Array.from({ length: count }, () => this.worker())).then(() => undefined);
  }

  /** Idempotent; unfinished jobs stay in the position and continue at the next start. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.onStop();
    this.permits.close();
    this.options.tracker.wake();
    await Promise.all([this.pool.closeConnections(), this.marks.close()]);
    await this.running;
    await Promise.all([this.pool.end(), this.marks.close()]);
  }

  private async worker(): Promise<void> {
    const { tracker } = this.options;
    while (!this.stopping) {
      const job = tracker.claim();
      if (!job) {
        await Promise.race([tracker.changed(), this.stopped]);
        continue;
      }
      await this.runJob(job);
    }
  }

  private async runJob(job: SnapshotJobState): Promise<void> {
    const { tracker, logger } = this.options;
    const name = formatTableName({ schema: job.schema, table: job.table });
    for (let attempt = 0; !this.stopping; attempt++) {
      const state = tracker.committed(job.id) ?? job;
      const epoch = tracker.epoch(job.id);
      try {
        await this.chunks(state, epoch);
        if (!this.stopping) {
          const rows = tracker.committed(job.id)?.rows;
          logger.info({ table: name, kind: job.kind, rows }, 'snapshot of table done');
        }
        return;
      } catch (error) {
        if (this.stopping) break;
        await Promise.race([tracker.settled(job.id), this.stopped]);
        if (error instanceof SnapshotRolledBack) {
          // Appends were lost (full disk): again from the progress stored in the log, at once.
          logger.info({ table: name }, 'snapshot going back to the progress stored in the log');
          attempt = -1;
          continue;
        }
        if (isTributaryError(error) && error.code.startsWith('SNAPSHOT_')) {
          logger.error({ table: name, err: error }, 'snapshot failed');
          tracker.fail(job.id, error.message);
          return;
        }
        const delay = Math.min(30_000, 500 * 2 ** attempt);
        logger.warn({ table: name, err: error, delayMs: delay }, 'snapshot chunk failed; retrying');
        await Promise.race([new Promise((resolve) => setTimeout(resolve, delay).unref()), this.stopped]);
      }
    }
    tracker.release(job.id);
  }

  /** Runs `work` on a reader of the pool; a reader whose call failed has its connection closed. */
  private async withReader<T>(work: (reader: ChunkReader) => Promise<T>): Promise<T> {
    const reader = await this.pool.acquire();
    if (!reader) throw new Error('the snapshot is stopping');
    try {
      return await work(reader);
    } catch (error) {
      await reader.close();
      throw error;
    } finally {
      this.pool.release(reader);
    }
  }

  private async chunks(job: SnapshotJobState, epoch: number): Promise<void> {
    const { tracker, logger, chunkRows } = this.options;
    const name = { schema: job.schema, table: job.table };
    const table = await this.withReader(async (reader) => {
      const described = await reader.describe(name);
      if (job.condition) await reader.checkCondition(described, job.condition);
      return described;
    });
    tracker.setTotal(job.id, job.condition ? null : Math.max(table.estimatedRows, job.rows));
    // An initial snapshot reads every row once, in any order: block ranges cost PostgreSQL a TID
    // range scan, against an index scan plus a search for each chunk's end with keyset chunks.
    // The key still drops the rows the stream changed while a chunk was read.
    const byKey =
      table.keyColumns.length > 0 &&
      (job.kind === 'backfill' || job.condition !== null || this.options.initialChunks === 'key');
    const cursor: ChunkCursor | null = job.cursor ?? (byKey ? { after: null } : { block: 0 });
    logger.info(
      { table: formatTableName(name), kind: job.kind, rows: job.rows, resumed: job.cursor !== null },
      job.cursor ? 'resuming snapshot from its last chunk' : 'snapshot started',
    );
    // With one reader, a keyed chunk is read unbounded (no boundary scan): nothing would run beside it.
    const parallel = this.pool.size > 1;
    /** Settles with where the next chunk starts (null: the table is done) as soon as it is known. */
    let nextStart: Promise<ChunkCursor | null> = Promise.resolve(cursor);
    /** Settles true once the previous chunk's high watermark is written, false if it never will be. */
    let previousHigh: Promise<boolean> = Promise.resolve(true);
    const inFlight: Promise<boolean>[] = [];
    let failure: { error: unknown } | undefined;
    const fail = (error: unknown) => {
      failure ??= { error };
    };
    try {
      for (;;) {
        const start = await nextStart;
        if (start === null || this.stopping || failure) break;
        if (!(await this.permits.acquire())) break;
        const reader = await this.pool.acquire();
        if (!reader) {
          this.permits.release();
          break;
        }
        let chunk: ReturnType<SnapshotTracker['open']>;
        try {
          chunk = tracker.open(job.id, table, epoch);
        } catch (error) {
          this.permits.release();
          this.pool.release(reader);
          throw error;
        }
        // Emitted (its rows in the capture's batch) or discarded: either way the permit is free.
        void chunk.emitted.then(() => this.permits.release());
        // The chunk's end, then its low watermark and read, in this order on the reader.
        const upTo: Promise<readonly string[] | null> =
          parallel && 'after' in start
            ? reader.boundary(table, start, job.condition, chunkRows)
            : Promise.resolve(null);
        const low = reader.watermark(chunk.low, false);
        const read = upTo.then((bound) => reader.readChunk(table, start, job.condition, chunkRows, bound));
        low.catch(() => undefined);
        read.catch(() => undefined);
        // Back to the pool once its statements are done; closed if one failed.
        const lent = Promise.allSettled([low, read]).then(async ([l, r]) => {
          if (l.status === 'rejected' || r.status === 'rejected') await reader.close();
          this.pool.release(reader);
        });
        nextStart = upTo.then(async (bound): Promise<ChunkCursor | null> => {
          if (bound) return { after: bound };
          if ('block' in start && parallel) return nextBlockRange(table, start, chunkRows);
          return (await read).next;
        });
        nextStart.catch(() => undefined);
        const after = previousHigh;
        const high = (async (): Promise<boolean> => {
          try {
            const [l, r] = await Promise.allSettled([low, read]);
            await lent;
            if (l.status === 'rejected') throw l.reason;
            if (r.status === 'rejected') throw r.reason;
            tracker.fill(chunk.id, r.value.rows, r.value.next);
            // In chunk order: a chunk whose predecessor is not in the log never is either.
            if (!(await after) || this.stopping) {
              tracker.discard(chunk.id);
              return false;
            }
            await this.marks.watermark(chunk.high).catch(async (error: unknown) => {
              await this.marks.close();
              throw error;
            });
            return true;
          } catch (error) {
            // Its high watermark may be missing: forgotten (a retry resumes from the cursor).
            tracker.discard(chunk.id);
            fail(error);
            return false;
          }
        })();
        previousHigh = high;
        inFlight.push(high);
        if (inFlight.length > 64) inFlight.splice(0, inFlight.length - 64);
      }
    } catch (error) {
      fail(error);
    }
    await Promise.all(inFlight);
    if (failure) throw failure.error;
    await Promise.race([tracker.settled(job.id), this.stopped]);
  }
}
