import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { CaptureObserver } from '../capture/capture.ts';
import type { ControlPlaneDeps } from './control-plane-deps.ts';

/** Metric names, documented in docs/metrics.md and used by deploy/grafana and deploy/prometheus. */
export const METRICS = {
  captureEvents: 'tributary_capture_events_total',
  captureTransactions: 'tributary_capture_transactions_total',
  captureRecords: 'tributary_capture_records_total',
  captureAppends: 'tributary_capture_appends_total',
  commitToLog: 'tributary_capture_commit_to_log_seconds',
  consumersHeld: 'tributary_capture_consumers_held_seconds_total',
  lastCommit: 'tributary_capture_last_commit_timestamp_seconds',
  sourceConnected: 'tributary_source_connected',
  logDiskFull: 'tributary_log_disk_full',
  sourceReconnects: 'tributary_source_reconnects_total',
  sourceBytes: 'tributary_source_received_bytes_total',
  slotLag: 'tributary_source_slot_lag_bytes',
  retainedWal: 'tributary_source_retained_wal_bytes',
  snapshotRowsDone: 'tributary_snapshot_rows_done',
  snapshotTableRows: 'tributary_snapshot_table_rows',
  snapshotRunning: 'tributary_snapshot_running',
  logRecords: 'tributary_log_records',
  logBytes: 'tributary_log_bytes',
  logTopics: 'tributary_log_topics',
  alertsActive: 'tributary_alerts_active',
} as const;

