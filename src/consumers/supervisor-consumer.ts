import { YieldGate } from './capture-yield.ts';
import type { ConsumerDescription, WorkerToSupervisor } from './consumer-protocol.ts';
import type { ConsumerControl, ConsumerStatus } from './control-store.ts';
import type { DiscoveredConsumer } from './discovery.ts';
import type { PartitionKey } from './partition-assignment.ts';
import { assignReplicaPartitions, convergeReplicas } from './replica-convergence.ts';
import { ConsumerFailureState } from './supervisor-failure.ts';
import { checkReplicaHealth } from './supervisor-health.ts';
import { LagAutoscaler, RestartPolicy } from './supervisor-policy.ts';
import { ReplicaProcess } from './supervisor-replica.ts';
import { type ConsumerHooks, type SupervisionSettings, supervisorNote } from './supervisor-settings.ts';
import { ConsumerTotals, consumerStatus } from './supervisor-status.ts';
import { missingTopicWarnings } from './topic-suggestions.ts';

export type { ConsumerHooks, SupervisionSettings } from './supervisor-settings.ts';

/**
 * Supervises the replicas of one consumer: keeps the desired number alive (restart with
 * exponential backoff, crash-loop detection), checks heartbeats and progress, assigns the
 * partitions of its topics (a partition moves only after its previous owner answered `revoked`
 * or died), rolls replicas one by one onto new code, and scales on time lag.
 *
 * Driven by `tick()` from the supervisor's reconcile loop and by the replicas' events; never
 * throws into its caller for anything a replica does.
 */
export class ConsumerSupervisor {
  readonly consumer: DiscoveredConsumer;
  readonly #s: SupervisionSettings;
  readonly #h: ConsumerHooks;
  readonly #replicas = new Map<number, ReplicaProcess>();
  #description: ConsumerDescription | undefined;
  #generation = 0;
  #restartGeneration: number | undefined;
  #control: ConsumerControl;
  #shuttingDown = false;
  readonly #restartPolicy: RestartPolicy;
  readonly #autoscaler: LagAutoscaler;
  readonly #yieldGate: YieldGate;
  readonly #failure: ConsumerFailureState;
  #revokeSeq = 0;
  #partitions: PartitionKey[] = [];
  /** Conditions that do not stop the consumer but mean it may wait forever (a missing topic). */
  #warnings: string[] = [];
  #lag = { records: 0, seconds: 0 };
  readonly #totals = new ConsumerTotals();
  #autoTarget: number | undefined;

