/**
 * Tells a consumer that fails every record from one that met a few bad records: counts the dead
 * letters since the last record handled successfully, and trips at `maxConsecutiveDeadLetters`.
 *
 * - `pause`: once tripped the replica is `halted` for the rest of its life: no record is
 *   dead-lettered any more (the one that would have been stays uncommitted, with everything after
 *   it), so at most `maxConsecutiveDeadLetters` records go to the dead letters of one replica; the
 *   supervisor then pauses the consumer, and a resume starts from the first record not handled.
 * - `continue`: the replica goes on dead-lettering; the gate reports `failing` until a record is
 *   handled again, and trips again (a new report) on the next streak.
 *
 * Lanes run concurrently but on one thread: `mayDeadLetter` and `deadLettered` are called with
 * no await in between, so the bound is exact.
 */
export interface DeadLetterGateOptions {
  /** 0 = never trips. */
  readonly maxConsecutiveDeadLetters: number;
  readonly action: 'pause' | 'continue';
  /** Called once per trip, with the last error. */
  readonly onTrip: (trip: { message: string; halted: boolean }) => void;
  /** Called once when a handler asked the consumer to stop (`ConsumerStopError`). */
  readonly onStop?: (message: string) => void;
}

export class DeadLetterGate {
  readonly #o: DeadLetterGateOptions;
  #streak = 0;
  #tripped = false;
  #halted = false;

  constructor(options: DeadLetterGateOptions) {
    this.#o = options;
  }

  /** The gate of a consumer: its own `failure` option, else the settings' defaults, else 10 in a row and pause. */
  static forConsumer(
    own: { readonly maxConsecutiveDeadLetters?: number; readonly action?: 'pause' | 'continue' },
    defaults: Partial<Pick<DeadLetterGateOptions, 'maxConsecutiveDeadLetters' | 'action'>> | undefined,
    onTrip: DeadLetterGateOptions['onTrip'],
    onStop?: DeadLetterGateOptions['onStop'],
  ): DeadLetterGate {
    const fallback = { maxConsecutiveDeadLetters: 10, action: 'pause' as const, ...defaults };
    return new DeadLetterGate({
      maxConsecutiveDeadLetters: own.maxConsecutiveDeadLetters ?? fallback.maxConsecutiveDeadLetters,
      action: own.action ?? fallback.action,
      onTrip,
      ...(onStop ? { onStop } : {}),
    });
  }

  /** Handles nothing more: the threshold was reached with `action: 'pause'`. */
  get halted(): boolean {
    return this.#halted;
  }

  /** The threshold is reached and no record was handled since. */
  get failing(): boolean {
    return this.#tripped;
  }

  get streak(): number {
    return this.#streak;
  }

  /** Whether the next failed record may go to the dead letters (false once halted). */
  mayDeadLetter(): boolean {
    return !this.#halted;
  }

  deadLettered(error: string): void {
    this.#streak++;
    const limit = this.#o.maxConsecutiveDeadLetters;
    if (limit <= 0 || this.#tripped || this.#streak < limit) return;
    this.#tripped = true;
    this.#halted = this.#o.action === 'pause';
    this.#o.onTrip({
      message: `${this.#streak} records dead-lettered in a row (failure threshold ${limit}); last error: ${error}`,
      halted: this.#halted,
    });
  }

  /**
   * The target cannot take the stream any more (`ConsumerStopError`): the replica handles nothing
   * more and keeps the records for after a restart, whatever the `action`.
   */
  stop(message: string): void {
    if (this.#halted) return;
    this.#tripped = true;
    this.#halted = true;
    this.#o.onStop?.(message);
  }

  /** A record was handled: the streak ends (a halted replica stays halted). */
  succeeded(): void {
    this.#streak = 0;
    if (!this.#halted) this.#tripped = false;
  }
}
