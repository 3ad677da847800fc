/**
 * Notices when this process's event loop did not run for a while: a timer due every `tickMs`
 * fires late by the stall (a synchronous hog, swapping, a SIGSTOP, a VM pause). While the loop is
 * stalled nothing can report it; the stall is measured when the loop runs again, and kept for
 * `holdMs` so that the alert rules (evaluated every few seconds) see it and say it happened.
 */
export class EventLoopStallWatch {
  readonly #tickMs: number;
  readonly #clock: () => number;
  #last: number;
  #timer: NodeJS.Timeout | undefined;
  /** The longest recent stall: its length and when the loop ran again. */
  #stall: { ms: number; at: number } | undefined;

  constructor(options: { tickMs?: number; clock?: () => number } = {}) {
    this.#tickMs = options.tickMs ?? 250;
    this.#clock = options.clock ?? Date.now;
    this.#last = this.#clock();
  }

  start(): void {
    if (this.#timer) return;
    this.#last = this.#clock();
    this.#timer = setInterval(() => this.tick(), this.#tickMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** One timer tick (public for tests with an injected clock). */
  tick(): void {
    const now = this.#clock();
    const late = now - this.#last - this.#tickMs;
    this.#last = now;
    if (late > 0 && (!this.#stall || late >= this.#stall.ms || now - this.#stall.at > 60_000))
      this.#stall = { ms: late, at: now };
  }

  /** The longest stall that ended within the last `holdMs`, or null. */
  recent(holdMs: number): { ms: number; at: number } | null {
    if (!this.#stall || this.#clock() - this.#stall.at > holdMs) return null;
    return this.#stall;
  }
}
