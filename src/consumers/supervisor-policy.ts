/**
 * The supervisor's two decisions that depend only on time and numbers, kept pure (clock passed
 * in) so they are tested without processes: when to restart a crashed replica, and how many
 * replicas a `replicas: {min, max}` consumer should run for its lag.
 */

export interface RestartPolicyOptions {
  readonly backoffInitialMs: number;
  readonly backoffMaxMs: number;
  /** This many crashes within `crashLoopWindowMs` = a crash loop. */
  readonly crashLoopRestarts: number;
  readonly crashLoopWindowMs: number;
}

export type RestartDecision =
  | { readonly crashLoop: false; readonly delayMs: number }
  | { readonly crashLoop: true; readonly restartsInWindow: number; readonly hungInARow?: number };

/**
 * Why a replica is restarted: `crash` (it exited, or died on its memory limit) or `hang` (killed by
 * the supervisor for silence: no heartbeat, no progress with records in flight, a revoke not
 * answered, not ready in time). A hang takes its timeout to detect, which may exceed the whole
 * crash-loop window, so hangs also count in a row: `crashLoopRestarts` hangs with no healthy
 * replica in between are a crash loop however far apart they are.
 */
export type RestartCause = 'crash' | 'hang';

/** Exponential backoff between restarts, and crash-loop detection over a sliding window. */
export class RestartPolicy {
  readonly #o: RestartPolicyOptions;
  #times: number[] = [];
  #consecutive = 0;
  #hungInARow = 0;
  /** No spawn before this time (epoch ms). */
  notBefore = 0;

  constructor(options: RestartPolicyOptions) {
    this.#o = options;
  }

  crashed(now: number, cause: RestartCause = 'crash'): RestartDecision {
    this.#times = this.#times.filter((t) => now - t < this.#o.crashLoopWindowMs);
    this.#times.push(now);
    if (cause === 'hang') this.#hungInARow++;
    if (this.#times.length >= this.#o.crashLoopRestarts || this.#hungInARow >= this.#o.crashLoopRestarts) {
      return {
        crashLoop: true,
        restartsInWindow: this.#times.length,
        ...(this.#hungInARow >= this.#o.crashLoopRestarts ? { hungInARow: this.#hungInARow } : {}),
      };
    }
    const delayMs = Math.min(this.#o.backoffMaxMs, this.#o.backoffInitialMs * 2 ** this.#consecutive);
    this.#consecutive++;
    this.notBefore = now + delayMs;
    return { crashLoop: false, delayMs };
  }

  /** A replica stayed healthy long enough: the next crash starts the backoff over. */
  healthy(): void {
    this.#consecutive = 0;
    this.#hungInARow = 0;
  }

  /** New code or an explicit restart: forget the past crashes. */
  reset(): void {
    this.#times = [];
    this.#consecutive = 0;
    this.#hungInARow = 0;
    this.notBefore = 0;
  }
}

export interface AutoscaleOptions {
  /** Scale up when the time lag stays above this. */
  readonly upLagSeconds: number;
  /** Scale down when the time lag stays below this. */
  readonly downLagSeconds: number;
  /** How long the lag must stay beyond a threshold, and the least time between two steps. */
  readonly cooldownMs: number;
}

/**
 * One replica more while the lag stays above `upLagSeconds`, one less while it stays below
 * `downLagSeconds`, each only after `cooldownMs` beyond the threshold and `cooldownMs` after the
 * previous step (no flapping); never outside `[min, max]`, nor above the partition count (extra
 * replicas would get no partition).
 */
export class LagAutoscaler {
  readonly #o: AutoscaleOptions;
  #target: number | undefined;
  #beyond: { direction: 'up' | 'down'; since: number } | undefined;
  #lastStepAt = Number.NEGATIVE_INFINITY;

  constructor(options: AutoscaleOptions) {
    this.#o = options;
  }

  /** The replica count to run now; `step` says when it just changed. */
  decide(input: {
    now: number;
    lagSeconds: number;
    min: number;
    max: number;
    initial: number;
    partitions: number;
    /** The capture holds the consumers back (capture-yield.ts): their lag says nothing of their pace. */
    held?: boolean;
  }): { target: number; step?: 'up' | 'down' } {
    const { now, lagSeconds, min } = input;
    const max = Math.max(min, Math.min(input.max, input.partitions > 0 ? input.partitions : input.max));
    const current = Math.min(max, Math.max(min, this.#target ?? input.initial));
    this.#target = current;
    const direction = input.held
      ? undefined
      : lagSeconds > this.#o.upLagSeconds && current < max
        ? 'up'
        : lagSeconds < this.#o.downLagSeconds && current > min
          ? 'down'
          : undefined;
    if (!direction) {
      this.#beyond = undefined;
      return { target: current };
    }
    if (this.#beyond?.direction !== direction) this.#beyond = { direction, since: now };
    if (now - this.#beyond.since < this.#o.cooldownMs || now - this.#lastStepAt < this.#o.cooldownMs) {
      return { target: current };
    }
    this.#target = current + (direction === 'up' ? 1 : -1);
    this.#lastStepAt = now;
    this.#beyond = undefined;
    return { target: this.#target, step: direction };
  }

  reset(): void {
    this.#target = undefined;
    this.#beyond = undefined;
  }
}
