import type { WorkerToSupervisor } from './consumer-protocol.ts';
import type { ConsumerFailure, ConsumerStatus } from './control-store.ts';
import type { RestartCause, RestartPolicy } from './supervisor-policy.ts';
import type { ReplicaProcess } from './supervisor-replica.ts';
import { type ConsumerHooks, type SupervisionSettings, supervisorNote } from './supervisor-settings.ts';

type Failing = Extract<WorkerToSupervisor, { type: 'failing' }>;

/**
 * What went wrong with one consumer, and what follows from it: a crash loop or stored offsets
 * beyond the log mark it failed (no replica until new code or `consumers restart`); the
 * dead-letter threshold halts it (paused until `consumers resume`) or only flags it failing.
 * Keeps the last error, counts the restarts, and raises one alert per episode.
 */
export class ConsumerFailureState {
  readonly #name: string;
  readonly #s: SupervisionSettings;
  readonly #h: ConsumerHooks;
  readonly #policy: RestartPolicy;
  /** The replicas to stop when the consumer fails or halts. */
  readonly #live: () => Iterable<ReplicaProcess>;
  #failed = false;
  #restarts = 0;
  #lastError: { message: string; at: number } | null = null;
  /**
   * Why the consumer cannot make progress as it should: the dead-letter threshold (halted =
   * paused until resumed) or a stored offset beyond the log (failed until restarted).
   */
  #failure: (ConsumerFailure & { pausedSeen: boolean }) | undefined;

  constructor(
    name: string,
    settings: SupervisionSettings,
    hooks: ConsumerHooks,
    policy: RestartPolicy,
    live: () => Iterable<ReplicaProcess>,
  ) {
    this.#name = name;
    this.#s = settings;
    this.#h = hooks;
    this.#policy = policy;
    this.#live = live;
    // Halted on dead letters before a restart: still halted (and paused), until resumed. Seen
    // paused already, so a resume while no supervisor ran takes effect at the first tick.
    const saved = hooks.savedFailure;
    if (saved?.failure.reason === 'dead_letters' && saved.failure.halted) {
      this.#failure = { ...saved.failure, pausedSeen: true };
      this.#lastError = saved.lastError;
    }
  }

  /** Crash loop or offsets beyond the log: no replica runs. */
  get failed(): boolean {
    return this.#failed;
  }

  /** Nothing may be handled: failed, or paused by the dead-letter threshold. */
  get halted(): boolean {
    return this.#failure?.halted === true;
  }

  get restarts(): number {
    return this.#restarts;
  }

