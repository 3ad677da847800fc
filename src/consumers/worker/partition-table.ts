import type { StoredRecord, TopicPartition } from '../../core/record.ts';
import { partitionKey } from '../transactional.ts';
import { PartitionProgress } from './partition-progress.ts';

/** What a replica knows of one partition it was assigned. */
export interface PartitionState {
  readonly ref: TopicPartition;
  readonly key: string;
  readonly progress: PartitionProgress;
  nextRead: number;
  committed: number;
  /** Records of this partition inside running batches. */
  executing: number;
  /** Offsets at or after the start already dead-lettered (by a previous owner): finished unhandled. */
  readonly deadLettered: Set<number>;
  revoked: boolean;
  wake: () => void;
  reader: Promise<void>;
}

/** The partitions of a replica by key, and by topic then partition: found per record without building a key string. */
export class PartitionTable {
  readonly #byKey = new Map<string, PartitionState>();
  readonly #byTopic = new Map<string, Map<number, PartitionState>>();

  has(key: string): boolean {
    return this.#byKey.has(key);
  }

  get(key: string): PartitionState | undefined {
    return this.#byKey.get(key);
  }

  /** The state of a record's partition. */
  of(record: StoredRecord): PartitionState | undefined {
    return this.#byTopic.get(record.topic)?.get(record.partition);
  }

  values(): IterableIterator<PartitionState> {
    return this.#byKey.values();
  }

  /** A partition assigned from `start` on; `deadLettered`: its offsets from there already dead-lettered. */
  add(ref: TopicPartition, start: number, deadLettered: Set<number>): PartitionState {
    const state: PartitionState = {
      ref: { topic: ref.topic, partition: ref.partition },
      key: partitionKey(ref.topic, ref.partition),
      progress: new PartitionProgress(start),
      nextRead: start,
      committed: start,
      executing: 0,
      deadLettered,
      revoked: false,
      wake: () => {},
      reader: Promise.resolve(),
    };
    this.#index(state);
    return state;
  }

  /** Records per partition of a batch (a batch holds records of few partitions). */
  count(batch: readonly StoredRecord[]): Map<PartitionState, number> {
    const states = new Map<PartitionState, number>();
    let last: PartitionState | undefined;
    for (const r of batch) {
      if (last === undefined || last.ref.partition !== r.partition || last.ref.topic !== r.topic) {
        last = this.of(r)!;
      }
      states.set(last, (states.get(last) ?? 0) + 1);
    }
    return states;
  }

  /** Marks records finished (handled or dead-lettered) in their partitions' progress. */
  finish(records: readonly StoredRecord[]): void {
    let state: PartitionState | undefined;
    for (const r of records) {
      if (state === undefined || state.ref.partition !== r.partition || state.ref.topic !== r.topic) {
        state = this.of(r);
      }
      state?.progress.finish(r.offset);
    }
  }

  #index(state: PartitionState): void {
    this.#byKey.set(state.key, state);
    let byPartition = this.#byTopic.get(state.ref.topic);
    if (byPartition === undefined) {
      byPartition = new Map();
      this.#byTopic.set(state.ref.topic, byPartition);
    }
    byPartition.set(state.ref.partition, state);
  }

  delete(state: PartitionState): void {
    this.#byKey.delete(state.key);
    const byPartition = this.#byTopic.get(state.ref.topic);
    byPartition?.delete(state.ref.partition);
    if (byPartition?.size === 0) this.#byTopic.delete(state.ref.topic);
  }
}

/** Sleeps up to `ms`, ended early by the partition's `wake` (revoke, stop, room freed). */
export function pausePartition(state: PartitionState, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      resolve();
    }
    state.wake = done;
  });
}
