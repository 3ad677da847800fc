import type { StoredRecord } from '../../core/record.ts';
import { type LaneMode, LaneQueue, laneOf } from './key-lanes.ts';

interface Lane {
  readonly queue: LaneQueue;
  running: boolean;
  timer: NodeJS.Timeout | undefined;
}

export interface LaneSchedulerOptions {
  readonly lanes: number;
  readonly mode: LaneMode;
  readonly maxRecords: number;
  readonly maxWaitMs: number;
  readonly clock: () => number;
  /** No batch may start now (aborted, halted, or stopping with nothing to drain). */
  blocked(): boolean;
  /** A revocation is under way: batches start without waiting to fill. */
  draining(): boolean;
  /**
   * Runs one batch; the lane takes its next batch once it settles. `dropWaiting` removes records
   * still waiting in this batch's lane (behind it: later records of the same keys). `upcoming`
   * gives the lane's next batch when it already waits in full (else nothing), for work ahead.
   */
  execute(
    batch: StoredRecord[],
    dropWaiting: (match: (r: StoredRecord) => boolean) => void,
    upcoming: () => StoredRecord[],
  ): Promise<void>;
}

/**
 * The key lanes of a replica: each runs one batch at a time, taken when `maxRecords` wait or the
 * oldest waited `maxWaitMs`; the records of one key (or, by mode, one partition) stay in one lane.
 */
export class LaneScheduler {
  readonly #o: LaneSchedulerOptions;
  readonly #lanes: Lane[];

  constructor(options: LaneSchedulerOptions) {
    this.#o = options;
    this.#lanes = Array.from({ length: options.lanes }, () => ({
      queue: new LaneQueue(),
      running: false,
      timer: undefined,
    }));
  }

  /** Queues records read from one partition (offset order). */
  push(records: readonly StoredRecord[], now: number, skip: (r: StoredRecord) => boolean): void {
    const lanes = this.#lanes;
    // One lane for the whole read when lanes go by partition (or there is one lane).
    const single =
      lanes.length === 1 || this.#o.mode === 'partition'
        ? lanes[laneOf(records[0]!, lanes.length, this.#o.mode)]!
        : undefined;
    for (const r of records) {
      if (skip(r)) continue;
      (single ?? lanes[laneOf(r, lanes.length, 'key')]!).queue.push(r, now);
    }
  }

  /** Starts a batch in every lane that may start one. */
  pumpAll(): void {
    for (const lane of this.#lanes) this.#pump(lane);
  }

  /** Some record waiting in a lane matches. */
  waiting(match: (r: StoredRecord) => boolean): boolean {
    return this.#lanes.some((lane) => lane.queue.some(match));
  }

  remove(match: (r: StoredRecord) => boolean): void {
    for (const lane of this.#lanes) lane.queue.remove(match);
  }

  clearTimers(): void {
    for (const lane of this.#lanes) clearTimeout(lane.timer);
  }

  #pump(lane: Lane): void {
    if (lane.running || lane.queue.size === 0 || this.#o.blocked()) return;
    const now = this.#o.clock();
    const wait = this.#o.maxWaitMs - (now - lane.queue.since);
    const draining = this.#o.draining();
    // A revocation does not wait for batches to fill.
    if (!draining && lane.queue.size < this.#o.maxRecords && wait > 0) {
      if (lane.timer === undefined) {
        lane.timer = setTimeout(() => {
          lane.timer = undefined;
          this.#pump(lane);
        }, wait);
      }
      return;
    }
    clearTimeout(lane.timer);
    lane.timer = undefined;
    const batch = lane.queue.take(this.#o.maxRecords, now);
    lane.running = true;
    void this.#o
      .execute(
        batch,
        (match) => lane.queue.remove(match),
        // Only a full batch is sure to be the next one as it is now (a partial one grows).
        () => (lane.queue.size >= this.#o.maxRecords ? lane.queue.peek(this.#o.maxRecords) : []),
      )
      .finally(() => {
        lane.running = false;
        this.#pump(lane);
      });
  }
}
