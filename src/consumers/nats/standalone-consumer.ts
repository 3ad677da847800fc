/**
 * `tributary consumers run <name> --log nats://...`: one consumer's replicas as a standalone process
 * (what one container runs). Its replicas are the supervisor's worker processes (worker-main.ts,
 * the same runner, retries, dead letters, key lanes), each a member of the consumer's group in the
 * NATS log's KV bucket; the partitions are shared with every other process of the group, on any
 * machine, by group-coordinator.ts. Offsets and dead letters live in that bucket too.
 *
 * Lifecycle: `run(signal)` waits for the log (the capture creates it), starts the replicas, shares
 * partitions every `leaseMs / 4` until `signal` aborts, then drains the replicas (their offsets
 * committed), releases their partitions (others take them at once) and resolves with the exit code.
 * Each tick also reads the consumer's control key (`consumers pause|resume|scale|restart --log`,
 * nats-consumer-control.ts): paused, the replicas per process and a rolling restart
 * (standalone-replica-set.ts).
 *
 * Replica health, as the supervisor of `tributary run` keeps it (supervisor-health.ts,
 * supervisor-policy.ts): a replica above its memory limit, not ready in time, silent or hung is
 * killed; one that exits is started again with the same member id after an exponential backoff
 * (200 ms doubling up to `backoffMaxMs`, reset once a replica stays healthy that long).
 * `crashLoopRestarts` restarts within `crashLoopWindowMs` (or as many hangs in a row) are a crash
 * loop: the process stops its replicas, releases their partitions and exits 1, so the container
 * runtime sees a failing container instead of a healthy-looking one. A stored offset beyond the
 * log (`offsetReset: 'fail'`) also ends it with exit 1 at once.
 */
import type { Logger } from 'pino';
import { NatsEventLog } from '../../log/nats/nats-event-log.ts';
import { NatsLogBucket } from '../../log/nats/nats-log-bucket.ts';
import { parseNatsUrl } from '../../log/nats/nats-names.ts';
import type { NatsLogRef } from '../../log/open-event-log.ts';
import type { ConsumerMetrics } from '../consumer-metrics.ts';
import type { ConsumerDescription, WorkerToSupervisor } from '../consumer-protocol.ts';
import { type PartitionKey, partitionKey } from '../partition-assignment.ts';
import { checkReplicaHealth } from '../supervisor-health.ts';
import { RestartPolicy } from '../supervisor-policy.ts';
import { ReplicaProcess } from '../supervisor-replica.ts';
import type { SupervisionSettings } from '../supervisor-settings.ts';
import { WORKER_ENTRY } from '../worker/worker-path.ts';
import { GroupCoordinator } from './group-coordinator.ts';
import { readNatsControl } from './nats-consumer-control.ts';
import type { StandaloneReplica } from './standalone-replica.ts';
import { StandaloneReplicaSet } from './standalone-replica-set.ts';

export interface StandaloneConsumerOptions {
  readonly name: string;
  /** Absolute path of the consumer module. */
  readonly module: string;
  /** Where replicas keep local files (their logs go to this process's stderr). */
  readonly dataDir: string;
  readonly log: NatsLogRef;
  readonly replicas: number;
  readonly logger: Logger;
  /** A member whose heartbeat is not seen changing for this long is dead. Default 3000 ms. */
  readonly leaseMs?: number;
  readonly heartbeatMs?: number;
  readonly memoryMb?: number;
  readonly failure?: { readonly maxConsecutiveDeadLetters: number; readonly action: 'pause' | 'continue' };
  readonly offsetReset?: 'fail' | 'earliest' | 'latest';
  /** Fed as the supervisor feeds it: counters from heartbeats, replicas, lag (serve it on /metrics). */
  readonly metrics?: ConsumerMetrics;
  /** Health checks and restarts (settings `consumers.*`); defaults are those settings' defaults. */
  readonly health?: Partial<StandaloneHealth>;
}

export type StandaloneHealth = Pick<
  SupervisionSettings,
  | 'heartbeatTimeoutMs'
  | 'hangTimeoutMs'
  | 'startTimeoutMs'
  | 'backoffMaxMs'
  | 'crashLoopRestarts'
  | 'crashLoopWindowMs'
>;

const HEALTH_DEFAULTS: StandaloneHealth = {
  heartbeatTimeoutMs: 10_000,
  hangTimeoutMs: 60_000,
  startTimeoutMs: 30_000,
  backoffMaxMs: 30_000,
  crashLoopRestarts: 5,
  crashLoopWindowMs: 60_000,
};