/** Commit to durable-in-log latencies: from a few milliseconds (live) to minutes (catch-up). */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/**
 * The control plane's metrics. Counters of the capture are kept as plain numbers by the capture
 * itself (no work on the hot path) and copied into the registry at scrape time (`collect`); the
 * only per-append work is one histogram observation through `captureObserver`.
 */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly captureObserver: CaptureObserver;
  readonly #latency: Histogram;
  #deps: Partial<ControlPlaneDeps> = {};
  #activeAlerts: () => readonly { rule: string }[] = () => [];

  constructor(options: { clock?: () => number; defaultMetrics?: boolean } = {}) {
    const clock = options.clock ?? Date.now;
    const registers = [this.registry];
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    this.#latency = new Histogram({
      name: METRICS.commitToLog,
      help: 'Time from the source commit of a transaction to its records being durable in the log',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    const latency = this.#latency;
    this.captureObserver = {
      durable(commitTimeUs) {
        latency.observe(Math.max(0, clock() / 1000 - Number(commitTimeUs) / 1e6));
      },
    };
    const self = this;
    new Counter({
      name: METRICS.captureEvents,
      help: 'Change events written to the log, by source table and operation (c, u, d, t)',
      labelNames: ['table', 'op'],
      registers,
      collect() {
        const capture = self.#deps.capture?.capture;
        if (!capture) return;
        this.reset();
        for (const [relation, counts] of capture.eventsByTable) {
          const table = `${relation.schema}.${relation.table}`;
          for (const [op, n] of Object.entries(counts)) this.inc({ table, op }, n);
        }
      },
    });
    const captureCounter = (name: string, help: string, read: (d: Partial<ControlPlaneDeps>) => number) =>
      new Counter({
        name,
        help,
        registers,
        collect() {
          if (!self.#deps.capture) return;
          this.reset();
          this.inc(read(self.#deps));
        },
      });
    captureCounter(
      METRICS.captureTransactions,
      'Source transactions written to the log',
      (d) => d.capture?.capture.stats.transactions ?? 0,
    );
    captureCounter(
      METRICS.captureRecords,
      'Records appended to the log by the capture',
      (d) => d.capture?.capture.stats.records ?? 0,
    );
    captureCounter(
      METRICS.captureAppends,
      'Durable appends (one fsync each)',
      (d) => d.capture?.capture.stats.appends ?? 0,
    );
    captureCounter(
      METRICS.consumersHeld,
      'Time the consumers were held back while the capture caught up with the source (consumers.yieldToCapture)',
      (d) => (d.capture?.consumerYield?.stats.heldMs ?? 0) / 1000,
    );
    captureCounter(
      METRICS.sourceReconnects,
      'Reconnections of the replication stream',
      (d) => d.capture?.source.stats.reconnects ?? 0,
    );
    captureCounter(
      METRICS.sourceBytes,
      'Bytes received on the replication stream',
      (d) => d.capture?.source.stats.bytesReceived ?? 0,
    );
    const gauge = (name: string, help: string, read: (d: Partial<ControlPlaneDeps>) => number | null) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          const value = read(self.#deps);
          if (value === null) this.reset();
          else this.set(value);
        },
      });
    gauge(
      METRICS.logDiskFull,
      '1 while the disk of the event log is full (capture stopped appending; it resumes by itself)',
      (d) => (d.capture ? (d.capture.source.stats.diskFull ? 1 : 0) : null),
    );
    gauge(METRICS.sourceConnected, '1 while the replication stream is connected', (d) =>
      d.capture ? (d.capture.source.stats.connected ? 1 : 0) : null,
    );
    gauge(
      METRICS.slotLag,
      'WAL bytes between the server position and the slot confirmed position',
      (d) => d.capture?.slotState()?.lagBytes ?? null,
    );
    gauge(
      METRICS.retainedWal,
      'WAL bytes the server retains for the slot',
      (d) => d.capture?.slotState()?.retainedBytes ?? null,
    );
    gauge(METRICS.lastCommit, 'Source commit time of the last transaction durable in the log', (d) => {
      const us = d.capture?.capture.stats.lastCommitTimeUs;
      return us ? Number(us) / 1e6 : null;
    });
    const snapshotGauge = (name: string, help: string, read: (p: SnapshotRow) => number | null) =>
      new Gauge({
        name,
        help,
        labelNames: ['table'],
        registers,
        async collect() {
          this.reset();
          const snapshots = self.#deps.snapshots;
          if (!snapshots) return;
          for (const p of await snapshots.progress().catch(() => [])) {
            const value = read(p);
            if (value !== null) this.set({ table: p.table }, value);
          }
        },
      });
    snapshotGauge(
      METRICS.snapshotRowsDone,
      'Rows of the table read by the current or last snapshot',
      (p) => p.rowsDone,
    );
    snapshotGauge(METRICS.snapshotTableRows, 'Estimated rows of the table to snapshot', (p) => p.rowsTotal);
    snapshotGauge(METRICS.snapshotRunning, '1 while the table is being snapshotted', (p) =>
      p.state === 'running' ? 1 : 0,
    );
    const topicGauge = (name: string, help: string, field: 'records' | 'bytes') =>
      new Gauge({
        name,
        help,
        labelNames: ['topic'],
        registers,
        collect() {
          this.reset();
          const log = self.#deps.log;
          if (!log?.topicStats) return;
          for (const t of log.topicStats()) this.set({ topic: t.topic }, t[field]);
        },
      });
    topicGauge(METRICS.logRecords, 'Records stored in the topic (after retention)', 'records');
    topicGauge(METRICS.logBytes, 'Approximate bytes stored in the topic (keys, values, headers)', 'bytes');
    new Gauge({
      name: METRICS.logTopics,
      help: 'Topics in the log',
      registers,
      collect() {
        const log = self.#deps.log;
        if (log?.topicStats) this.set(log.topicStats().length);
      },
    });
    new Gauge({
      name: METRICS.alertsActive,
      help: 'Alerts firing, by rule',
      labelNames: ['rule'],
      registers,
      collect() {
        this.reset();
        const counts = new Map<string, number>();
        for (const a of self.#activeAlerts()) counts.set(a.rule, (counts.get(a.rule) ?? 0) + 1);
        for (const [rule, n] of counts) this.set({ rule }, n);
      },
    });
  }

  /** Points the collectors at the parts that are running (called as they start). */
  attach(deps: Partial<ControlPlaneDeps>, activeAlerts?: () => readonly { rule: string }[]): void {
    this.#deps = deps;
    if (activeAlerts) this.#activeAlerts = activeAlerts;
  }

  /**
   * The exposition text: ours merged with the consumers' registry. A name registered in both
   * (e.g. both collected the default process metrics) is kept once, from ours.
   */
  async scrape(): Promise<string> {
    const other = this.#deps.supervisor?.registry;
    if (!other) return this.registry.metrics();
    try {
      return await Registry.merge([this.registry, other]).metrics();
    } catch {
      const ours = new Set(this.registry.getMetricsAsArray().map((m) => m.name));
      const theirs = (await other.metrics()).split(/\n(?=# HELP )/).filter((block) => {
        const name = /^# HELP (\S+)/.exec(block)?.[1];
        return name !== undefined && !ours.has(name);
      });
      return `${await this.registry.metrics()}${theirs.join('\n')}`;
    }
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

type SnapshotRow = { rowsDone: number; rowsTotal: number | null; state: string };
