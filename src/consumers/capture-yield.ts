import { readYieldLease } from '../capture/yield-lease.ts';

// The lease file belongs to the capture, which writes it; these names stay importable from here.
export { readYieldLease, writeYieldLease, YIELD_FILE, YIELD_LEASE_MS } from '../capture/yield-lease.ts';

/**
 * The replica's side: `holding()` says whether the capture asks it to wait before its next read.
 * The file is read at most once per `recheckMs` (a replica at the end of its partitions asks
 * every few milliseconds).
 */
export class YieldGate {
  readonly #dataDir: string;
  readonly #clock: () => number;
  readonly #recheckMs: number;
  #until = 0;
  #checkedAt = Number.NEGATIVE_INFINITY;

  constructor(dataDir: string, options: { clock?: () => number; recheckMs?: number } = {}) {
    this.#dataDir = dataDir;
    this.#clock = options.clock ?? Date.now;
    this.#recheckMs = options.recheckMs ?? 20;
  }

  holding(): boolean {
    const now = this.#clock();
    if (now - this.#checkedAt >= this.#recheckMs) {
      this.#checkedAt = now;
      this.#until = readYieldLease(this.#dataDir);
    }
    return now < this.#until;
  }
}
