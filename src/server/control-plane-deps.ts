import type { Registry } from 'prom-client';
import type { RunningCapture } from '../capture/capture-runner.ts';
import type { SchemaHistoryEntry } from '../capture/schema-history.ts';
import type { ConsumerRunState } from '../consumers/control-store.ts';
import type { EventLog } from '../core/event-log.ts';
import type { TopicStats } from '../log/embedded/sqlite-event-log.ts';
import type { ServiceEntry } from '../sinks/service-catalog.ts';

/**
 * What the control plane needs from the rest of the program. Each part is optional except the
 * log: a part that is not running (no supervisor in this process, snapshots not wired...) makes
 * its endpoints answer 503 with the reason, and its panel on the dashboard say so.
 *
 * Errors thrown by these calls are mapped to HTTP by their `code` (TributaryError): a code
 * containing `NOT_FOUND`, `UNKNOWN` or `MISSING` is a 404, `INVALID` a 400, `CONFLICT` or `STATE` a 409; anything
 * else a 500 whose message is shown. Implementations return `undefined` for an unknown id where
 * the signature allows it.
 */
export interface ControlPlaneDeps {
  /** The log the capture writes (the server only reads it). */
  readonly log: EventLog & { topicStats?(): readonly TopicStats[] };
  readonly capture?: CaptureControl;
  readonly supervisor?: SupervisorControl;
  readonly deadLetters?: DeadLetterControl;
  readonly snapshots?: SnapshotControl;
  readonly schemaHistory?: SchemaHistoryControl;
  /** The read models the sinks keep (search indexes, inventories, sales analytics). */
  readonly services?: readonly ServiceEntry[];
  /** Whether this process captures or waits as a standby (`run --standby`); absent = active. */
  readonly role?: () => CaptureRole;
}

/** Active or standby (docs/nats.md, "Capture active/standby"), as /api/status and the dashboard show it. */
export interface CaptureRole {
  readonly role: 'active' | 'standby';
  /** NATS: the leadership term held (active) or waited behind (standby); null on the embedded log. */
  readonly term: number | null;
  /** Standby: the active capture as its term names it (host, pid, data directory). */
  readonly leader: { readonly holder: string; readonly since: string } | null;
  /** Standby: whether the slot is held (null while the source does not answer). */
  readonly slotActive: boolean | null;
}

/** The running capture: its counters, source connection and the last polled slot state. */
export type CaptureControl = Pick<RunningCapture, 'capture' | 'source' | 'slotState'> &
  Partial<Pick<RunningCapture, 'consumerYield'>> & {
    readonly slot: string;
    readonly publication: string;
    /** The source without its password. */
    readonly target: string;
    /** Where the log lives (checked for writability by /readyz). */
    readonly dataDir: string;
    /** The error that stopped the capture, if it stopped on one. */
    failure(): Error | undefined;
  };

export interface ConsumerSummary {
  readonly name: string;
  readonly group: string;
  readonly topics: readonly string[];
  /** One of `ConsumerRunState` (control-store.ts), as `tributary consumers` shows it. */
  readonly state: ConsumerRunState;
  readonly replicas: { readonly desired: number; readonly running: number };
  readonly restarts: number;
  readonly crashLooping: boolean;
  /**
   * Why it is `failing` (the consecutive dead-letter threshold; `paused` until resumed) or
   * `failed` on stored offsets beyond the log; `null` otherwise.
   */
  readonly failure: {
    readonly reason: 'dead_letters' | 'offset_out_of_range' | 'target_stopped';
    readonly message: string;
    readonly at: string;
    readonly paused: boolean;
  } | null;
  readonly lastError: { readonly message: string; readonly at: string } | null;
  readonly lagRecords: number;
  /** Age of the oldest record not yet processed; `null` when unknown or nothing is pending. */
  readonly lagSeconds: number | null;
  readonly processed: number;
  readonly failed: number;
  readonly deadLettered: number;
  /**
   * The handler's own counters (`ctx.metrics.increment`), per consumer: summed over replicas and
   * code versions since the supervisor started, never decreasing (as on /metrics).
   */
  readonly counters: { readonly [name: string]: number };
  /** Why it may wait forever while looking healthy, e.g. a subscribed topic that does not exist. */
  readonly warnings: readonly string[];
}

/**
 * The consumer supervisor, as the API drives it. Every call may run concurrently with the
 * supervisor's own work; `scale`, `pause`, `resume` and `restart` resolve once the change is
 * accepted (not necessarily carried out) and return `false` for an unknown consumer.
 */
export interface SupervisorControl {
  list(): Promise<readonly ConsumerSummary[]>;
  /** `note`: said when some replicas will have no partition to read (see `idleReplicasNote`). */
  scale(name: string, replicas: number): Promise<false | { readonly note?: string }>;
  pause(name: string): Promise<boolean>;
  resume(name: string): Promise<boolean>;
  restart(name: string): Promise<boolean>;
  /** The consumers' prom-client registry, merged into /metrics. */
  readonly registry?: Registry;
}

export interface DeadLetter {
  readonly id: string;
  readonly consumer: string;
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly key: string | null;
  readonly value: string | null;
  readonly error: { readonly message: string; readonly stack?: string };
  readonly attempts: number;
  readonly failedAt: string;
}

/** Dead letters of every consumer. `replay` hands the record back to its consumer, then removes it. */
export interface DeadLetterControl {
  list(query: { consumer?: string; limit: number; offset: number }): Promise<{
    readonly total: number;
    readonly items: readonly DeadLetter[];
  }>;
  get(id: string): Promise<DeadLetter | undefined>;
  replay(id: string): Promise<boolean>;
  discard(id: string): Promise<boolean>;
}

export interface SnapshotProgress {
  /** `kind:table`: one line per table and kind (the initial snapshot, backfills). */
  readonly id: string;
  readonly table: string;
  readonly kind: string;
  /** `queued`, `running`, `done` or `failed`. */
  readonly state: string;
  readonly condition: string | null;
  readonly rowsDone: number;
  readonly rowsTotal: number | null;
  readonly rowsPerSecond: number;
  readonly etaSeconds: number | null;
  readonly error?: string;
}

export interface SnapshotControl {
  /**
   * Requests a backfill of each table (`schema.table`), optionally only the rows matching `where`;
   * the capture starts it at once, without locks, while streaming goes on.
   */
  start(tables: readonly string[], where: string | null): Promise<{ readonly ids: readonly string[] }>;
  progress(): Promise<readonly SnapshotProgress[]>;
}

export interface SchemaHistoryControl {
  /** Every shape of a table (oldest first), or of every table in LSN order; `[]` when none. */
  list(table?: string): Promise<readonly SchemaHistoryEntry[]>;
}
