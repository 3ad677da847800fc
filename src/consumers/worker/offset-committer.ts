import type { Logger } from 'pino';
import type { ConsumerState } from '../consumer-state.ts';
import type { PartitionState } from './partition-table.ts';

/** How long finished records wait before their partition's offset is committed (one write for many batches). */
const COMMIT_DELAY_MS = 100;

/**
 * Commits the offsets of a replica's partitions: per partition the lowest contiguous finished
 * offset (at-least-once), at most every `COMMIT_DELAY_MS`, or at once for a revocation. For
 * transactional consumers it only mirrors the target's offsets (for lag).
 */
export class OffsetCommitter {
  readonly #store: ConsumerState;
  readonly #group: string;
  readonly #logger: Logger;
  readonly #partitions: () => Iterable<PartitionState>;
  #timer: NodeJS.Timeout | undefined;
  /** `schedule` was called while a commit was being written: commit again once it is done. */
  #again = false;

  constructor(
    store: ConsumerState,
    group: string,
    logger: Logger,
    partitions: () => Iterable<PartitionState>,
  ) {
    this.#store = store;
    this.#group = group;
    this.#logger = logger;
    this.#partitions = partitions;
  }

  /**
   * Commits soon (a failed write is retried). Records finished while a commit is being written
   * (an asynchronous store: NATS, a network round trip) are committed by another write after it:
   * without that, the last records of a partition stayed uncommitted until its revocation (the
   * group's lag stuck above 0 with nothing left to handle).
   */
  schedule(): void {
    if (this.#timer !== undefined) {
      this.#again = true;
      return;
    }
    this.#again = false;
    this.#timer = setTimeout(() => {
      void this.flush([...this.#partitions()]).then(
        () => {
          this.#timer = undefined;
          if (this.#again) this.schedule();
        },
        (error: unknown) => {
          this.#logger.warn({ err: error }, 'cannot commit offsets; retrying');
          this.#timer = undefined;
          this.schedule();
        },
      );
    }, COMMIT_DELAY_MS);
  }

  /** Commits the watermark of the partitions that moved, now. */
  async flush(states: readonly PartitionState[]): Promise<void> {
    const moved = states
      .filter((s) => s.progress.committable > s.committed)
      .map((s) => ({ state: s, offset: s.progress.committable }));
    if (moved.length === 0) return;
    await this.#store.commit(
      this.#group,
      moved.map(({ state, offset }) => ({ topic: state.ref.topic, partition: state.ref.partition, offset })),
    );
    for (const { state, offset } of moved) state.committed = Math.max(state.committed, offset);
  }

  cancel(): void {
    clearTimeout(this.#timer);
  }
}
