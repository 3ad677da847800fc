import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { TributaryError } from '../core/errors.ts';
import { type OpenedEventLog, openLogReader } from '../log/open-event-log.ts';
import { consumerLag } from './consumer-lag.ts';
import { consumerLogFile, RotatingLogFile, type RotatingLogOptions } from './consumer-logs.ts';
import { ConsumerMetrics } from './consumer-metrics.ts';
import { type ConsumerAlert, type ConsumerStatus, ControlStore, type SavedFailure } from './control-store.ts';
import { type DiscoveredConsumer, discoverConsumers } from './discovery.ts';
import { type GroupOffsets, groupOffsets } from './group-offsets.ts';
import { partitionKey } from './partition-assignment.ts';
import { ConsumerSupervisor, type SupervisionSettings } from './supervisor-consumer.ts';
import { WORKER_ENTRY } from './worker/worker-path.ts';

export interface SupervisorOptions {
  readonly dataDir: string;
  /** Folder of consumer folders (`<dir>/<name>/index.ts`). */
  readonly consumersDir: string;
  /** More folders of consumer folders, e.g. the generated sink consumers (`<dataDir>/sinks`). */
  readonly extraConsumerDirs?: readonly string[];
  readonly logger: Logger;
  readonly workerEntry?: string;
  readonly settings?: Partial<Omit<SupervisionSettings, 'workerEntry' | 'dataDir'>>;
  readonly logs?: RotatingLogOptions;
  /** How often desired state is read and converged on. Default 250 ms. */
  readonly reconcileMs?: number;
  /** How often topics, lag and the consumer folders are re-read. Default 1000 ms. */
  readonly refreshMs?: number;
  /** Restart replicas when a consumer's files change. Default true. */
  readonly watch?: boolean;
  readonly metrics?: ConsumerMetrics;
  readonly clock?: () => number;
}

export const DEFAULT_SUPERVISION: Omit<SupervisionSettings, 'workerEntry' | 'dataDir'> = {
  heartbeatMs: 500,
  niceness: 10,
  heartbeatTimeoutMs: 10_000,
  hangTimeoutMs: 30_000,
  startTimeoutMs: 30_000,
  backoffInitialMs: 200,
  backoffMaxMs: 10_000,
  crashLoopRestarts: 5,
  crashLoopWindowMs: 60_000,
  defaultMemoryMb: 512,
  autoscale: { upLagSeconds: 5, downLagSeconds: 1, cooldownMs: 10_000 },
};

/** What the HTTP API calls in-process (and what the CLI does through the control store). */
export interface SupervisorApi {
  list(): ConsumerStatus[];
  status(name: string): ConsumerStatus | undefined;
  /** `null` returns to the consumer's own `replicas` setting (autoscaling on a range). */
  scale(name: string, replicas: number | null): void;
  pause(name: string): void;
  resume(name: string): void;
  restart(name: string): void;
  alerts(limit?: number): ConsumerAlert[];
}

export class ConsumerNotFoundError extends TributaryError {
  constructor(name: string, known: readonly string[]) {
    super('CONSUMER_NOT_FOUND', `no consumer named ${JSON.stringify(name)}`, {
      hint:
        known.length > 0
          ? `known consumers: ${known.join(', ')}`
          : 'no consumer is running: add consumers/<name>/index.ts',
    });
  }
}

/**
 * Runs every consumer of a folder: one `ConsumerSupervisor` per consumer, a reconcile loop that
 * applies the desired state of the control store (written by the CLI and the API), refreshes the
 * topics' partitions (a topic may appear later), the lag and the consumers' files (new folders
 * start, removed ones stop, changed ones roll), and writes the status. Lives in the capture's
 * process: nothing a consumer does may throw here.
 */
