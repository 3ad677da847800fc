import type { Logger } from 'pino';
import { isTributaryError } from '../core/errors.ts';
import { type ChunkCursor, SnapshotReader } from '../source/postgres/snapshot-reader.ts';
import { formatTableName } from '../source/postgres/table-name.ts';
import type { SnapshotJobState, SnapshotTracker } from './snapshot-tracker.ts';

export interface SnapshotWorkersOptions {
  readonly url: string;
  readonly tracker: SnapshotTracker;
  /** Rows per chunk (one SELECT between two watermarks). */
  readonly chunkRows: number;
  /** Chunks read and not yet in the capture's batch, across all tables: bounds memory. */
  readonly maxParallelChunks: number;
  readonly logger: Logger;
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

/**
 * Runs the snapshot jobs of a tracker: up to `maxParallelChunks` workers, each with its own
 * connection, one table at a time; a worker reads a table's next chunk while the capture is
 * still encoding the previous ones, within the shared chunk permits. A failed job is retried from
 * its last emitted chunk once its chunks in flight are settled; a missing table or an invalid
 * condition fails the job (reported in the status) without stopping the capture.
 */
export class SnapshotWorkers {
  private stopping = false;
  private readonly permits: Permits;
  private readonly readers: SnapshotReader[] = [];
  private running: Promise<void> | undefined;
  private onStop: () => void = () => undefined;
  private readonly stopped = new Promise<void>((resolve) => {
    this.onStop = resolve;
  });

  constructor(private readonly options: SnapshotWorkersOptions) {
    this.permits = new Permits(Math.max(1, options.maxParallelChunks));
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
    await Promise.all(this.readers.map((r) => r.close()));
    await this.running;
    await Promise.all(this.readers.map((r) => r.close()));
  }

  private async worker(): Promise<void> {
    const { tracker } = this.options;
    const reader = new SnapshotReader(this.options.url);
    this.readers.push(reader);
    try {
      while (!this.stopping) {
        const job = tracker.claim();
        if (!job) {
          await Promise.race([tracker.changed(), this.stopped]);
          continue;
        }
        await this.runJob(reader, job);
      }
    } finally {
      await reader.close();
    }
  }

  private async runJob(reader: SnapshotReader, job: SnapshotJobState): Promise<void> {
    const { tracker, logger } = this.options;
    const name = formatTableName({ schema: job.schema, table: job.table });
    for (let attempt = 0; !this.stopping; attempt++) {
      const state = tracker.committed(job.id) ?? job;
      try {
        await this.chunks(reader, state);
        if (!this.stopping) {
          const rows = tracker.committed(job.id)?.rows;
          logger.info({ table: name, kind: job.kind, rows }, 'snapshot of table done');
        }
        return;
      } catch (error) {
        if (this.stopping) break;
        await Promise.race([tracker.settled(job.id), this.stopped]);
        if (isTributaryError(error) && error.code.startsWith('SNAPSHOT_')) {
          logger.error({ table: name, err: error }, 'snapshot failed');
          tracker.fail(job.id, error.message);
          return;
        }
        const delay = Math.min(30_000, 500 * 2 ** attempt);
        logger.warn({ table: name, err: error, delayMs: delay }, 'snapshot chunk failed; retrying');
        await reader.close();
        await Promise.race([new Promise((resolve) => setTimeout(resolve, delay).unref()), this.stopped]);
      }
    }
    tracker.release(job.id);
  }

  private async chunks(reader: SnapshotReader, job: SnapshotJobState): Promise<void> {
    const { tracker, logger, chunkRows } = this.options;
    const name = { schema: job.schema, table: job.table };
    const table = await reader.describe(name);
    if (job.condition) await reader.checkCondition(table, job.condition);
    tracker.setTotal(job.id, job.condition ? null : Math.max(table.estimatedRows, job.rows));
    let cursor: ChunkCursor | null =
      job.cursor ?? (table.keyColumns.length > 0 ? { after: null } : { block: 0 });
    logger.info(
      { table: formatTableName(name), kind: job.kind, rows: job.rows, resumed: job.cursor !== null },
      job.cursor ? 'resuming snapshot from its last chunk' : 'snapshot started',
    );
    while (cursor && !this.stopping) {
      if (!(await this.permits.acquire())) return;
      const chunk = tracker.open(job.id, table);
      let next: ChunkCursor | null;
      try {
        await reader.watermark(chunk.low);
        const read = await reader.readChunk(table, cursor, job.condition, chunkRows);
        tracker.fill(chunk.id, read.rows, read.next);
        next = read.next;
        await reader.watermark(chunk.high);
      } catch (error) {
        tracker.discard(chunk.id);
        this.permits.release();
        throw error;
      }
      void chunk.emitted.then(() => this.permits.release());
      cursor = next;
    }
    await Promise.race([tracker.settled(job.id), this.stopped]);
  }
}
