import type { ConsumerDescription, ReplicaCounters } from './consumer-protocol.ts';
import type { ConsumerRunState, ConsumerStatus } from './control-store.ts';
import type { ConsumerFailureState } from './supervisor-failure.ts';
import type { ReplicaProcess } from './supervisor-replica.ts';
import type { ConsumerHooks } from './supervisor-settings.ts';

/** The record counters of one consumer since the supervisor started, summed over its replicas' heartbeats. */
export class ConsumerTotals {
  processed = 0;
  failed = 0;
  deadLettered = 0;
  /** Totals of the handler's own counters (`ctx.metrics.increment`). */
  readonly custom = new Map<string, number>();

  add(
    consumer: string,
    hooks: ConsumerHooks,
    counters: ReplicaCounters,
    metrics: { readonly [name: string]: number } | undefined,
  ): void {
    this.processed += counters.processed;
    this.failed += counters.failed;
    this.deadLettered += counters.deadLettered;
    for (const [name, by] of Object.entries(metrics ?? {})) {
      // Bounded and monotonic (see addCustom): the status and /metrics count the same.
      if (hooks.metrics.addCustom(consumer, name, by))
        this.custom.set(name, (this.custom.get(name) ?? 0) + by);
    }
    hooks.metrics.addCounters(consumer, counters);
  }
}

export interface StatusInput {
  readonly name: string;
  readonly description: ConsumerDescription | undefined;
  readonly live: readonly ReplicaProcess[];
  readonly target: number;
  readonly shuttingDown: boolean;
  readonly paused: boolean;
  readonly failure: ConsumerFailureState;
  readonly totals: ConsumerTotals;
  readonly lag: { readonly records: number; readonly seconds: number };
  readonly generation: number;
  readonly partitions: number;
  readonly warnings: readonly string[];
  readonly now: number;
}

/** The status row of one consumer, as the control store keeps it for the CLI, the API and the dashboard. */
export function consumerStatus(i: StatusInput): ConsumerStatus {
  const d = i.description;
  const ready = i.live.filter((r) => r.state === 'ready').length;
  const report = i.failure.report(i.live.some((r) => r.failing));
  let state: ConsumerRunState;
  if (i.shuttingDown) state = 'stopped';
  else if (i.failure.failed) state = report.crashLooping ? 'crash-loop' : 'failed';
  else if (report.failing) state = 'failing';
  else if (i.paused) state = 'paused';
  else if (!d) state = 'starting';
  else state = ready >= i.target ? 'running' : 'degraded';
  return {
    name: i.name,
    state,
    group: d?.group ?? null,
    topics: d?.topics ?? [],
    replicas: { desired: i.target, live: i.live.length, ready },
    autoscale: d && d.replicas.min < d.replicas.max ? { min: d.replicas.min, max: d.replicas.max } : null,
    restarts: i.failure.restarts,
    lag: i.lag,
    inFlight: i.live.reduce((n, r) => n + r.inFlight, 0),
    processed: i.totals.processed,
    failed: i.totals.failed,
    deadLettered: i.totals.deadLettered,
    crashLooping: report.crashLooping,
    failure: report.failure,
    counters: Object.fromEntries(i.totals.custom),
    lastError: report.lastError,
    generation: i.generation,
    pids: i.live.map((r) => r.pid).filter((p): p is number => p !== undefined),
    partitions: i.partitions,
    warnings: i.warnings,
    updatedAt: i.now,
  };
}
