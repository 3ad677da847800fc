import { statSync } from 'node:fs';
import type Database from 'better-sqlite3';

/** Default bound of the log's write-ahead log: four automatic checkpoints' worth of 16 KiB pages. */
export const DEFAULT_WAL_LIMIT_BYTES = 64 * 1024 * 1024;
/** How long the writer may wait for readers to leave the write-ahead log, per attempt. */
const RESTART_WAIT_MS = 50;
/** The WAL may grow to this many times the bound during a burst before the writer waits for readers. */
export const DEFAULT_CEILING_FACTOR = 8;
/** No append for this long: the writer is idle, and the checkpoint runs. */
const IDLE_MS = 25;
/** The longest wait between idle attempts that readers keep busy. */
const IDLE_MAX_MS = 1_000;

export interface WalBoundStats {
  /** Checkpoints that reset the write-ahead log because it had passed the bound. */
  readonly restarts: number;
  /** Such checkpoints that a reader kept from finishing within the wait. */
  readonly busy: number;
  /** Checkpoints that reset it while the writer was idle (included in `restarts`). */
  readonly idle: number;
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
 * The cure is a RESTART checkpoint: it waits (SQLite's busy handler, at most RESTART_WAIT_MS) until
 * the readers that hold older snapshots have finished their read, copies the WAL into the database
 * and leaves the WAL to be written from its start; `journal_size_limit` then trims the file back to
 * the bound at the next commit, so its size tells whether the WAL has passed the bound again (one
 * `stat` per append). Readers are never blocked, but the writer is, for the wait and the copy:
 * 50-115 ms each, 0.5-1.25 s of a 4-5 s burst when run after every append that passed the bound.
 *
 * So it runs when the writer is idle: an append that leaves the WAL past the bound (re)arms a timer,
 * and the checkpoint runs once no append came for IDLE_MS (retried later while readers keep it
 * busy). A burst that never pauses lets the WAL grow to the ceiling (`ceilingFactor` × the bound),
 * and from there the writer checkpoints after its appends; an attempt that readers keep busy is
 * repeated only once the WAL grew by another quarter of the bound, so the writer never waits on
 * every append.
 */
export class WalBound {
  readonly #db: Database.Database;
  readonly #walFile: string;
  readonly #limit: number;
  readonly #ceiling: number;
  readonly #busyTimeoutMs: number;
  /** The size above which the writer checkpoints right after an append. */
  #threshold: number;
  #idleTimer: NodeJS.Timeout | undefined;
  /** Wait before the next idle attempt, doubled while readers keep the checkpoint busy. */
  #idleDelay = IDLE_MS;
  #closed = false;
  #restarts = 0;
  #busy = 0;
  #idleRestarts = 0;

  constructor(
    db: Database.Database,
    file: string,
    limitBytes: number,
    busyTimeoutMs: number,
    ceilingFactor = DEFAULT_CEILING_FACTOR,
  ) {
    this.#db = db;
    this.#walFile = `${file}-wal`;
    this.#limit = limitBytes;
    this.#ceiling = limitBytes * ceilingFactor;
    this.#threshold = this.#ceiling;
    this.#busyTimeoutMs = busyTimeoutMs;
    db.pragma(`journal_size_limit = ${limitBytes}`);
  }

  get stats(): WalBoundStats {
    return { restarts: this.#restarts, busy: this.#busy, idle: this.#idleRestarts };
  }

  /** Call after each write transaction has committed. */
  afterWrite(): void {
    const size = this.#size();
    if (size <= this.#limit) {
      this.#threshold = this.#ceiling;
      this.#disarm();
      return;
    }
    this.#arm(IDLE_MS);
    if (size <= this.#threshold) return;
    this.#threshold = this.#restart() ? this.#ceiling : size + this.#limit / 4;
  }

  /** Stops the idle checkpoint; call before closing the database. */
  close(): void {
    this.#closed = true;
    this.#disarm();
  }

  #arm(delay: number): void {
    clearTimeout(this.#idleTimer);
    this.#idleDelay = delay;
    this.#idleTimer = setTimeout(() => this.#onIdle(), delay);
    this.#idleTimer.unref();
  }

  #disarm(): void {
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
  }

  #onIdle(): void {
    this.#idleTimer = undefined;
    if (this.#closed || this.#size() <= this.#limit) return;
    let done: boolean;
    try {
      done = this.#restart();
    } catch {
      done = false; // e.g. a disk error: the next append reports it if it persists
    }
    if (done) {
      this.#idleRestarts++;
      // The file shrinks at the next commit (journal_size_limit); an idle writer truncates it now.
      this.#truncateIfIdle();
    } else this.#arm(Math.min(IDLE_MAX_MS, this.#idleDelay * 2));
  }

  /** With the WAL reset and nothing written since, TRUNCATE gives the disk back at once. */
  #truncateIfIdle(): void {
    try {
      this.#db.pragma('busy_timeout = 0');
      this.#db.pragma('wal_checkpoint(TRUNCATE)');
    } catch {
      // a reader arrived meanwhile: the next commit trims the file instead
    } finally {
      this.#db.pragma(`busy_timeout = ${this.#busyTimeoutMs}`);
    }
  }

  /** One RESTART checkpoint; false when readers kept it from finishing within the wait. */
  #restart(): boolean {
    this.#restarts++;
    this.#db.pragma(`busy_timeout = ${RESTART_WAIT_MS}`);
    let busy: boolean;
    try {
      const [result] = this.#db.pragma('wal_checkpoint(RESTART)') as { busy: number }[];
      busy = result?.busy !== 0;
    } finally {
      this.#db.pragma(`busy_timeout = ${this.#busyTimeoutMs}`);
    }
    if (busy) this.#busy++;
    return !busy;
  }

  #size(): number {
    return statSync(this.#walFile, { throwIfNoEntry: false })?.size ?? 0;
  }
}
