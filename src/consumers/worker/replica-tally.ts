/**
 * What a replica counts between two heartbeats: the runtime's counters (processed, failed,
 * retried, dead-lettered, handler durations) and the handler's own (`ctx.metrics.increment`).
 * `take` hands the deltas to the heartbeat and starts over, so the supervisor sums them.
 */
import type { ReplicaCounters } from '../consumer-protocol.ts';
import type { ConsumerMetrics } from '../define-consumer.ts';

export class ReplicaTally {
  readonly counters: ReplicaCounters = {
    processed: 0,
    failed: 0,
    retried: 0,
    deadLettered: 0,
    durations: [],
  };
  readonly #custom = new Map<string, number>();

  /** `ctx.metrics`: names are letters, digits and _; counters only go up (Prometheus counters). */
  readonly metrics: ConsumerMetrics = {
    increment: (name, by = 1) => {
      if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(name)) {
        throw new TypeError(`metric names are letters, digits and _ (got ${JSON.stringify(name)})`);
      }
      if (!Number.isFinite(by) || by < 0) {
        throw new TypeError(
          `counters only go up: increment(${JSON.stringify(name)}, by) needs by >= 0 (got ${by})`,
        );
      }
      this.#custom.set(name, (this.#custom.get(name) ?? 0) + by);
    },
  };

  /** The counts since the previous call (deltas), and the handler's own counters. */
  take(): { counters: ReplicaCounters; metrics: { [name: string]: number } } {
    const c = this.counters;
    const counters = { ...c, durations: c.durations.splice(0) };
    c.processed = c.failed = c.retried = c.deadLettered = 0;
    const metrics = Object.fromEntries(this.#custom);
    this.#custom.clear();
    return { counters, metrics };
  }
}
