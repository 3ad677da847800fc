import type { Logger } from 'pino';
import { YieldGate } from './capture-yield.ts';
import type { RotatingLogFile } from './consumer-logs.ts';
import type { ConsumerMetrics } from './consumer-metrics.ts';
import type { ConsumerDescription, WorkerToSupervisor } from './consumer-protocol.ts';
import type { ConsumerAlert, ConsumerControl, ConsumerState, ConsumerStatus } from './control-store.ts';
import type { DiscoveredConsumer } from './discovery.ts';
import { assignPartitions, type PartitionKey } from './partition-assignment.ts';
import { type AutoscaleOptions, LagAutoscaler, RestartPolicy } from './supervisor-policy.ts';
import { ReplicaProcess } from './supervisor-replica.ts';

export interface SupervisionSettings {
  readonly workerEntry: string;
  readonly dataDir: string;
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
}

export interface ConsumerHooks {
  readonly metrics: ConsumerMetrics;
  readonly logger: Logger;
  readonly clock: () => number;
  readonly log: RotatingLogFile;
  alert(alert: Omit<ConsumerAlert, 'id'>): void;
  nextSeq(): number;
}

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
  #failed = false;
  #shuttingDown = false;
  #restarts = 0;
  readonly #restartPolicy: RestartPolicy;
  readonly #autoscaler: LagAutoscaler;
  readonly #yieldGate: YieldGate;
  #lastError: { message: string; at: number } | null = null;
  #revokeSeq = 0;
  #partitions: PartitionKey[] = [];
  #lag = { records: 0, seconds: 0 };
  #processed = 0;
  #failedRecords = 0;
  #deadLettered = 0;
  /** Totals of the handler's own counters (`ctx.metrics.increment`). */
  readonly #custom = new Map<string, number>();
  #autoTarget: number | undefined;

  constructor(consumer: DiscoveredConsumer, settings: SupervisionSettings, hooks: ConsumerHooks) {
    this.consumer = consumer;
    this.#s = settings;
    this.#h = hooks;
    this.#control = { name: consumer.name, replicas: null, paused: false, restartGeneration: 0 };
    this.#restartPolicy = new RestartPolicy(settings);
    this.#autoscaler = new LagAutoscaler(settings.autoscale);
    this.#yieldGate = new YieldGate(settings.dataDir);
  }

  get name(): string {
    return this.consumer.name;
  }

  get description(): ConsumerDescription | undefined {
    return this.#description;
  }

  get failed(): boolean {
    return this.#failed;
  }

  /** Replicas still running (including those draining). */
  get live(): ReplicaProcess[] {
    return [...this.#replicas.values()];
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
    if (this.#failed) {
      this.#failed = false;
      this.#restartPolicy.reset();
    }
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
    this.#checkHealth(now);
    this.#autoscale(now);
    this.#converge(now);
    this.#assign();
    const inFlight = this.live.reduce((n, r) => n + r.inFlight, 0);
    this.#h.metrics.setReplicas(this.name, this.live.filter((r) => r.state !== 'stopping').length, inFlight);
  }

  #target(): number {
    if (this.#failed || this.#shuttingDown || this.#control.paused) return 0;
    if (this.#control.replicas !== null) return this.#control.replicas;
    const d = this.#description;
    if (!d) return 1;
    if (d.replicas.min < d.replicas.max) return this.#autoTarget ?? d.replicas.initial;
    return d.replicas.initial;
  }

  #checkHealth(now: number): void {
    for (const r of this.#replicas.values()) {
      if (r.state === 'starting' && now - r.startedAt > this.#s.startTimeoutMs) {
        r.kill(`not ready within ${this.#s.startTimeoutMs} ms`);
      } else if (r.state === 'ready' || r.state === 'stopping') {
        // Replicas run below the capture: one that only waits for a CPU is starved, not hung.
        if (r.starvation.sample(now)) continue;
        if (now - r.lastHeartbeatAt > this.#s.heartbeatTimeoutMs) {
          r.kill(`no heartbeat for ${now - r.lastHeartbeatAt} ms`);
        } else if (r.inFlight > 0 && now - r.lastProgressAt > this.#s.hangTimeoutMs) {
          r.kill(`hung: ${r.inFlight} records in flight without progress for ${now - r.lastProgressAt} ms`);
          this.#h.alert({
            consumer: this.name,
            kind: 'hung',
            message: `replica ${r.replica} hung (no progress for ${now - r.lastProgressAt} ms); restarted`,
            at: now,
          });
        } else {
          for (const { sentAt } of r.revoking.values()) {
            if (now - sentAt > this.#s.hangTimeoutMs)
              r.kill(`revoke not answered within ${this.#s.hangTimeoutMs} ms`);
          }
        }
        if (
          r.stopRequestedAt !== undefined &&
          now - r.stopRequestedAt > this.#s.hangTimeoutMs + this.#s.heartbeatTimeoutMs
        ) {
          r.kill('did not drain and exit in time');
        }
      }
      if (r.state === 'ready' && r.readyAt !== undefined && now - r.readyAt > this.#s.backoffMaxMs) {
        this.#restartPolicy.healthy();
      }
    }
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

  #converge(now: number): void {
    const target = this.#target();
    const active = this.live.filter((r) => r.state === 'starting' || r.state === 'ready');
    const old = active.filter((r) => r.generation < this.#generation);
    if (old.length > 0 && target > 0) {
      // Rolling: one new replica at a time, then one old one drained, until none is old.
      const busy = this.live.some((r) => r.state === 'starting' || r.state === 'stopping');
      if (busy) return;
      if (active.length < target + 1) this.#spawn(now);
      else old.sort((a, b) => b.replica - a.replica)[0]!.stop();
      return;
    }
    if (active.length < target) {
      for (let i = active.length; i < target; i++) if (!this.#spawn(now)) break;
    } else if (active.length > target) {
      const extra = active
        .sort(
          (a, b) =>
            a.generation - b.generation ||
            Number(a.state === 'ready') - Number(b.state === 'ready') ||
            b.replica - a.replica,
        )
        .slice(0, active.length - target);
      for (const r of extra) r.stop();
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
          heartbeatMs: this.#s.heartbeatMs,
          ...(this.#s.niceness ? { niceness: this.#s.niceness } : {}),
        },
        workerEntry: this.#s.workerEntry,
        memoryMb,
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
      this.#crashed(now, `could not start a replica: ${(error as Error).message}`);
      return false;
    }
  }

  #onMessage(r: ReplicaProcess, message: WorkerToSupervisor): void {
    const now = this.#h.clock();
    switch (message.type) {
      case 'ready': {
        r.description = message.description;
        if (r.generation >= this.#generation || !this.#description) this.#description = message.description;
        r.lastHeartbeatAt = now;
        r.lastProgressAt = now;
        if (message.description.memoryMb !== r.memoryMb && r.state === 'starting') {
          // Started before the consumer said its memory limit: replace it, no partition lost.
          r.note('info', `restarting with the consumer's memory limit (${message.description.memoryMb} MB)`);
          r.stop();
          return;
        }
        if (r.state === 'starting') {
          r.state = 'ready';
          r.readyAt = now;
        }
        break;
      }
      case 'heartbeat':
        r.lastHeartbeatAt = now;
        r.lastProgressAt = message.lastProgressAt;
        r.inFlight = message.inFlight;
        this.#processed += message.counters.processed;
        this.#failedRecords += message.counters.failed;
        this.#deadLettered += message.counters.deadLettered;
        for (const [name, by] of Object.entries(message.metrics ?? {})) {
          // Bounded: a handler inventing names per record must not grow the status forever.
          if (this.#custom.has(name) || this.#custom.size < 100)
            this.#custom.set(name, (this.#custom.get(name) ?? 0) + by);
        }
        this.#h.metrics.addCounters(this.name, message.counters);
        break;
      case 'revoked':
        r.revoked(message.id);
        r.lastHeartbeatAt = now;
        break;
      case 'fatal':
        r.failure = message.message;
        this.#lastError = { message: message.message, at: now };
        r.note('error', `fatal: ${message.message}`);
        break;
      case 'error':
        this.#lastError = { message: message.message, at: now };
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
      this.#crashed(now, `replica ${r.replica}: ${reason}`);
    }
    if (!this.#shuttingDown) this.#assign();
  }

  #crashed(now: number, reason: string): void {
    this.#lastError = { message: reason, at: now };
    this.#restarts++;
    this.#h.metrics.restarted(this.name);
    const decision = this.#restartPolicy.crashed(now);
    if (decision.crashLoop) {
      if (!this.#failed) {
        this.#failed = true;
        const message = `crash loop: ${decision.restartsInWindow} restarts within ${Math.round(this.#s.crashLoopWindowMs / 1000)} s (last: ${reason}); marked failed, not restarted. Fix the code (a change restarts it) or run \`tributary consumers restart ${this.name}\``;
        this.#note('error', message);
        this.#h.logger.error({ consumer: this.name, reason }, 'consumer failed: crash loop');
        this.#h.alert({ consumer: this.name, kind: 'crash_loop', message, at: now });
        for (const r of this.#replicas.values()) r.stop();
      }
      return;
    }
    const delay = decision.delayMs;
    this.#h.logger.warn({ consumer: this.name, reason, restartInMs: delay }, 'consumer replica restarting');
  }

  /** Gives free partitions to their target replicas and revokes those that must move. */
  #assign(): void {
    const d = this.#description;
    if (!d) return;
    const members = this.live.filter((r) => r.state === 'ready' && r.stopRequestedAt === undefined);
    const current = new Map<PartitionKey, number>();
    for (const r of this.#replicas.values()) for (const p of r.owned) current.set(p, r.seq);
    const desired = assignPartitions(
      this.#partitions,
      members.map((r) => r.seq),
      current,
    );
    for (const r of members) {
      const move = [...r.owned].filter((p) => desired.get(p) !== r.seq && !r.isRevoking(p));
      if (move.length > 0) r.revoke(move, ++this.#revokeSeq);
    }
    for (const r of members) {
      const gain = this.#partitions.filter((p) => desired.get(p) === r.seq && !current.has(p));
      if (gain.length > 0) r.assign(gain);
    }
  }

  #note(level: 'info' | 'warn' | 'error', msg: string): void {
    const levels = { info: 30, warn: 40, error: 50 };
    this.#h.log.write({ time: this.#h.clock(), level: levels[level], source: 'supervisor', msg });
  }

  status(): ConsumerStatus {
    const d = this.#description;
    const ready = this.live.filter((r) => r.state === 'ready').length;
    const target = this.#target();
    let state: ConsumerState;
    if (this.#shuttingDown) state = 'stopped';
    else if (this.#failed) state = 'failed';
    else if (this.#control.paused) state = 'paused';
    else if (!d) state = 'starting';
    else state = ready >= target ? 'running' : 'degraded';
    return {
      name: this.name,
      state,
      group: d?.group ?? null,
      topics: d?.topics ?? [],
      replicas: { desired: target, live: this.live.length, ready },
      autoscale: d && d.replicas.min < d.replicas.max ? { min: d.replicas.min, max: d.replicas.max } : null,
      restarts: this.#restarts,
      lag: this.#lag,
      inFlight: this.live.reduce((n, r) => n + r.inFlight, 0),
      processed: this.#processed,
      failed: this.#failedRecords,
      deadLettered: this.#deadLettered,
      crashLooping: this.#failed,
      counters: Object.fromEntries(this.#custom),
      lastError: this.#lastError,
      generation: this.#generation,
      pids: this.live.map((r) => r.pid).filter((p): p is number => p !== undefined),
      partitions: this.#partitions.length,
      updatedAt: this.#h.clock(),
    };
  }
}
