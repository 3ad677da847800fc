import type { Logger } from 'pino';
import type { EventLog } from '../../core/event-log.ts';
import type { StoredRecord } from '../../core/record.ts';
import { type PartitionState, pausePartition } from './partition-table.ts';

/** A read of fewer records than this is followed by a `pollMinMs` wait rather than a read at once. */
const SMALL_READ = 100;

/**
 * How often a replica held back by the capture looks whether it may read again: each look wakes
 * the process, and on a machine whose cores the capture keeps busy every wake-up costs it (five
 * held replicas waking 20 times a second cost a capture on two cores ~7 %; frozen, nothing).
 */
const YIELD_POLL_MS = 250;

/** Reads failing without a break for this long end the replica (to be restarted). */
const READ_FAILURE_LIMIT_MS = 30_000;

export interface PartitionReaderContext {
  readonly log: EventLog;
  readonly logger: Logger;
  readonly clock: () => number;
  readonly pollMinMs: number;
  readonly pollMaxMs: number;
  /** Records read and not yet finished, per partition, at most. */
  readonly maxBuffered: number;
  /** Says when the capture asks consumers to stand aside: no read starts while it holds. */
  readonly hold: CaptureHold;
  /** False once the replica stops or halts: reading ends. */
  running(): boolean;
  onFatal?(error: Error): void;
  /** Hands the records read to the lanes. */
  onRecords(state: PartitionState, records: readonly StoredRecord[]): void;
}

/**
 * Reads one partition at the replica's own pace until it is revoked (or the replica stops):
 * bounded by `maxBuffered` records outstanding, with a short polling backoff at the end.
 */
export async function readPartition(state: PartitionState, c: PartitionReaderContext): Promise<void> {
  const min = c.pollMinMs;
  let backoff = min;
  let failingSince: number | undefined;
  while (!state.revoked && c.running()) {
    if (c.hold.holding()) {
      await new Promise<void>((resolve) => {
        state.wake = resolve;
        void c.hold.released().then(resolve);
      });
      continue;
    }
    const room = c.maxBuffered - state.progress.outstanding;
    if (room <= 0) {
      // Woken as soon as a batch of this partition finishes; the timeout is only a safety net.
      await pausePartition(state, 1000);
      continue;
    }
    let records: readonly StoredRecord[];
    try {
      records = await c.log.read(state.ref.topic, state.ref.partition, state.nextRead, Math.min(room, 1000));
    } catch (error) {
      failingSince ??= c.clock();
      // A read-only connection that keeps failing is not healed by retrying on it: a new process
      // (the supervisor restarts this one) opens a fresh one. Until then the replica looks alive.
      if (c.clock() - failingSince > READ_FAILURE_LIMIT_MS) {
        c.onFatal?.(
          new Error(`cannot read ${state.ref.topic}/${state.ref.partition} from the log for 30 s`, {
            cause: error,
          }),
        );
        return;
      }
      c.logger.warn({ err: error, topic: state.ref.topic }, 'cannot read the log; retrying');
      await pausePartition(state, 1000);
      continue;
    }
    failingSince = undefined;
    if (records.length === 0) {
      await pausePartition(state, backoff);
      backoff = Math.min(c.pollMaxMs, backoff * 2);
      continue;
    }
    backoff = min;
    c.onRecords(state, records);
    if (records.length < SMALL_READ) {
      // At the end of a partition that is being written: waiting `pollMinMs` lets the next
      // read take what arrived meanwhile in one query instead of a query per append (a replica
      // keeping up with a fast capture used most of its CPU on tiny reads).
      await pausePartition(state, min);
    } else {
      // Yield so lanes start before the next read.
      await new Promise((r) => setImmediate(r));
    }
  }
}

/**
 * The capture's request to stand aside (capture-yield.ts), as the partitions' readers see it.
 * One timer for all the partitions: a held replica wakes a few times a second, not once per
 * partition every few milliseconds.
 */
export class CaptureHold {
  readonly #gate: { holding(): boolean } | undefined;
  readonly #stopping: () => boolean;
  #held: Promise<void> | undefined;

  constructor(gate: { holding(): boolean } | undefined, stopping: () => boolean) {
    this.#gate = gate;
    this.#stopping = stopping;
  }

  holding(): boolean {
    return this.#gate?.holding() === true;
  }

  /** Settles once the capture lets go (or at stop). */
  released(): Promise<void> {
    this.#held ??= new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        if (!this.#stopping() && this.#gate?.holding()) return;
        clearInterval(timer);
        this.#held = undefined;
        resolve();
      }, YIELD_POLL_MS);
      timer.unref();
    });
    return this.#held;
  }
}
