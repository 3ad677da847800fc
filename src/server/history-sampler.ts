import type { ControlPlaneDeps } from './control-plane-deps.ts';

/** One point of the dashboard's charts; totals, so that rates survive a missed sample. */
export interface HistorySample {
  /** Epoch milliseconds. */
  readonly t: number;
  readonly records: number | null;
  readonly slotLagBytes: number | null;
  readonly consumers: { readonly [name: string]: { lagRecords: number; processed: number } };
}

/**
 * Keeps the last minutes of samples in memory, so that a freshly opened dashboard draws its
 * charts at once. Bounded: `capacity` samples (default 150 × 2 s = 5 minutes).
 */
export class HistorySampler {
  readonly #samples: HistorySample[] = [];
  readonly #capacity: number;
  readonly #intervalMs: number;
  readonly #deps: () => Partial<ControlPlaneDeps>;
  #timer: NodeJS.Timeout | undefined;
  #busy = false;

  constructor(
    deps: () => Partial<ControlPlaneDeps>,
    options: { intervalMs?: number; capacity?: number } = {},
  ) {
    this.#deps = deps;
    this.#intervalMs = options.intervalMs ?? 2000;
    this.#capacity = options.capacity ?? 150;
  }

  get intervalMs(): number {
    return this.#intervalMs;
  }

  start(): void {
    if (this.#timer) return;
    void this.sample();
    this.#timer = setInterval(() => void this.sample(), this.#intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  samples(since = 0): readonly HistorySample[] {
    return this.#samples.filter((s) => s.t > since);
  }

  async sample(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      const deps = this.#deps();
      const consumers: { [name: string]: { lagRecords: number; processed: number } } = {};
      if (deps.supervisor) {
        for (const c of await deps.supervisor.list().catch(() => [])) {
          consumers[c.name] = { lagRecords: c.lagRecords, processed: c.processed };
        }
      }
      this.#samples.push({
        t: Date.now(),
        records: deps.capture ? deps.capture.capture.stats.records : null,
        slotLagBytes: deps.capture?.slotState()?.lagBytes ?? null,
        consumers,
      });
      if (this.#samples.length > this.#capacity) this.#samples.shift();
    } finally {
      this.#busy = false;
    }
  }
}
