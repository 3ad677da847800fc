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
import type { NatsLogRef } from '../log/open-event-log.ts';

export interface WorkerLaunch {
  /** Consumer name (folder name). */
  readonly name: string;
  /** Absolute path of the consumer module (`index.ts` or `index.js`). */
  readonly module: string;
  readonly replica: number;
  readonly dataDir: string;
  /** The NATS log to read (absent = the embedded log of `dataDir`). */
  readonly log?: NatsLogRef;
  /**
   * Set by `tributary consumers run` (NATS log only): the replica's member id in the group. Its
   * offsets and dead letters are then kept in the log's KV bucket, and it commits only offsets of
   * partitions that name it as owner (consumers/nats/). Absent: the data directory's store.
   */
  readonly member?: string;
  readonly heartbeatMs: number;
  /** Niceness the replica runs at (every thread; 0 or absent = unchanged). */
  readonly niceness?: number;
  /** Defaults of the consumer's `failure` option (settings `consumers.failureThreshold|failureAction`). */
  readonly failure?: { readonly maxConsecutiveDeadLetters: number; readonly action: 'pause' | 'continue' };
  /** Default of the consumer's `offsetReset` option (setting `consumers.offsetReset`). */
  readonly offsetReset?: 'fail' | 'earliest' | 'latest';
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
  /** Environment variables the consumer declared (`defineConsumer({ env })`). */
  readonly env?: readonly string[];
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
      /** The dead-letter threshold is reached and no record was handled since (`failure.action: 'continue'`). */
      readonly failing?: boolean;
    }
  /**
   * The consumer cannot make progress as it should: `dead_letters` = the consecutive dead-letter
   * threshold was reached (`halted`: the replica handles nothing more and keeps the rest for a
   * resume); `offset_out_of_range` = a stored offset is beyond the log and the policy is `fail`
   * (the replica exits after this message).
   */
  | {
      readonly type: 'failing';
      readonly reason: 'dead_letters' | 'offset_out_of_range' | 'target_stopped';
      readonly message: string;
      readonly halted: boolean;
    }
  | { readonly type: 'revoked'; readonly id: number }
  /** A failure the worker cannot recover from (bad module, bad definition); it exits after. */
  | { readonly type: 'fatal'; readonly message: string; readonly stack?: string }
  | { readonly type: 'error'; readonly message: string; readonly stack?: string };
