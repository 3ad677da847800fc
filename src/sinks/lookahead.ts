/**
 * Work done ahead for a batch that has not started yet (`ConsumerContext.upcoming`): a sink
 * computes it while its current batch waits on the target, and takes it back when a batch of the
 * very same records (topic, partition, offset, in order) comes to `write`. Records at one offset
 * of a partition never change, so the result is what the batch itself would compute, provided
 * it depends only on the records and the sink's options. Whatever else it relies on (the table
 * sink's statements: the target's columns as cached) it must carry, for `write` to check.
 *
 * A few entries are kept (one per lane of the replica at most matters); a batch that differs (a
 * revocation dropped records, a retry one by one) finds nothing and computes its own.
 */
import type { ConsumerRecord } from '../consumers/define-consumer.ts';

const KEPT = 8;

export class Lookahead<T> {
  readonly #entries: { records: readonly ConsumerRecord<unknown>[]; value: T }[] = [];

  /** The value kept for exactly these records, removed from the cache; `undefined` if none. */
  take(records: readonly ConsumerRecord<unknown>[]): T | undefined {
    const at = this.#entries.findIndex((e) => sameRecords(e.records, records));
    if (at < 0) return undefined;
    return this.#entries.splice(at, 1)[0]!.value;
  }

  /**
   * Computes and keeps `compute(upcoming)` (once per batch of records). A failure is not kept:
   * the batch computes again when it runs, and fails there, as its own.
   */
  prepare(
    upcoming: readonly ConsumerRecord<unknown>[] | undefined,
    compute: (records: readonly ConsumerRecord<unknown>[]) => T,
  ): void {
    if (!upcoming || upcoming.length === 0) return;
    if (this.#entries.some((e) => sameRecords(e.records, upcoming))) return;
    let value: T;
    try {
      value = compute(upcoming);
    } catch {
      return;
    }
    this.#entries.push({ records: upcoming, value });
    if (this.#entries.length > KEPT) this.#entries.shift();
  }
}

function sameRecords(a: readonly ConsumerRecord<unknown>[], b: readonly ConsumerRecord<unknown>[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.offset !== y.offset || x.partition !== y.partition || x.topic !== y.topic) return false;
  }
  return true;
}
