/**
 * Messages between the supervisor (parent) and a consumer replica (child process, IPC channel).
 *
 * Lifecycle: the supervisor forks the worker entry with a `WorkerLaunch` in the
 * `TRIBUTARY_WORKER` environment variable (JSON). The worker imports the consumer module, sends
 * `ready` (with the consumer's definition as data), then waits for `assign`. It handles records
 * only of the partitions assigned to it. A `revoke` (scale, rebalance, rolling update, pause)
 * makes it finish the batches in flight, commit their offsets, stop reading those partitions and
 * answer `revoked`; only then does the supervisor give the partitions to another replica, so no
 * record is handled by two live replicas at once. `stop` = revoke everything, then exit 0.
 * The worker sends `heartbeat` at least every `heartbeatMs`; the supervisor restarts a replica
 * whose heartbeats stop or whose `lastProgressAt` stays behind while it has work in flight for
 * longer than the hang timeout.
 */

export interface WorkerLaunch {
  /** Consumer name (folder name). */
  readonly name: string;
  /** Absolute path of the consumer module (`index.ts` or `index.js`). */
  readonly module: string;
  readonly replica: number;
  readonly dataDir: string;
  readonly heartbeatMs: number;
  /** Niceness the replica runs at (every thread; 0 or absent = unchanged). */
  readonly niceness?: number;
  /** pino level of the replica's log (default: env TRIBUTARY_LOG_LEVEL, else info). */
  readonly logLevel?: string;
}

export interface TopicPartitionRef {
  readonly topic: string;
  readonly partition: number;
}

/** What the worker reports of the consumer's `defineConsumer` options (plain data). */
export interface ConsumerDescription {
  readonly topics: readonly string[];
  readonly group: string;
  readonly replicas: { readonly min: number; readonly max: number; readonly initial: number };
  readonly memoryMb: number;
}

export interface ReplicaCounters {
  processed: number;
  failed: number;
  retried: number;
  deadLettered: number;
  /** Handler durations (seconds) observed since the previous heartbeat. */
  durations: number[];
}

export type SupervisorToWorker =
  /**
   * The complete set of partitions the replica owns from now on, those it already had included
   * (the supervisor only adds with `assign`; partitions leave only through `revoke`).
   */
  | { readonly type: 'assign'; readonly partitions: readonly TopicPartitionRef[] }
  | { readonly type: 'revoke'; readonly partitions: readonly TopicPartitionRef[]; readonly id: number }
  | { readonly type: 'stop' };

export type WorkerToSupervisor =
  | { readonly type: 'ready'; readonly description: ConsumerDescription }
  | {
      readonly type: 'heartbeat';
      readonly inFlight: number;
      /** Epoch ms of the last finished batch (or of the assignment when none yet). */
      readonly lastProgressAt: number;
      /** Counters since the previous heartbeat (deltas). */
      readonly counters: ReplicaCounters;
      /** The handler's own counters (`ctx.metrics.increment`) since the previous heartbeat. */
      readonly metrics?: { readonly [name: string]: number };
    }
  | { readonly type: 'revoked'; readonly id: number }
  /** A failure the worker cannot recover from (bad module, bad definition); it exits after. */
  | { readonly type: 'fatal'; readonly message: string; readonly stack?: string }
  | { readonly type: 'error'; readonly message: string; readonly stack?: string };