  constructor(consumer: DiscoveredConsumer, settings: SupervisionSettings, hooks: ConsumerHooks) {
    this.consumer = consumer;
    this.#s = settings;
    this.#h = hooks;
    this.#control = { name: consumer.name, replicas: null, paused: false, restartGeneration: 0 };
    this.#restartPolicy = new RestartPolicy(settings);
    this.#autoscaler = new LagAutoscaler(settings.autoscale);
    this.#yieldGate = new YieldGate(settings.dataDir);
    this.#failure = new ConsumerFailureState(consumer.name, settings, hooks, this.#restartPolicy, () =>
      this.#replicas.values(),
    );
  }

  get name(): string {
    return this.consumer.name;
  }

  get description(): ConsumerDescription | undefined {
    return this.#description;
  }

  get failed(): boolean {
    return this.#failure.failed;
  }

  /** Replicas still running (including those draining). */
  get live(): ReplicaProcess[] {
    return [...this.#replicas.values()];
  }

  /**
   * The log's topics: a subscribed topic missing from them is warned about once (log and the
   * consumer's log) and listed in the status until it appears, with the closest existing names.
   */
  setTopics(existing: readonly string[]): void {
    const d = this.#description;
    if (!d) return;
    const warnings = missingTopicWarnings(d.topics, existing);
    for (const w of warnings) {
      if (this.#warnings.includes(w)) continue;
      this.#note('warn', w);
      this.#h.logger.warn({ consumer: this.name }, `consumer ${this.name}: ${w}`);
    }
    this.#warnings = warnings;
  }

  setPartitions(partitions: readonly PartitionKey[]): void {
    this.#partitions = [...partitions];
  }

  setLag(lag: { records: number; seconds: number }): void {
    this.#lag = lag;
    this.#h.metrics.setLag(this.name, lag.records, lag.seconds);
  }

  /** The consumer's files changed: replace the replicas one by one, and give a failed consumer a new chance. */
  codeChanged(): void {
    this.#note('info', 'code changed on disk: rolling update');
    this.#newGeneration();
  }

  #newGeneration(): void {
    this.#generation++;
    this.#failure.newGeneration();
  }

  /** Stops every replica (drained) and resolves when all have exited; kills those beyond `timeoutMs`. */
  async shutdown(timeoutMs: number): Promise<void> {
    this.#shuttingDown = true;
    for (const r of this.#replicas.values()) r.stop();
    const deadline = this.#h.clock() + timeoutMs;
    while (this.#replicas.size > 0) {
      if (this.#h.clock() > deadline) for (const r of this.#replicas.values()) r.kill('did not stop in time');
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** One reconcile step; `control` is the desired state from the control store. */
  tick(control: ConsumerControl): void {
    const now = this.#h.clock();
    this.#control = control;
    if (this.#restartGeneration === undefined) this.#restartGeneration = control.restartGeneration;
    else if (control.restartGeneration !== this.#restartGeneration) {
      this.#restartGeneration = control.restartGeneration;
      this.#note('info', 'restart requested: rolling update');
      this.#newGeneration();
    }
    this.#failure.checkResumed(control.paused);
    if (checkReplicaHealth(this.name, this.#replicas.values(), this.#s, this.#h, now))
      this.#restartPolicy.healthy();
    this.#autoscale(now);
    convergeReplicas(this.live, this.#target(), this.#generation, () => this.#spawn(now));
    this.#assign();
    const inFlight = this.live.reduce((n, r) => n + r.inFlight, 0);
    this.#h.metrics.setReplicas(this.name, this.live.filter((r) => r.state !== 'stopping').length, inFlight);
  }

  #target(): number {
    if (this.#failure.failed || this.#shuttingDown || this.#control.paused) return 0;
    if (this.#failure.halted) return 0;
    if (this.#control.replicas !== null) return this.#control.replicas;
    const d = this.#description;
    if (!d) return 1;
    if (d.replicas.min < d.replicas.max) return this.#autoTarget ?? d.replicas.initial;
    return d.replicas.initial;
  }

  #autoscale(now: number): void {
    const d = this.#description;
    if (!d || d.replicas.min >= d.replicas.max || this.#control.replicas !== null) {
      this.#autoTarget = undefined;
      this.#autoscaler.reset();
      return;
    }
    const { target, step } = this.#autoscaler.decide({
      now,
      lagSeconds: this.#lag.seconds,
      min: d.replicas.min,
      max: d.replicas.max,
      initial: d.replicas.initial,
      partitions: this.#partitions.length,
      held: this.#yieldGate.holding(),
    });
    this.#autoTarget = target;
    if (step) {
      this.#note('info', `autoscale ${step} to ${target} replicas (lag ${this.#lag.seconds.toFixed(1)} s)`);
    }
  }

  #spawn(now: number): boolean {
    if (now < this.#restartPolicy.notBefore) return false;
    const used = new Set(this.live.map((r) => r.replica));
    let replica = 0;
    while (used.has(replica)) replica++;
    const seq = this.#h.nextSeq();
    const memoryMb = this.#description?.memoryMb ?? this.#s.defaultMemoryMb;
    try {
      const r = new ReplicaProcess({
        launch: {
          name: this.name,
          module: this.consumer.module,
          replica,
          dataDir: this.#s.dataDir,
          ...(this.#s.log ? { log: this.#s.log } : {}),
          heartbeatMs: this.#s.heartbeatMs,
          ...(this.#s.niceness ? { niceness: this.#s.niceness } : {}),
          ...(this.#s.failure ? { failure: this.#s.failure } : {}),
          ...(this.#s.offsetReset ? { offsetReset: this.#s.offsetReset } : {}),
        },
        workerEntry: this.#s.workerEntry,
        memoryMb,
        env: this.#description?.env ?? [],
        generation: this.#generation,
        seq,
        log: this.#h.log,
        clock: this.#h.clock,
        onMessage: (rep, message) => this.#onMessage(rep, message),
        onExit: (rep, code, signal) => this.#onExit(rep, code, signal),
      });
      this.#replicas.set(seq, r);
      r.note(
        'info',
        `started replica ${replica} (pid ${r.pid}, generation ${this.#generation}, ${memoryMb} MB)`,
      );
      return true;
    } catch (error) {
      this.#failure.crashed(now, `could not start a replica: ${(error as Error).message}`);
      return false;
    }
  }

  #onMessage(r: ReplicaProcess, message: WorkerToSupervisor): void {
    const now = this.#h.clock();
    switch (message.type) {
      case 'ready':
        if (r.generation >= this.#generation || !this.#description) this.#description = message.description;
        if (!r.ready(message.description, now)) return;
        break;
      case 'heartbeat':
        r.lastHeartbeatAt = now;
        r.lastProgressAt = message.lastProgressAt;
        r.inFlight = message.inFlight;
        r.failing = message.failing === true;
        this.#totals.add(this.name, this.#h, message.counters, message.metrics);
        break;
      case 'revoked':
        r.revoked(message.id);
        r.lastHeartbeatAt = now;
        break;
      case 'fatal':
        r.failure = message.message;
        this.#failure.error(message.message, now);
        r.note('error', `fatal: ${message.message}`);
        break;
      case 'error':
        this.#failure.error(message.message, now);
        break;
      case 'failing':
        this.#failure.failing(r, message, now);
        break;
    }
    // Partitions freed or a replica ready: hand them out now rather than at the next tick.
    if (message.type !== 'heartbeat') this.#assign();
  }

  #onExit(r: ReplicaProcess, code: number | null, signal: NodeJS.Signals | null): void {
    const now = this.#h.clock();
    this.#replicas.delete(r.seq);
    const how = signal ? `signal ${signal}` : `code ${code}`;
    const clean = r.stopRequestedAt !== undefined && code === 0 && r.failure === undefined;
    if (clean) {
      r.note('info', `replica ${r.replica} stopped (${how})`);
    } else if (r.outOfRange) {
      r.note('error', `replica ${r.replica} stopped: stored offsets beyond the log (${how})`);
    } else if (this.#shuttingDown && r.stopRequestedAt !== undefined) {
      r.note('warn', `replica ${r.replica} ended during shutdown (${how})`);
    } else {
      const reason = r.memoryExceeded
        ? `memory limit of ${r.memoryMb} MB exceeded`
        : (r.failure ?? `exited unexpectedly (${how})`);
      r.note('error', `replica ${r.replica} (pid ${r.pid}) ended: ${reason}`);
      if (r.memoryExceeded) {
        this.#h.alert({
          consumer: this.name,
          kind: 'memory',
          message: `replica ${r.replica}: ${reason}`,
          at: now,
        });
      }
      this.#failure.crashed(now, `replica ${r.replica}: ${reason}`, r.hung ? 'hang' : 'crash');
    }
    if (!this.#shuttingDown) this.#assign();
  }

  /** Gives free partitions to their target replicas and revokes those that must move. */
  #assign(): void {
    if (!this.#description) return;
    assignReplicaPartitions(this.#partitions, this.#replicas.values(), () => ++this.#revokeSeq);
  }

  #note(level: 'info' | 'warn' | 'error', msg: string): void {
    supervisorNote(this.#h, level, msg);
  }

  status(): ConsumerStatus {
    return consumerStatus({
      name: this.name,
      description: this.#description,
      live: this.live,
      target: this.#target(),
      shuttingDown: this.#shuttingDown,
      paused: this.#control.paused,
      failure: this.#failure,
      totals: this.#totals,
      lag: this.#lag,
      generation: this.#generation,
      partitions: this.#partitions.length,
      warnings: this.#warnings,
      now: this.#h.clock(),
    });
  }
}
