import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ReplicaCounters } from './consumer-protocol.ts';

/** Metric names, Prometheus conventions: base units, `_total` counters, one label `consumer`. */
export const CONSUMER_METRICS = {
  processed: 'tributary_consumer_records_processed_total',
  failed: 'tributary_consumer_records_failed_total',
  retried: 'tributary_consumer_records_retried_total',
  deadLettered: 'tributary_consumer_records_dead_lettered_total',
  handlerDuration: 'tributary_consumer_handler_duration_seconds',
  lagRecords: 'tributary_consumer_lag_records',
  lagSeconds: 'tributary_consumer_lag_seconds',
  restarts: 'tributary_consumer_restarts_total',
  replicas: 'tributary_consumer_replicas',
  inFlight: 'tributary_consumer_in_flight',
  custom: 'tributary_consumer_custom_total',
} as const;

/** Most distinct `ctx.metrics.increment` names kept per consumer (a name per record must not grow without end). */
export const MAX_CUSTOM_COUNTERS = 100;

/**
 * The consumers' metrics, in one registry (the HTTP server merges it into /metrics). The
 * supervisor feeds it from the replicas' heartbeat deltas, so counters survive replica restarts.
 */
export class ConsumerMetrics {
  readonly registry: Registry;
  readonly #processed: Counter<'consumer'>;
  readonly #failed: Counter<'consumer'>;
  readonly #retried: Counter<'consumer'>;
  readonly #deadLettered: Counter<'consumer'>;
  readonly #duration: Histogram<'consumer'>;
  readonly #lagRecords: Gauge<'consumer'>;
  readonly #lagSeconds: Gauge<'consumer'>;
  readonly #restarts: Counter<'consumer'>;
  readonly #replicas: Gauge<'consumer'>;
  readonly #inFlight: Gauge<'consumer'>;
  readonly #custom: Counter<'consumer' | 'counter'>;
  readonly #customNames = new Map<string, Set<string>>();

  constructor(registry: Registry = new Registry()) {
    this.registry = registry;
    const labelNames = ['consumer'] as const;
    const registers = [registry];
    const counter = (name: string, help: string) => new Counter({ name, help, labelNames, registers });
    const gauge = (name: string, help: string) => new Gauge({ name, help, labelNames, registers });
    this.#processed = counter(CONSUMER_METRICS.processed, 'Records handled successfully.');
    this.#failed = counter(CONSUMER_METRICS.failed, 'Handler attempts that failed.');
    this.#retried = counter(CONSUMER_METRICS.retried, 'Records retried after a failure.');
    this.#deadLettered = counter(CONSUMER_METRICS.deadLettered, 'Records sent to the dead-letter topic.');
    this.#duration = new Histogram({
      name: CONSUMER_METRICS.handlerDuration,
      help: 'Duration of handler calls (one batch).',
      labelNames,
      registers,
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    });
    this.#lagRecords = gauge(
      CONSUMER_METRICS.lagRecords,
      'Records in the log not yet committed by the consumer.',
    );
    this.#lagSeconds = gauge(
      CONSUMER_METRICS.lagSeconds,
      'Age of the oldest record not yet committed by the consumer (0 when caught up).',
    );
    this.#restarts = counter(CONSUMER_METRICS.restarts, 'Replica processes restarted after a crash or hang.');
    this.#replicas = gauge(CONSUMER_METRICS.replicas, 'Live replica processes.');
    this.#inFlight = gauge(CONSUMER_METRICS.inFlight, 'Records being handled now.');
    this.#custom = new Counter({
      name: CONSUMER_METRICS.custom,
      help: "The handlers' own counters (ctx.metrics.increment(counter, by)), per consumer: summed over its replicas and code versions.",
      labelNames: ['consumer', 'counter'],
      registers,
    });
  }

  /**
   * Adds to a handler's counter. Counters only go up (a negative or non-finite `by` is ignored) and
   * at most `MAX_CUSTOM_COUNTERS` names per consumer are kept; returns whether it was counted.
   */
  addCustom(consumer: string, counter: string, by: number): boolean {
    if (!Number.isFinite(by) || by < 0) return false;
    let names = this.#customNames.get(consumer);
    if (names === undefined) {
      names = new Set();
      this.#customNames.set(consumer, names);
    }
    if (!names.has(counter)) {
      if (names.size >= MAX_CUSTOM_COUNTERS) return false;
      names.add(counter);
    }
    this.#custom.inc({ consumer, counter }, by);
    return true;
  }

  /** Adds one heartbeat's counter deltas. */
  addCounters(consumer: string, c: ReplicaCounters): void {
    const labels = { consumer };
    if (c.processed > 0) this.#processed.inc(labels, c.processed);
    if (c.failed > 0) this.#failed.inc(labels, c.failed);
    if (c.retried > 0) this.#retried.inc(labels, c.retried);
    if (c.deadLettered > 0) this.#deadLettered.inc(labels, c.deadLettered);
    for (const d of c.durations) if (Number.isFinite(d) && d >= 0) this.#duration.observe(labels, d);
  }

  setLag(consumer: string, records: number, seconds: number): void {
    this.#lagRecords.set({ consumer }, records);
    this.#lagSeconds.set({ consumer }, seconds);
  }

  setReplicas(consumer: string, replicas: number, inFlight: number): void {
    this.#replicas.set({ consumer }, replicas);
    this.#inFlight.set({ consumer }, inFlight);
  }

  restarted(consumer: string): void {
    this.#restarts.inc({ consumer });
  }

  /** Prometheus text exposition of the consumer metrics. */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}
