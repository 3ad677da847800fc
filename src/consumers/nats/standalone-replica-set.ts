import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { StandaloneReplica } from './standalone-replica.ts';

/**
 * The replicas of one `consumers run` process (standalone-consumer.ts): their member ids
 * (`<host>-<pid>-<random>-<index>`, kept across restarts of a replica's worker), how many run
 * (`consumers scale --log`) and the rolling restart (`consumers restart --log`). Starting a worker
 * and releasing a replica's entries in the bucket are the caller's.
 */
export class StandaloneReplicaSet {
  #replicas: StandaloneReplica[];
  readonly #prefix = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  /** Restart requests at or before this are done (or came before this process started). */
  #restartSeen = Date.now();

  constructor(
    private readonly consumer: string,
    count: number,
    private readonly logger: Logger,
  ) {
    this.#replicas = Array.from({ length: count }, (_, i) => this.#replica(i));
  }

  get all(): readonly StandaloneReplica[] {
    return this.#replicas;
  }

  /**
   * Starts replicas (with `spawn`) up to `desired`, or retires the highest-numbered ones: a
   * retired replica is stopped as at a shutdown (drained, committed; not ready, so the coordinator
   * releases its partitions) and never started again. Returns the retired replicas whose worker
   * has exited: the caller releases their entries in the bucket, then calls `remove`.
   */
  scale(desired: number, spawn: (r: StandaloneReplica) => void): StandaloneReplica[] {
    const active = this.#replicas.filter((r) => !r.retiring).sort((a, b) => a.replica - b.replica);
    for (let n = active.length; n < desired; n++) {
      const used = new Set(this.#replicas.map((r) => r.replica));
      let index = 0;
      while (used.has(index)) index++;
      const r = this.#replica(index);
      this.#replicas.push(r);
      this.logger.info({ consumer: this.consumer, replicas: desired }, `scaling up: replica ${index}`);
      spawn(r);
    }
    for (const r of active.slice(desired)) {
      r.retiring = true;
      this.logger.info({ consumer: this.consumer, replicas: desired }, `scaling down: replica ${r.replica}`);
      r.process?.stop();
    }
    return this.#replicas.filter((r) => r.retiring && r.process?.alive !== true);
  }

  remove(gone: readonly StandaloneReplica[]): void {
    this.#replicas = this.#replicas.filter((r) => !gone.includes(r));
  }

  /**
   * The replicas whose worker started before `requestedAt` are replaced one at a time, each once
   * every other replica is ready (a planned stop: drained, committed, started again at once with
   * the same member id, so it keeps its partitions).
   */
  restart(requestedAt: number | null): void {
    if (requestedAt !== null && requestedAt > this.#restartSeen) {
      this.#restartSeen = requestedAt;
      for (const r of this.#replicas) if (!r.retiring && r.spawnedAt < requestedAt) r.restartPending = true;
    }
    const live = this.#replicas.filter((r) => !r.retiring);
    if (live.some((r) => !r.ready)) return;
    const next = live.find((r) => r.restartPending);
    if (!next?.process) return;
    next.restartPending = false;
    next.process.note('info', `restarting replica ${next.replica} (consumers restart)`);
    next.process.stop();
  }

  #replica(index: number): StandaloneReplica {
    return new StandaloneReplica(index, `${this.#prefix}-${index}`, this.consumer);
  }
}
