import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { TributaryError } from '../core/errors.ts';

/**
 * Desired state and status of the consumers, shared between the running supervisor and the CLI
 * (`tributary consumers scale|pause|resume|restart` from another shell), in the tables
 * `supervisor_control`, `supervisor_status`, `supervisor_failures` and `supervisor_alerts` of `<dataDir>/consumers.db`
 * (SQLite, WAL: any number of processes read and write; the worker keeps its offsets and dead
 * letters in other tables of the same file).
 *
 * - The CLI writes desired state: `replicas` (NULL = the consumer's own `replicas` setting, with
 *   autoscaling when it is a range), `paused`, and `restart_generation` (bumped by `restart`).
 * - The supervisor reads it every `consumers.reconcileMs` and converges; it writes one status row
 *   per consumer (JSON) each time, appends alert events (crash loop, ...), and keeps why a
 *   consumer is halted on dead letters (with its last error) until it is resumed.
 * So a command takes effect within a reconcile interval, and survives a restart of the supervisor.
 */
export interface ConsumerControl {
  readonly name: string;
  /** Fixed replica count set by `consumers scale`; `null` = from the definition (autoscale on a range). */
  readonly replicas: number | null;
  readonly paused: boolean;
  readonly restartGeneration: number;
}

/**
 * The one vocabulary of consumer states, the same in `tributary consumers`, the API and the
 * dashboard. `degraded`: fewer ready replicas than desired; `failing`: the dead-letter threshold
 * was reached (paused until `consumers resume`, or going on with `failure.action: 'continue'`);
 * `crash-loop`: restarted too often (crash-loop detection), `failed`: stored offsets beyond the
 * log; neither is restarted until the code changes or `consumers restart`.
 */
export type ConsumerRunState =
  | 'starting'
  | 'running'
  | 'degraded'
  | 'paused'
  | 'failing'
  | 'crash-loop'
  | 'failed'
  | 'stopped';

/** Why a consumer is `failing` (or `failed` on offsets), with what to do in `message`. */
export interface ConsumerFailure {
  readonly reason: 'dead_letters' | 'offset_out_of_range' | 'target_stopped';
  readonly message: string;
  readonly at: number;
  /** Nothing is handled until resumed (dead letters) or restarted (offsets). */
  readonly halted: boolean;
}

export interface ConsumerStatus {
  readonly name: string;
  readonly state: ConsumerRunState;
  readonly group: string | null;
  readonly topics: readonly string[];
  readonly replicas: { readonly desired: number; readonly live: number; readonly ready: number };
  readonly autoscale: { readonly min: number; readonly max: number } | null;
  readonly restarts: number;
  readonly lag: { readonly records: number; readonly seconds: number };
  readonly inFlight: number;
  readonly processed: number;
  readonly failed: number;
  readonly deadLettered: number;
  /** Marked failed by crash-loop detection (not restarted until fixed or `restart`). */
  readonly crashLooping: boolean;
  /** Set while `failing` (dead-letter threshold) or `failed` on offsets beyond the log. */
  readonly failure: {
    readonly reason: ConsumerFailure['reason'];
    readonly message: string;
    readonly at: number;
    /** Paused (or stopped) by it: `consumers resume` (or `restart` for offsets) runs it again. */
    readonly paused: boolean;
  } | null;
  /** Totals of the handler's own counters (`ctx.metrics.increment(name)`) since the supervisor started. */
  readonly counters: { readonly [name: string]: number };
  readonly lastError: { readonly message: string; readonly at: number } | null;
  /** Bumped by each rolling update (code change or `restart`). */
  readonly generation: number;
  readonly pids: readonly number[];
  readonly partitions: number;
  /** Why it may wait forever while looking healthy, e.g. a subscribed topic that does not exist. */
  readonly warnings?: readonly string[];
  readonly updatedAt: number;
}

/**
 * A consumer halted by the dead-letter threshold, kept across restarts of the supervisor (its
 * `paused` flag is kept in the control table): after a restart it still shows `failing (paused)`
 * with the reason and the last error until `consumers resume`.
 */
export interface SavedFailure {
  readonly failure: ConsumerFailure;
  readonly lastError: { readonly message: string; readonly at: number } | null;
}

export interface ConsumerAlert {
  readonly id: number;
  readonly consumer: string;
  readonly kind:
    | 'crash_loop'
    | 'hung'
    | 'memory'
    | 'start_failed'
    | 'failing'
    | 'offset_out_of_range'
    | 'target_stopped';
  readonly message: string;
  readonly at: number;
}

export const CONTROL_DB = 'consumers.db';

export class ControlStore {
  readonly file: string;
  readonly #db: Database.Database;
  #closed = false;

  private constructor(db: Database.Database, file: string) {
    this.#db = db;
    this.file = file;
  }