export class Supervisor {
  readonly metrics: ConsumerMetrics;
  readonly api: SupervisorApi;
  readonly #o: SupervisorOptions;
  readonly #settings: SupervisionSettings;
  readonly #clock: () => number;
  readonly #consumers = new Map<string, ConsumerSupervisor>();
  readonly #logs = new Map<string, RotatingLogFile>();
  readonly #fingerprints = new Map<string, { value: string; pending?: string }>();
  #control: ControlStore | undefined;
  #offsets: GroupOffsets | undefined;
  #log: OpenedEventLog | undefined;
  #reconcileTimer: NodeJS.Timeout | undefined;
  #refreshTimer: NodeJS.Timeout | undefined;
  #refreshing: Promise<void> | undefined;
  #seq = 0;
  /** Consumers were added or removed since the last status write (stale status rows to drop). */
  #namesChanged = true;
  #started = false;
  #stopping: Promise<void> | undefined;

  constructor(options: SupervisorOptions) {
    this.#o = options;
    this.#clock = options.clock ?? Date.now;
    this.metrics = options.metrics ?? new ConsumerMetrics();
    this.#settings = {
      ...DEFAULT_SUPERVISION,
      ...options.settings,
      autoscale: { ...DEFAULT_SUPERVISION.autoscale, ...options.settings?.autoscale },
      workerEntry: options.workerEntry ?? WORKER_ENTRY,
      dataDir: options.dataDir,
    };
    this.api = this.#makeApi();
  }

  /** Discovers the consumers and starts them; an invalid consumer folder name throws here. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    this.#control = ControlStore.open(this.#o.dataDir);
    this.#offsets = groupOffsets(this.#o.dataDir, this.#settings.log, this.#o.logger);
    this.#discover(this.#discoverAll());
    await this.#refresh();
    this.#reconcile();
    this.#reconcileTimer = setInterval(() => this.#reconcile(), this.#o.reconcileMs ?? 250);
    this.#refreshTimer = setInterval(() => void this.#refresh(), this.#o.refreshMs ?? 1000);
    this.#o.logger.info(
      { consumers: [...this.#consumers.keys()], dir: this.#o.consumersDir },
      this.#consumers.size > 0 ? 'consumers started' : 'no consumers found',
    );
  }

  get names(): string[] {
    return [...this.#consumers.keys()];
  }

  /** Drains and stops every replica (killing those that do not stop within `timeoutMs`). Idempotent. */
  stop(timeoutMs = 30_000): Promise<void> {
    this.#stopping ??= (async () => {
      clearInterval(this.#reconcileTimer);
      clearInterval(this.#refreshTimer);
      await this.#refreshing;
      await Promise.all([...this.#consumers.values()].map((c) => c.shutdown(timeoutMs)));
      // The last status says where each consumer stopped (its lag after the drain).
      await this.#update(false);
      try {
        this.#control?.writeStatus([...this.#consumers.values()].map((c) => c.status()));
      } catch {
        // the status is advisory
      }
      for (const log of this.#logs.values()) log.close();
      this.#control?.close();
      await this.#offsets?.close();
      await this.#log?.close();
    })();
    return this.#stopping;
  }

  /** The consumer folders of every directory; a name found twice is an error naming both. */
  #discoverAll(): DiscoveredConsumer[] {
    const found = discoverConsumers(this.#o.consumersDir);
    for (const dir of this.#o.extraConsumerDirs ?? []) {
      for (const c of discoverConsumers(dir)) {
        const clash = found.find((f) => f.name === c.name);
        if (clash) {
          throw new TributaryError(
            'CONSUMER_NAME_CLASH',
            `two consumers are named ${c.name}: ${clash.dir} and ${c.dir}`,
            {
              hint: 'rename one of them: the name is the consumer group',
            },
          );
        }
        found.push(c);
      }
    }
    return found;
  }

  #discover(found: readonly DiscoveredConsumer[]): void {
    const names = new Set(found.map((c) => c.name));
    for (const [name, c] of this.#consumers) {
      if (!names.has(name)) {
        this.#o.logger.info({ consumer: name }, 'consumer folder removed: stopping it');
        this.#consumers.delete(name);
        this.#namesChanged = true;
        void c.shutdown(30_000).then(() => this.#logs.get(name)?.close());
      }
    }
    for (const consumer of found) {
      if (this.#consumers.has(consumer.name)) continue;
      const log =
        this.#logs.get(consumer.name) ??
        new RotatingLogFile(
          consumerLogFile(this.#o.dataDir, consumer.name),
          this.#o.logs ?? { maxBytes: 10 * 1024 * 1024, files: 5 },
        );
      this.#logs.set(consumer.name, log);
      this.#fingerprints.set(consumer.name, { value: fingerprint(consumer.dir) });
      this.#namesChanged = true;
      this.#consumers.set(
        consumer.name,
        new ConsumerSupervisor(consumer, this.#settings, {
          metrics: this.metrics,
          logger: this.#o.logger,
          clock: this.#clock,
          log,
          alert: (alert) => this.#alert(alert),
          pause: () => this.#pause(consumer.name),
          saveFailure: (saved) => this.#saveFailure(consumer.name, saved),
          ...this.#savedFailure(consumer.name),
          nextSeq: () => ++this.#seq,
        }),
      );
    }
  }

  #alert(alert: Omit<ConsumerAlert, 'id'>): void {
    try {
      this.#control?.addAlert(alert);
    } catch (error) {
      this.#o.logger.error({ err: error, alert }, 'could not record a consumer alert');
    }
  }

  #pause(name: string): void {
    try {
      this.#control?.setPaused(name, true);
    } catch (error) {
      // The consumer stays halted in this process; only the restart-proof pause is lost.
      this.#o.logger.error(
        { err: error, consumer: name },
        'could not record the pause of a failing consumer',
      );
    }
  }

  #saveFailure(name: string, saved: SavedFailure | null): void {
    try {
      this.#control?.saveFailure(name, saved);
    } catch (error) {
      this.#o.logger.error({ err: error, consumer: name }, 'could not record why the consumer is halted');
    }
  }

  #savedFailure(name: string): { savedFailure?: SavedFailure } {
    try {
      const saved = this.#control?.savedFailure(name);
      return saved ? { savedFailure: saved } : {};
    } catch (error) {
      this.#o.logger.warn({ err: error, consumer: name }, 'could not read why the consumer was halted');
      return {};
    }
  }

  #reconcile(): void {
    if (this.#stopping || !this.#control) return;
    let controls: Map<string, ReturnType<ControlStore['control']>>;
    try {
      controls = new Map(this.#control.controls().map((c) => [c.name, c]));
    } catch (error) {
      this.#o.logger.warn({ err: error }, 'could not read the consumers control state; retrying');
      return;
    }
    for (const c of this.#consumers.values()) {
      try {
        c.tick(controls.get(c.name) ?? { name: c.name, replicas: null, paused: false, restartGeneration: 0 });
      } catch (error) {
        this.#o.logger.error({ err: error, consumer: c.name }, 'supervising the consumer failed');
      }
    }
    try {
      this.#control.writeStatus([...this.#consumers.values()].map((c) => c.status()));
      if (this.#namesChanged) this.#control.retainStatus(this.names);
      this.#namesChanged = false;
    } catch (error) {
      this.#o.logger.warn({ err: error }, 'could not write the consumers status');
    }
  }

  async #refresh(): Promise<void> {
    if (this.#refreshing || this.#stopping) return;
    this.#refreshing = this.#update(this.#o.watch ?? true).finally(() => {
      this.#refreshing = undefined;
    });
    await this.#refreshing;
  }

  /** Re-reads the consumer folders (with `watch`), the topics' partitions and the lag. */
  async #update(watch: boolean): Promise<void> {
    try {
      if (watch) this.#watchFiles();
      this.#log ??= await openLogReader(this.#o.dataDir, this.#settings.log);
      if (!this.#log) return;
      const topics = await this.#log.topics();
      const now = this.#clock();
      for (const c of this.#consumers.values()) {
        const d = c.description;
        if (!d) continue;
        const wanted = new Set(d.topics);
        c.setTopics(topics.map((t) => t.topic));
        c.setPartitions(
          topics
            .filter((t) => wanted.has(t.topic))
            .flatMap((t) =>
              t.partitions.map((p) => partitionKey({ topic: t.topic, partition: p.partition })),
            ),
        );
        const lag = await consumerLag(this.#log, this.#offsets!, d.group, d.topics, now);
        c.setLag({
          records: lag.reduce((n, p) => n + p.records, 0),
          seconds: lag.reduce((m, p) => Math.max(m, p.seconds), 0),
        });
      }
    } catch (error) {
      this.#o.logger.warn({ err: error }, 'could not refresh the consumers topics or lag; retrying');
    }
  }

  /** New, removed and changed consumer folders; a change is acted on once it stayed the same for one poll. */
  #watchFiles(): void {
    let found: DiscoveredConsumer[];
    try {
      found = this.#discoverAll();
    } catch (error) {
      this.#o.logger.error({ err: error }, 'cannot read the consumers folder');
      return;
    }
    this.#discover(found);
    for (const consumer of found) {
      const seen = this.#fingerprints.get(consumer.name);
      if (!seen) continue;
      const now = fingerprint(consumer.dir);
      if (now === seen.value) seen.pending = undefined;
      else if (seen.pending !== now) seen.pending = now;
      else {
        this.#fingerprints.set(consumer.name, { value: now });
        this.#o.logger.info({ consumer: consumer.name }, 'consumer code changed: rolling update');
        this.#consumers.get(consumer.name)?.codeChanged();
      }
    }
  }

  #makeApi(): SupervisorApi {
    const known = (name: string) => {
      if (!this.#consumers.has(name)) throw new ConsumerNotFoundError(name, this.names);
      if (!this.#control) throw new TributaryError('SUPERVISOR_NOT_STARTED', 'the supervisor is not running');
      return this.#control;
    };
    const then = () => setImmediate(() => this.#reconcile());
    return {
      list: () => [...this.#consumers.values()].map((c) => c.status()),
      status: (name) => this.#consumers.get(name)?.status(),
      scale: (name, replicas) => {
        known(name).setReplicas(name, validateReplicas(replicas));
        then();
      },
      pause: (name) => {
        known(name).setPaused(name, true);
        then();
      },
      resume: (name) => {
        known(name).setPaused(name, false);
        then();
      },
      restart: (name) => {
        known(name).requestRestart(name);
        then();
      },
      alerts: (limit) => this.#control?.alerts(limit) ?? [],
    };
  }
}

export function validateReplicas(replicas: number | null): number | null {
  if (replicas !== null && (!Number.isInteger(replicas) || replicas < 0 || replicas > 64)) {
    throw new TributaryError('CONFIG_INVALID', `replicas must be an integer from 0 to 64, got ${replicas}`, {
      hint: 'e.g. `tributary consumers scale order-totals 3`, or `auto` for the consumer’s own setting',
    });
  }
  return replicas;
}

/** Paths, sizes and modification times of a consumer's files (not node_modules nor dot folders). */
function fingerprint(dir: string): string {
  const parts: string[] = [];
  const walk = (d: string, depth: number) => {
    if (depth > 4) return;
    let entries: import('node:fs').Dirent[];
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      if (e.name.startsWith('.') || e.name === 'node_modules') continue;
      const path = join(d, e.name);
      if (e.isDirectory()) walk(path, depth + 1);
      else if (e.isFile()) {
        try {
          const s = statSync(path);
          parts.push(`${path}:${s.size}:${s.mtimeMs}`);
        } catch {
          // removed meanwhile
        }
      }
    }
  };
  walk(dir, 0);
  return parts.join('\n');
}
