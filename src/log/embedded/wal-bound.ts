import { statSync } from 'node:fs';
import type Database from 'better-sqlite3';

/** Default bound of the log's write-ahead log: four automatic checkpoints' worth of 16 KiB pages. */
export const DEFAULT_WAL_LIMIT_BYTES = 64 * 1024 * 1024;
/** How long the writer may wait for readers to leave the write-ahead log, per attempt. */
const RESTART_WAIT_MS = 50;

export interface WalBoundStats {
  /** Checkpoints that reset the write-ahead log because it had passed the bound. */
  readonly restarts: number;
  /** Such checkpoints that a reader kept from finishing within the wait. */
  readonly busy: number;
}

/**
 * Keeps the writer's write-ahead log (`log.sqlite-wal`) near `limitBytes` while other processes
 * read the log all the time, as consumer replicas do.
 *
 * SQLite's automatic checkpoint (PASSIVE, inside the commit that passes 1,000 pages) copies the
 * WAL's pages into the database only up to the oldest snapshot a reader still holds, and the WAL
 * is written from its start again only when no reader uses it at the start of a write. Replicas
 * read every few milliseconds at the lowest CPU priority (SCHED_IDLE: they may be preempted in the
 * middle of a read for as long as the capture keeps the CPUs busy), so one of them nearly always
 * holds an older snapshot: the WAL never restarted and grew by the whole burst (486-883 MB for a
 * million changes with five replicas reading: bench/README.md), and with it the disk it takes.
 *
 * So after a write transaction, once the file has passed the bound, the writer runs a RESTART
 * checkpoint: it waits (SQLite's busy handler, at most RESTART_WAIT_MS) until the readers that hold
 * older snapshots have finished their read, which they do as soon as the writer sleeps, copies the
 * WAL into the database and leaves the WAL to be written from its start. `journal_size_limit` then
 * trims the file back to the bound at the next commit, so its size tells whether the WAL has passed
 * the bound again: one `stat` per append. Readers are never blocked. A reader holding a snapshot for
 * longer (a long read transaction) makes the attempt give up; the next one comes after the WAL grew
 * by another quarter of the bound, so the writer never waits on every append.
 */
export class WalBound {
  readonly #db: Database.Database;
  readonly #walFile: string;
  readonly #limit: number;
  readonly #busyTimeoutMs: number;
  /** The size above which the next checkpoint is attempted. */
  #threshold: number;
  #restarts = 0;
  #busy = 0;

  constructor(db: Database.Database, file: string, limitBytes: number, busyTimeoutMs: number) {
    this.#db = db;
    this.#walFile = `${file}-wal`;
    this.#limit = limitBytes;
    this.#threshold = limitBytes;
    this.#busyTimeoutMs = busyTimeoutMs;
    db.pragma(`journal_size_limit = ${limitBytes}`);
  }

  get stats(): WalBoundStats {
    return { restarts: this.#restarts, busy: this.#busy };
  }

  /** Call after each write transaction has committed. */
  afterWrite(): void {
    const size = statSync(this.#walFile, { throwIfNoEntry: false })?.size ?? 0;
    if (size <= this.#threshold) {
      if (size <= this.#limit) this.#threshold = this.#limit;
      return;
    }
    this.#restarts++;
    this.#db.pragma(`busy_timeout = ${RESTART_WAIT_MS}`);
    let busy: boolean;
    try {
      const [result] = this.#db.pragma('wal_checkpoint(RESTART)') as { busy: number }[];
      busy = result?.busy !== 0;
    } finally {
      this.#db.pragma(`busy_timeout = ${this.#busyTimeoutMs}`);
    }
    if (busy) {
      this.#busy++;
      this.#threshold = size + this.#limit / 4;
    } else {
      this.#threshold = this.#limit;
    }
  }
}
