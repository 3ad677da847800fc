/**
 * Promises that settle once a condition holds, checked again at each `notify` (a batch finished,
 * the shutdown grace ran out): a revocation waits for its partitions' batches this way.
 */
export class ConditionWaiters {
  readonly #waiters = new Set<() => void>();

  until(condition: () => boolean): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => {
        if (condition()) {
          this.#waiters.delete(check);
          resolve();
        }
      };
      this.#waiters.add(check);
    });
  }

  notify(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }
}
