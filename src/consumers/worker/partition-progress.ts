/**
 * Offset watermark of one partition: records are added in offset order as they are read and
 * finished in any order (lanes run in parallel); the committable position is the lowest offset
 * not yet finished, so a commit never passes a record that is still in flight (at-least-once).
 */
export class PartitionProgress {
  /** Offsets added and not yet passed by the watermark, ascending; `#head` indexes the first. */
  #pending: number[] = [];
  #head = 0;
  readonly #finished = new Set<number>();
  #next: number;

  /** `start`: the first offset this replica will read (the committed position). */
  constructor(start: number) {
    this.#next = start;
  }

  /** Registers a record read from the log; offsets must increase. */
  add(offset: number): void {
    const last =
      this.#pending.length > this.#head ? this.#pending[this.#pending.length - 1]! : this.#next - 1;
    if (offset <= last) throw new Error(`offset ${offset} added after ${last}`);
    if (this.#pending.length === this.#head) {
      // Nothing in flight: records skipped by retention move the watermark up to this one.
      this.#next = offset;
    }
    this.#pending.push(offset);
  }

  finish(offset: number): void {
    this.#finished.add(offset);
    while (this.#head < this.#pending.length && this.#finished.delete(this.#pending[this.#head]!)) {
      this.#next = this.#pending[this.#head]! + 1;
      this.#head++;
    }
    if (this.#head > 1024 && this.#head * 2 > this.#pending.length) {
      this.#pending = this.#pending.slice(this.#head);
      this.#head = 0;
    }
  }

  /** The next offset to commit: every record before it has finished. */
  get committable(): number {
    return this.#next;
  }

  /** Records added and not yet finished. */
  get inFlight(): number {
    return this.#pending.length - this.#head - this.#finished.size;
  }

  /** Records added and not passed by the watermark (finished ones waiting on an earlier one count). */
  get outstanding(): number {
    return this.#pending.length - this.#head;
  }
}