export class StandaloneConsumer {
  readonly #o: StandaloneConsumerOptions;
  readonly #leaseMs: number;
  readonly #set: StandaloneReplicaSet;
  #description: ConsumerDescription | undefined;
  readonly #health: StandaloneHealth;
  readonly #restarts: RestartPolicy;
  #stopping = false;
  #fatal: string | undefined;

  constructor(options: StandaloneConsumerOptions) {
    this.#o = options;
    this.#leaseMs = options.leaseMs ?? 3000;
    this.#health = { ...HEALTH_DEFAULTS, ...options.health };
    this.#restarts = new RestartPolicy({ backoffInitialMs: 200, ...this.#health });
    this.#set = new StandaloneReplicaSet(options.name, options.replicas, options.logger);
  }

  get members(): readonly string[] {
    return this.#set.all.map((r) => r.member);
  }

  async run(signal: AbortSignal): Promise<number> {
    const { logger } = this.#o;
    const bucket = await NatsLogBucket.open(this.#o.log, { waitMs: Number.POSITIVE_INFINITY, signal });
    const log = await NatsEventLog.open({
      servers: parseNatsUrl(this.#o.log.url),
      name: this.#o.log.name,
      readonly: true,
    });
    let coordinator: GroupCoordinator | undefined;
    let partitions: PartitionKey[] = [];
    let paused = false;
    try {
      for (const r of this.#set.all) this.#spawn(r);
      let warned = 0;
      while (!signal.aborted && this.#fatal === undefined) {
        this.#checkHealth();
        try {
          const control = await readNatsControl(bucket.kv, this.#o.name);
          if (control.paused !== paused) {
            logger.info(
              { consumer: this.#o.name, by: control.by },
              control.paused
                ? 'paused: draining the replicas; their partitions stay theirs'
                : 'resumed: reading from the committed offsets',
            );
          }
          paused = control.paused;
          for (const r of this.#set.all) r.paused = paused;
          const description = this.#description;
          if (description) {
            coordinator ??= new GroupCoordinator({
              kv: bucket.kv,
              group: description.group,
              leaseMs: this.#leaseMs,
              logger,
            });
            partitions = (await log.topics())
              .filter((t) => description.topics.includes(t.topic))
              .flatMap((t) =>
                t.partitions.map((p) => partitionKey({ topic: t.topic, partition: p.partition })),
              );
          }
          const gone = this.#set.scale(control.replicas ?? this.#o.replicas, (r) => this.#spawn(r));
          if (gone.length > 0) {
            await coordinator?.leave(gone, partitions);
            this.#set.remove(gone);
          }
          this.#set.restart(control.restartAt);
          if (description && coordinator) {
            await coordinator.tick(this.#set.all, partitions, paused);
            await this.#measure(log, description.group);
          }
        } catch (error) {
          if (Date.now() - warned > 10_000) logger.warn({ err: error }, 'cannot share partitions; retrying');
          warned = Date.now();
        }
        await sleep(this.#leaseMs / 4, signal);
      }
    } finally {
      this.#stopping = true;
      await this.#stopReplicas();
      await coordinator?.leave(this.#set.all, partitions).catch((error: unknown) => {
        logger.warn(
          { err: error },
          'cannot release the partitions (others take them once the lease runs out)',
        );
      });
      await log.close();
      await bucket.close();
    }
    if (this.#fatal !== undefined) {
      logger.error({ consumer: this.#o.name }, this.#fatal);
      return 1;
    }
    logger.info({ consumer: this.#o.name }, 'consumer stopped');
    return 0;
  }

  /** Replicas, records in flight and the group's lag (all processes), into the metrics. */
  async #measure(log: NatsEventLog, group: string): Promise<void> {
    const metrics = this.#o.metrics;
    if (!metrics) return;
    const ready = this.#set.all.filter((r) => r.ready);
    metrics.setReplicas(
      this.#o.name,
      ready.length,
      ready.reduce((n, r) => n + (r.process?.inFlight ?? 0), 0),
    );
    const lag = await log.lag(group);
    // The age of the oldest uncommitted record is not known here without reading it: 0.
    metrics.setLag(
      this.#o.name,
      lag.reduce((n, p) => n + p.records, 0),
      0,
    );
  }

  #spawn(r: StandaloneReplica): void {
    const d = this.#description;
    r.spawnedAt = Date.now();
    r.process = new ReplicaProcess({
      launch: {
        name: this.#o.name,
        module: this.#o.module,
        replica: r.replica,
        dataDir: this.#o.dataDir,
        log: this.#o.log,
        member: r.member,
        heartbeatMs: this.#o.heartbeatMs ?? 1000,
        ...(this.#o.failure ? { failure: this.#o.failure } : {}),
        ...(this.#o.offsetReset ? { offsetReset: this.#o.offsetReset } : {}),
      },
      workerEntry: WORKER_ENTRY,
      memoryMb: d?.memoryMb ?? this.#o.memoryMb ?? 512,
      env: d?.env ?? [],
      generation: 1,
      seq: r.replica,
      log: {
        write: (entry) => process.stderr.write(`${JSON.stringify({ consumer: this.#o.name, ...entry })}\n`),
      },
      clock: Date.now,
      onMessage: (p, m) => this.#onMessage(r, p, m),
      onExit: (p, code, sig) => {
        if (r.process !== p) return;
        const how = `replica ${r.replica} exited (code ${code}, signal ${sig})${p.failure ? `: ${p.failure}` : ''}`;
        p.note(code === 0 ? 'info' : 'warn', how);
        if (this.#stopping || this.#fatal !== undefined || r.retiring) return;
        if (p.outOfRange) {
          this.#fatal = p.failure ?? 'stored offsets beyond the end of the log';
          return;
        }
        // Replaced to apply the consumer's memory limit and environment: no crash.
        const planned = p.stopRequestedAt !== undefined && p.failure === undefined;
        const decision = planned
          ? { crashLoop: false as const, delayMs: 0 }
          : this.#restarts.crashed(Date.now(), p.hung ? 'hang' : 'crash');
        if (decision.crashLoop) {
          const window = Math.round(this.#health.crashLoopWindowMs / 1000);
          this.#fatal = `consumer ${this.#o.name} is crash-looping (${decision.hungInARow !== undefined ? `${decision.hungInARow} hangs in a row` : `${decision.restartsInWindow} restarts within ${window} s`}; last: ${how}): stopping this process`;
          return;
        }
        this.#o.metrics?.restarted(this.#o.name);
        if (!planned) p.note('info', `restarting replica ${r.replica} in ${decision.delayMs} ms`);
        setTimeout(() => {
          if (!this.#stopping && this.#fatal === undefined && r.process === p) this.#spawn(r);
        }, decision.delayMs).unref();
      },
    });
    r.process.note('info', `started replica ${r.replica} (pid ${r.process.pid}, member ${r.member})`);
  }

  /** Kills replicas that are silent, hung or above their memory (their exits then restart them). */
  #checkHealth(): void {
    const live = this.#set.all.map((r) => r.process).filter((p): p is ReplicaProcess => p?.alive === true);
    const healthy = checkReplicaHealth(
      this.#o.name,
      live,
      this.#health,
      { alert: (a) => this.#o.logger.warn({ consumer: a.consumer, kind: a.kind }, a.message) },
      Date.now(),
    );
    if (healthy) this.#restarts.healthy();
  }

  #onMessage(r: StandaloneReplica, p: ReplicaProcess, m: WorkerToSupervisor): void {
    const now = Date.now();
    switch (m.type) {
      case 'ready': {
        this.#description ??= m.description;
        const d = m.description;
        p.description = d;
        if (d.memoryMb !== p.memoryMb || (d.env ?? []).join() !== p.env.join()) {
          // Started before the consumer said its memory limit and environment: replace it.
          this.#description = d;
          p.note('info', 'restarting with the consumer’s memory limit and environment');
          p.stop();
          return;
        }
        p.state = 'ready';
        p.readyAt = now;
        break;
      }
      case 'heartbeat':
        p.lastHeartbeatAt = now;
        p.lastProgressAt = m.lastProgressAt;
        p.inFlight = m.inFlight;
        r.totals.processed += m.counters.processed;
        r.totals.failed += m.counters.failed;
        r.totals.retried += m.counters.retried;
        r.totals.deadLettered += m.counters.deadLettered;
        this.#o.metrics?.addCounters(this.#o.name, m.counters);
        for (const [name, by] of Object.entries(m.metrics ?? {}))
          this.#o.metrics?.addCustom(this.#o.name, name, by);
        break;
      case 'revoked':
        p.revoked(m.id);
        p.lastHeartbeatAt = now;
        break;
      case 'fatal':
        // A module that cannot load will not load on the next start either.
        this.#fatal = `consumer ${this.#o.name} cannot start: ${m.message}`;
        break;
      case 'failing':
        p.note('error', m.message);
        if (m.reason === 'offset_out_of_range') {
          p.outOfRange = true;
          p.failure = m.message;
        }
        break;
      case 'error':
        p.note('error', m.message);
        break;
    }
  }

  async #stopReplicas(): Promise<void> {
    const running = this.#set.all.map((r) => r.process).filter((p): p is ReplicaProcess => p?.alive === true);
    await Promise.all(
      running.map(
        (p) =>
          new Promise<void>((resolve) => {
            if (!p.alive) return resolve();
            const timer = setTimeout(() => p.kill('did not stop within 20 s'), 20_000);
            p.child.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            p.stop();
          }),
      ),
    );
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