  /** New code or `consumers restart`: a failed consumer gets a new chance. */
  newGeneration(): void {
    if (!this.#failed) return;
    this.#failed = false;
    this.#policy.reset();
    if (this.#failure?.reason === 'offset_out_of_range' || this.#failure?.reason === 'target_stopped')
      this.#failure = undefined;
  }

  error(message: string, now: number): void {
    this.#lastError = { message, at: now };
  }

  /** A consumer paused by the dead-letter threshold runs again once resumed (paused, then not). */
  checkResumed(paused: boolean): void {
    const f = this.#failure;
    if (!f?.halted || f.reason !== 'dead_letters') return;
    if (paused) f.pausedSeen = true;
    else if (f.pausedSeen) {
      this.#failure = undefined;
      this.#h.saveFailure(null);
      supervisorNote(
        this.#h,
        'info',
        'resumed after the dead-letter threshold: retrying from the first record not handled',
      );
    }
  }

  /** A replica reports the dead-letter threshold or stored offsets beyond the log. */
  failing(r: ReplicaProcess, f: Failing, now: number): void {
    this.error(f.message, now);
    r.note('error', f.message);
    if (f.reason === 'offset_out_of_range') {
      r.outOfRange = true;
      r.failure = f.message;
      if (!this.#failed) {
        this.#failed = true;
        this.#failure = { reason: f.reason, message: f.message, at: now, halted: true, pausedSeen: false };
        this.#h.logger.error({ consumer: this.#name }, f.message);
        this.#h.alert({ consumer: this.#name, kind: 'offset_out_of_range', message: f.message, at: now });
        for (const other of this.#live()) other.stop();
      }
      return;
    }
    if (f.reason === 'target_stopped') {
      // The target cannot take the stream (ConsumerStopError): failed until restarted, never retried.
      if (!this.#failed) {
        const message = `${f.message}; stopped: fix the cause, then \`tributary consumers restart ${this.#name}\``;
        this.#failed = true;
        this.#failure = { reason: f.reason, message, at: now, halted: true, pausedSeen: false };
        this.#lastError = { message, at: now };
        this.#h.logger.error({ consumer: this.#name }, message);
        this.#h.alert({ consumer: this.#name, kind: 'target_stopped', message, at: now });
        for (const other of this.#live()) other.stop();
      }
      return;
    }
    if (!f.halted) r.failing = true;
    // One report per episode: the other replicas may trip too before the pause reaches them.
    if (this.#failure?.reason === 'dead_letters' && this.#failure.halted) return;
    const message = f.halted
      ? `${f.message}; paused: fix the handler (or the downstream), then \`tributary consumers resume ${this.#name}\` retries from the first record not dead-lettered`
      : `${f.message}; going on (failure.action continue)`;
    if (f.halted) {
      this.#failure = { reason: f.reason, message, at: now, halted: true, pausedSeen: false };
      this.#h.pause();
      this.#h.saveFailure({
        failure: { reason: f.reason, message, at: now, halted: true },
        lastError: this.#lastError,
      });
      for (const other of this.#live()) other.stop();
    }
    this.#h.logger.error({ consumer: this.#name }, `consumer failing: ${message}`);
    this.#h.alert({ consumer: this.#name, kind: 'failing', message, at: now });
  }

  /** A replica ended without being asked to (or could not start): back off, or fail on a loop. */
  crashed(now: number, reason: string, cause: RestartCause = 'crash'): void {
    this.error(reason, now);
    this.#restarts++;
    this.#h.metrics.restarted(this.#name);
    const decision = this.#policy.crashed(now, cause);
    if (decision.crashLoop) {
      if (!this.#failed) {
        this.#failed = true;
        const loop = decision.hungInARow
          ? `${decision.hungInARow} hang restarts in a row with no healthy replica between`
          : `${decision.restartsInWindow} restarts within ${Math.round(this.#s.crashLoopWindowMs / 1000)} s`;
        const message = `crash loop: ${loop} (last: ${reason}); marked failed, not restarted. Fix the code (a change restarts it) or run \`tributary consumers restart ${this.#name}\``;
        supervisorNote(this.#h, 'error', message);
        this.#h.logger.error({ consumer: this.#name, reason }, 'consumer failed: crash loop');
        this.#h.alert({ consumer: this.#name, kind: 'crash_loop', message, at: now });
        for (const r of this.#live()) r.stop();
      }
      return;
    }
    const delay = decision.delayMs;
    this.#h.logger.warn({ consumer: this.#name, reason, restartInMs: delay }, 'consumer replica restarting');
  }

  /** The failure fields of the status; `replicaFailing`: a replica going on past the threshold. */
  report(
    replicaFailing: boolean,
  ): Pick<ConsumerStatus, 'crashLooping' | 'failure' | 'lastError'> & { failing: boolean } {
    const f = this.#failure;
    const failing = f?.reason === 'dead_letters' || replicaFailing;
    return {
      failing,
      crashLooping: this.#failed && f === undefined,
      failure: f
        ? { reason: f.reason, message: f.message, at: f.at, paused: f.halted }
        : failing
          ? {
              reason: 'dead_letters',
              message: this.#lastError?.message ?? 'dead-letter threshold reached',
              at: this.#lastError?.at ?? this.#h.clock(),
              paused: false,
            }
          : null,
      lastError: this.#lastError,
    };
  }
}
