import { hostname } from 'node:os';
import type { PartitionKey } from '../partition-assignment.ts';
import type { ReplicaProcess } from '../supervisor-replica.ts';
import type { LocalReplica } from './group-coordinator.ts';

const EMPTY: ReadonlySet<PartitionKey> = new Set();

/**
 * One replica of a `consumers run` process as the group coordinator sees it: a member id kept
 * across restarts of its worker process, the partitions that process owns, and the member key's
 * value (who and where it is, paused or not, its counters since the process started).
 */
export class StandaloneReplica implements LocalReplica {
  process: ReplicaProcess | undefined;
  readonly totals = { processed: 0, failed: 0, retried: 0, deadLettered: 0 };
  readonly startedAt = Date.now();
  /** `consumers pause` reached this process (shown in the member key). */
  paused = false;
  /** Scaled away (`consumers scale`): draining, then gone; never started again. */
  retiring = false;
  /** To be replaced by a rolling restart (`consumers restart`). */
  restartPending = false;
  /** When its current worker process was started. */
  spawnedAt = 0;
  #revokes = 0;

  constructor(
    readonly replica: number,
    readonly member: string,
    readonly consumer: string,
  ) {}

  get ready(): boolean {
    return this.process?.state === 'ready' && this.process.stopRequestedAt === undefined;
  }

  get owned(): ReadonlySet<PartitionKey> {
    return this.process?.owned ?? EMPTY;
  }

  isRevoking(p: PartitionKey): boolean {
    return this.process?.isRevoking(p) ?? false;
  }

  assign(partitions: readonly PartitionKey[]): void {
    this.process?.assign(partitions);
  }

  revoke(partitions: readonly PartitionKey[]): void {
    this.process?.revoke(partitions, ++this.#revokes);
  }

  memberInfo(): object {
    return {
      consumer: this.consumer,
      host: hostname(),
      pid: process.pid,
      replica: this.replica,
      replicaPid: this.process?.pid,
      startedAt: this.startedAt,
      replicaStartedAt: this.spawnedAt,
      partitions: [...this.owned].sort().map((p) => p.replace('\0', '/')),
      inFlight: this.process?.inFlight ?? 0,
      paused: this.paused,
      ...this.totals,
    };
  }
}
