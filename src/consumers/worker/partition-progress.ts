/**
 * Offset watermark of one partition: records are added in offset order as they are read and
 * finished in any order (lanes run in parallel); the committable position is the lowest offset
 * not yet finished, so a commit never passes a record that is still in flight (at-least-once).
 *
 * Per record this is an array push, an indexed flag and (rarely) a binary search: offsets are
 * mostly contiguous, so a finished offset is found at `offset - first pending` without a search.
 */
export class PartitionProgress {
  /** Offsets added and not yet passed by the watermark, ascending; `#head` indexes the first. */
  #pending: number[] = [];
  /** `#done[i]`: `#pending[i]` finished (and waits for an earlier offset). */
  #done: boolean[] = [];
  #head = 0;
  /** Finished offsets at or after `#head`. */
  #finished = 0;
  #next: number;

  /** `start`: the first offset this replica will read (the committed position). */
  constructor(start: number) {
    this.#next = start;
  }

  /** Registers a record read from the log; offsets must increase. */
  add(offset: number): void {
    const length = this.#pending.length;
    const last = length > this.#head ? this.#pending[length - 1]! : this.#next - 1;
    if (offset <= last) throw new Error(`offset ${offset} added after ${last}`);
    if (length === this.#head) {
      // Nothing in flight: records skipped by retention move the watermark up to this one.
      this.#next = offset;
    }
    this.#pending.push(offset);
    this.#done.push(false);
  }

  /** Marks a record handled; an offset not in flight (or finished already) is ignored. */
  finish(offset: number): void {
    const index = this.#indexOf(offset);
    if (index < 0 || this.#done[index]) return;
    this.#done[index] = true;
    this.#finished++;
    const pending = this.#pending;
    const done = this.#done;
    let head = this.#head;
    while (head < pending.length && done[head]) {
      this.#next = pending[head]! + 1;
      head++;
      this.#finished--;
    }
    this.#head = head;
    if (head > 1024 && head * 2 > pending.length) {
      this.#pending = pending.slice(head);
      this.#done = done.slice(head);
      this.#head = 0;
    }
  }

  #indexOf(offset: number): number {
    const pending = this.#pending;
    let low = this.#head;
    let high = pending.length - 1;
    if (low > high) return -1;
    // Contiguous offsets (the common case): found at once.
    const guess = low + (offset - pending[low]!);
    if (guess >= low && guess <= high && pending[guess] === offset) return guess;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      const at = pending[mid]!;
      if (at === offset) return mid;
      if (at < offset) low = mid + 1;
      else high = mid - 1;
    }
    return -1;
  }

  /** The next offset to commit: every record before it has finished. */
  get committable(): number {
    return this.#next;
  }

  /** Records added and not yet finished. */
  get inFlight(): number {
    return this.#pending.length - this.#head - this.#finished;
  }

  /** Records added and not passed by the watermark (finished ones waiting on an earlier one count). */
  get outstanding(): number {
    return this.#pending.length - this.#head;
  }
}