  /** Opens (creating) the store. With `mustExist`, a data directory without one is an error. */
  static open(dataDir: string, options: { mustExist?: boolean } = {}): ControlStore {
    const file = join(dataDir, CONTROL_DB);
    if (options.mustExist && !existsSync(file)) {
      throw new TributaryError('CONSUMERS_NOT_FOUND', `no consumer state in ${dataDir}`, {
        hint: 'pass the --data-dir of a `tributary run` or `tributary up` that runs consumers',
      });
    }
    mkdirSync(dataDir, { recursive: true });
    const db = new Database(file);
    try {
      db.pragma('busy_timeout = 5000');
      db.pragma('journal_mode = WAL');
      // The status is rewritten every reconcile; losing the last one to a power cut is harmless.
      db.pragma('synchronous = NORMAL');
      db.exec(`
        CREATE TABLE IF NOT EXISTS supervisor_control (
          name TEXT PRIMARY KEY,
          replicas INTEGER,
          paused INTEGER NOT NULL DEFAULT 0,
          restart_generation INTEGER NOT NULL DEFAULT 0,
          updated_at INTEGER NOT NULL
        );
        CREATE TABLE IF NOT EXISTS supervisor_status (
          name TEXT PRIMARY KEY,
          status TEXT NOT NULL,
          updated_at INTEGER NOT NULL
        );
        CREATE TABLE IF NOT EXISTS supervisor_failures (
          name TEXT PRIMARY KEY,
          failure TEXT NOT NULL,
          updated_at INTEGER NOT NULL
        );
        CREATE TABLE IF NOT EXISTS supervisor_alerts (
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          consumer TEXT NOT NULL,
          kind TEXT NOT NULL,
          message TEXT NOT NULL,
          at INTEGER NOT NULL
        );`);
    } catch (error) {
      db.close();
      throw new TributaryError('CONSUMERS_STORE', `cannot open ${file}: ${(error as Error).message}`, {
        cause: error,
        retryable: true,
      });
    }
    return new ControlStore(db, file);
  }

  controls(): ConsumerControl[] {
    const rows = this.#db
      .prepare('SELECT name, replicas, paused, restart_generation AS gen FROM supervisor_control')
      .all() as { name: string; replicas: number | null; paused: number; gen: number }[];
    return rows.map((r) => ({
      name: r.name,
      replicas: r.replicas,
      paused: r.paused === 1,
      restartGeneration: r.gen,
    }));
  }

  control(name: string): ConsumerControl {
    return (
      this.controls().find((c) => c.name === name) ?? {
        name,
        replicas: null,
        paused: false,
        restartGeneration: 0,
      }
    );
  }

  /** `null` returns the consumer to its own `replicas` setting. */
  setReplicas(name: string, replicas: number | null): void {
    this.#upsert(name, 'replicas = excluded.replicas', { replicas, paused: 0, gen: 0 });
  }

  setPaused(name: string, paused: boolean): void {
    this.#upsert(name, 'paused = excluded.paused', { replicas: null, paused: paused ? 1 : 0, gen: 0 });
  }

  requestRestart(name: string): void {
    this.#upsert(name, 'restart_generation = restart_generation + 1', { replicas: null, paused: 0, gen: 1 });
  }

  #upsert(
    name: string,
    update: string,
    values: { replicas: number | null; paused: number; gen: number },
  ): void {
    this.#db
      .prepare(
        `INSERT INTO supervisor_control (name, replicas, paused, restart_generation, updated_at)
         VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET ${update}, updated_at = excluded.updated_at`,
      )
      .run(name, values.replicas, values.paused, values.gen, Date.now());
  }

  writeStatus(statuses: readonly ConsumerStatus[]): void {
    const put = this.#db.prepare(
      'INSERT INTO supervisor_status (name, status, updated_at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at',
    );
    this.#db.transaction(() => {
      for (const s of statuses) put.run(s.name, JSON.stringify(s), s.updatedAt);
    })();
  }

  /** Drops the status rows of consumers that are no longer discovered. */
  retainStatus(names: readonly string[]): void {
    const keep = new Set(names);
    const del = this.#db.prepare('DELETE FROM supervisor_status WHERE name = ?');
    for (const s of this.statuses()) if (!keep.has(s.name)) del.run(s.name);
  }

  statuses(): ConsumerStatus[] {
    const rows = this.#db.prepare('SELECT status FROM supervisor_status ORDER BY name').all() as {
      status: string;
    }[];
    return rows.map((r) => JSON.parse(r.status) as ConsumerStatus);
  }

  /** Keeps (or, with `null`, forgets) why a consumer is halted, for the next supervisor. */
  saveFailure(name: string, saved: SavedFailure | null): void {
    if (saved === null) {
      this.#db.prepare('DELETE FROM supervisor_failures WHERE name = ?').run(name);
      return;
    }
    this.#db
      .prepare(
        'INSERT INTO supervisor_failures (name, failure, updated_at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET failure = excluded.failure, updated_at = excluded.updated_at',
      )
      .run(name, JSON.stringify(saved), Date.now());
  }

  savedFailure(name: string): SavedFailure | undefined {
    const row = this.#db.prepare('SELECT failure FROM supervisor_failures WHERE name = ?').get(name) as
      | { failure: string }
      | undefined;
    return row ? (JSON.parse(row.failure) as SavedFailure) : undefined;
  }

  addAlert(alert: Omit<ConsumerAlert, 'id'>): ConsumerAlert {
    const { lastInsertRowid } = this.#db
      .prepare('INSERT INTO supervisor_alerts (consumer, kind, message, at) VALUES (?, ?, ?, ?)')
      .run(alert.consumer, alert.kind, alert.message, alert.at);
    return { ...alert, id: Number(lastInsertRowid) };
  }

  /** The latest alerts, newest first. */
  alerts(limit = 100): ConsumerAlert[] {
    return this.#db
      .prepare('SELECT id, consumer, kind, message, at FROM supervisor_alerts ORDER BY id DESC LIMIT ?')
      .all(limit) as ConsumerAlert[];
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }
}
