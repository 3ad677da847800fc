/**
 * Key lanes: each record goes to one lane by the hash of its key, so the records of one key stay
 * in one lane, in log order; lanes run in parallel. Records without a key have no order to keep
 * and spread by offset.
 */
import type { StoredRecord } from '../../core/record.ts';

/** 32-bit FNV-1a of a string (stable across processes and versions). */
export function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

export type LaneMode = 'key' | 'partition';

/** The lane of a record: by key, or (transactional consumers) by partition. */
export function laneOf(record: StoredRecord, lanes: number, mode: LaneMode): number {
  if (lanes <= 1) return 0;
  if (mode === 'partition') return fnv1a(`${record.topic}\0${record.partition}`) % lanes;
  if (record.key === null) return record.offset % lanes;
  return fnv1a(record.key) % lanes;
}

/** A FIFO of records waiting for a lane, taken in batches. */
export class LaneQueue {
  #items: StoredRecord[] = [];
  #head = 0;
  /** When the oldest waiting record arrived (for `maxWaitMs`). */
  #since = 0;

  push(record: StoredRecord, now: number): void {
    if (this.size === 0) this.#since = now;
    this.#items.push(record);
  }

  get size(): number {
    return this.#items.length - this.#head;
  }

  /** Epoch ms the oldest waiting record arrived. */
  get since(): number {
    return this.#since;
  }

  take(max: number, now: number): StoredRecord[] {
    const batch = this.#items.slice(this.#head, this.#head + max);
    this.#head += batch.length;
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    } else {
      this.#since = now;
      if (this.#head > 1024) {
        this.#items = this.#items.slice(this.#head);
        this.#head = 0;
      }
    }
    return batch;
  }

  /** The first `count` waiting records, left waiting (what `take(count)` would return now). */
  peek(count: number): StoredRecord[] {
    return this.#items.slice(this.#head, this.#head + count);
  }

  /** Whether a waiting record matches. */
  some(match: (record: StoredRecord) => boolean): boolean {
    for (let i = this.#head; i < this.#items.length; i++) if (match(this.#items[i]!)) return true;
    return false;
  }

  /** Removes (and returns) the waiting records that match, keeping the order of the rest. */
  remove(match: (record: StoredRecord) => boolean): StoredRecord[] {
    const kept: StoredRecord[] = [];
    const removed: StoredRecord[] = [];
    for (let i = this.#head; i < this.#items.length; i++) {
      const r = this.#items[i]!;
      (match(r) ? removed : kept).push(r);
    }
    this.#items = kept;
    this.#head = 0;
    return removed;
  }
}
