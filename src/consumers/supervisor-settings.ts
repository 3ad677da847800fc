import type { Logger } from 'pino';
import type { NatsLogRef } from '../log/open-event-log.ts';
import type { RotatingLogFile } from './consumer-logs.ts';
import type { ConsumerMetrics } from './consumer-metrics.ts';
import type { ConsumerAlert, SavedFailure } from './control-store.ts';
import type { AutoscaleOptions } from './supervisor-policy.ts';

export interface SupervisionSettings {
  readonly workerEntry: string;
  readonly dataDir: string;
  /** The NATS log the replicas read (absent = the embedded log of `dataDir`). */
  readonly log?: NatsLogRef;
  readonly heartbeatMs: number;
  /** Niceness of the replica processes (0 = the supervisor's priority). */
  readonly niceness?: number;
  /** A replica without a heartbeat for this long is killed and restarted. */
  readonly heartbeatTimeoutMs: number;
  /** Work in flight without progress (or a revoke unanswered) for this long = hung: killed, restarted. */
  readonly hangTimeoutMs: number;
  /** A replica that does not report `ready` within this is killed (counts as a crash). */
  readonly startTimeoutMs: number;
  readonly backoffInitialMs: number;
  readonly backoffMaxMs: number;
  /** This many restarts within `crashLoopWindowMs` mark the consumer failed. */
  readonly crashLoopRestarts: number;
  readonly crashLoopWindowMs: number;
  /** Memory limit before the consumer has described itself (its `memoryMb` then wins). */
  readonly defaultMemoryMb: number;
  readonly autoscale: AutoscaleOptions;
  /** Defaults of the consumers' `failure` option (settings `consumers.failureThreshold|failureAction`). */
  readonly failure?: { readonly maxConsecutiveDeadLetters: number; readonly action: 'pause' | 'continue' };
  /** Default of the consumers' `offsetReset` option (setting `consumers.offsetReset`). */
  readonly offsetReset?: 'fail' | 'earliest' | 'latest';
}

export interface ConsumerHooks {
  readonly metrics: ConsumerMetrics;
  readonly logger: Logger;
  readonly clock: () => number;
  readonly log: RotatingLogFile;
  alert(alert: Omit<ConsumerAlert, 'id'>): void;
  /** Pauses the consumer in the control store (as `tributary consumers pause` does). */
  pause(): void;
  /** Keeps (null: forgets) a halt on dead letters across restarts of the supervisor. */
  saveFailure(saved: SavedFailure | null): void;
  /** What the previous supervisor kept (see `saveFailure`). */
  readonly savedFailure?: SavedFailure;
  nextSeq(): number;
}

/** A line from the supervisor in the consumer's own log (`tributary logs <consumer>`). */
export function supervisorNote(hooks: ConsumerHooks, level: 'info' | 'warn' | 'error', msg: string): void {
  const levels = { info: 30, warn: 40, error: 50 };
  hooks.log.write({ time: hooks.clock(), level: levels[level], source: 'supervisor', msg });
}
