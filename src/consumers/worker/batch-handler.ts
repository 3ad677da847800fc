/**
 * Runs the user's `handle` on a batch: retries with exponential backoff, then isolates the
 * records one by one, and dead-letters the records that still fail. In transactional mode every
 * call runs in a transaction of the target that also writes the offsets after the records it
 * covered, and a dead-lettered record's offset is passed in a transaction of its own.
 */
import type { Logger } from 'pino';
import { stopsConsumer } from '../../core/errors.ts';
import type { PartitionOffset, StoredRecord } from '../../core/record.ts';
import type { ReplicaCounters } from '../consumer-protocol.ts';
import type { ConsumerState } from '../consumer-state.ts';
import type { ConsumerContext, ConsumerMetrics, ConsumerRecord } from '../define-consumer.ts';
import { partitionKey, type TargetSession } from '../transactional.ts';
import type { DeadLetterGate } from './dead-letter-gate.ts';
import { consumerRecord } from './lazy-record.ts';
import type { ResolvedConsumer } from './load-consumer.ts';

export interface BatchHandlerOptions {
  readonly consumer: ResolvedConsumer;
  readonly replica: number;
  readonly store: ConsumerState;
  readonly logger: Logger;
  readonly metrics: ConsumerMetrics;
  readonly counters: ReplicaCounters;
  /** Aborted on shutdown (after the grace period): handed to the handler. */
  readonly signal: AbortSignal;
  /** True once shutdown began: no new retry starts, backoff sleeps end. */
  readonly stopping: () => boolean;
  readonly stopped: Promise<void>;
  readonly target: TargetSession<unknown> | undefined;
  readonly clock: () => number;
  /** Called whenever a handler call returned (or threw): the replica is not hung. */
  readonly onProgress: () => void;
  /** Counts consecutive dead letters; once halted, failed records are kept instead (see dead-letter-gate.ts). */
  readonly gate?: DeadLetterGate;
}

/** `done`: every record was handled or dead-lettered; `aborted`: shutdown interrupted (the rest not finished). */
export type BatchOutcome = { readonly finished: readonly StoredRecord[]; readonly aborted: boolean };

/** Upcoming batches whose wrapped records are kept for when they run (one per lane matters). */
const AHEAD_KEPT = 4;

export class BatchHandler {
  readonly #o: BatchHandlerOptions;
  /**
   * The lanes' next batches as last offered to the handler (`ConsumerContext.upcoming`), with the
   * records wrapped for it: a sink asks for the next batch at several steps of a transaction, and
   * that batch then runs; its records are wrapped (and their values parsed, where read) once.
   */
  readonly #ahead: { records: readonly StoredRecord[]; wrapped: readonly ConsumerRecord<unknown>[] }[] = [];

  constructor(options: BatchHandlerOptions) {
    this.#o = options;
  }

  /**
   * Handles a batch; calls `onFinished` for each record as soon as it is handled or dead-lettered.
   * `false` when a record is left unfinished: shutdown, a dead letter that could not be passed,
   * or the dead-letter gate halted the replica.
   */
  async run(
    batch: readonly StoredRecord[],
    onFinished: (records: readonly StoredRecord[]) => void,
    upcoming?: () => readonly StoredRecord[],
  ): Promise<boolean> {
    // Wrapped once per batch: retries and the one-by-one pass see the same objects (and parses),
    // as does the work a sink did ahead on them while they were upcoming.
    const parsed = this.#wrapped(batch, true);
    const first = await this.#attempts(batch, parsed, upcoming);
    if (first.ok) {
      onFinished(batch);
      return true;
    }
    if (first.aborted) return false;
    if (stopsConsumer(first.error)) {
      this.#o.gate?.stop(errorText(first.error));
      return false;
    }
    if (batch.length > 1) {
      this.#o.logger.warn(
        { records: batch.length, err: first.error },
        'batch failed after its attempts; retrying its records one by one',
      );
    }
    const gate = this.#o.gate;
    for (let i = 0; i < batch.length; i++) {
      if (gate?.halted) return false;
      const record = batch[i]!;
      const single = batch.length === 1 ? first : await this.#attempts([record], [parsed[i]!]);
      if (single.aborted) return false;
      if (!single.ok) {
        if (gate && !gate.mayDeadLetter()) return false;
        const passed = await this.#deadLetter(record, single.error, single.firstFailedAt);
        if (!passed) return false;
      }
      onFinished([record]);
    }
    return true;
  }

  async #attempts(
    records: readonly StoredRecord[],
    parsed: readonly ConsumerRecord<unknown>[],
    upcoming?: () => readonly StoredRecord[],
  ): Promise<{ ok: boolean; aborted: boolean; error?: unknown; firstFailedAt: number }> {
    const c = this.#o.consumer;
    let firstFailedAt = 0;
    let error: unknown;
    for (let attempt = 1; attempt <= c.attempts; attempt++) {
      if (attempt > 1) {
        if (this.#o.stopping()) return { ok: false, aborted: true, error, firstFailedAt };
        this.#o.counters.retried += records.length;
        const delay = Math.min(c.maxDelayMs, c.initialDelayMs * 2 ** (attempt - 2));
        await sleep(delay, this.#o.stopped);
        if (this.#o.stopping()) return { ok: false, aborted: true, error, firstFailedAt };
      }
      const started = performance.now();
      try {
        await this.#call(records, parsed, attempt, upcoming).finally(this.#o.onProgress);
        this.#o.counters.durations.push((performance.now() - started) / 1000);
        this.#o.counters.processed += records.length;
        this.#o.gate?.succeeded();
        return { ok: true, aborted: false, firstFailedAt };
      } catch (e) {
        this.#o.counters.durations.push((performance.now() - started) / 1000);
        error = e;
        firstFailedAt ||= this.#o.clock();
        // A handler that gave up because of the shutdown signal did not fail.
        if (this.#o.signal.aborted) return { ok: false, aborted: true, error, firstFailedAt };
        this.#o.counters.failed += records.length;
        this.#o.logger.debug({ err: e, attempt, records: records.length }, 'handler failed');
        // No retry mends it and no record is to blame: the consumer stops (see ConsumerStopError).
        if (stopsConsumer(e)) return { ok: false, aborted: false, error, firstFailedAt };
      }
    }
    return { ok: false, aborted: false, error, firstFailedAt };
  }

  async #call(
    records: readonly StoredRecord[],
    parsed: readonly ConsumerRecord<unknown>[],
    attempt: number,
    upcoming: (() => readonly StoredRecord[]) | undefined,
  ): Promise<void> {
    const ctx = (tx: unknown): ConsumerContext<unknown> => ({
      logger: this.#o.logger,
      metrics: this.#o.metrics,
      signal: this.#o.signal,
      attempt,
      tx,
      consumer: this.#o.consumer.name,
      replica: this.#o.replica,
      upcoming: () => {
        const next = upcoming?.();
        return next?.length ? this.#wrapped(next, false) : [];
      },
    });
    const target = this.#o.target;
    if (target === undefined) {
      await this.#o.consumer.handle(parsed, ctx(undefined));
      return;
    }
    await target.transaction(this.#o.consumer.group, nextOffsets(records), async (tx, stored) => {
      // Records another owner of the partition committed meanwhile (see the fencing in
      // transactional.ts) are already in the target: applying them again would break exactly-once.
      const fresh = freshRecords(parsed, stored);
      if (fresh.length < parsed.length) {
        this.#o.logger.warn(
          { skipped: parsed.length - fresh.length, records: parsed.length },
          'the target already holds records of this batch (committed by a previous owner); skipping them',
        );
      }
      if (fresh.length > 0) await this.#o.consumer.handle(fresh, ctx(tx));
    });
  }

  /**
   * `records` wrapped for the handler: the wrappers made when the very same records (the same
   * objects, in order) were upcoming, else new ones (kept while upcoming; `taken`: no longer).
   */
  #wrapped(records: readonly StoredRecord[], taken: boolean): readonly ConsumerRecord<unknown>[] {
    const at = this.#ahead.findIndex((a) => sameObjects(a.records, records));
    if (at >= 0) {
      const { wrapped } = this.#ahead[at]!;
      if (taken) this.#ahead.splice(at, 1);
      return wrapped;
    }
    const wrapped = records.map(consumerRecord);
    if (!taken) {
      this.#ahead.push({ records, wrapped });
      if (this.#ahead.length > AHEAD_KEPT) this.#ahead.shift();
    }
    return wrapped;
  }

  /** Stores the dead letter, then (transactional) moves the target's offset past it. */
  async #deadLetter(record: StoredRecord, error: unknown, firstFailedAt: number): Promise<boolean> {
    const err = error instanceof Error ? error : new Error(String(error));
    // A synchronous store (SQLite) is not awaited: the gate then counts this dead letter in the same
    // tick, before another key lane stores one, so a pause stops at exactly the threshold.
    const stored = this.#o.store.addDeadLetter({
      consumer: this.#o.consumer.name,
      group: this.#o.consumer.group,
      record,
      error: err.message,
      stack: err.stack,
      attempts: this.#o.consumer.attempts,
      firstFailedAt: firstFailedAt || this.#o.clock(),
      failedAt: this.#o.clock(),
    });
    if (stored instanceof Promise) await stored;
    this.#o.counters.deadLettered++;
    this.#o.gate?.deadLettered(err.message);
    this.#o.logger.error(
      { err, topic: record.topic, partition: record.partition, offset: record.offset },
      'record dead-lettered after its attempts; the partition moves on',
    );
    if (this.#o.target) {
      try {
        await this.#o.target.transaction(this.#o.consumer.group, nextOffsets([record]), async () => {});
      } catch (e) {
        this.#o.logger.error(
          { err: e },
          'cannot pass a dead-lettered record in the target; it will be retried',
        );
        return false;
      }
    }
    return true;
  }
}

/** An error's message, with its hint when it has one. */
function errorText(error: unknown): string {
  const e = error as { message?: unknown; hint?: unknown } | undefined;
  const message = typeof e?.message === 'string' ? e.message : String(error);
  return typeof e?.hint === 'string' ? `${message} (${e.hint})` : message;
}

/** Per partition, the offset after the last record of `records`. */
export function nextOffsets(records: readonly StoredRecord[]): PartitionOffset[] {
  const next = new Map<string, { topic: string; partition: number; offset: number }>();
  // A batch is runs of one partition: the key is made once per run, not once per record.
  let run: { topic: string; partition: number; offset: number } | undefined;
  for (const r of records) {
    if (run === undefined || run.topic !== r.topic || run.partition !== r.partition) {
      const key = partitionKey(r.topic, r.partition);
      run = next.get(key);
      if (run === undefined) {
        run = { topic: r.topic, partition: r.partition, offset: r.offset + 1 };
        next.set(key, run);
      }
    }
    if (run.offset <= r.offset) run.offset = r.offset + 1;
  }
  return [...next.values()];
}

/**
 * The records at or past their partition's offset in `stored` (`records` itself when that is all
 * of them): the rest another owner of the partition committed already.
 */
export function freshRecords<R extends StoredRecord | ConsumerRecord<unknown>>(
  records: readonly R[],
  stored: ReadonlyMap<string, number>,
): readonly R[] {
  if (stored.size === 0) return records;
  let topic: string | undefined;
  let partition = -1;
  let from = 0;
  let fresh: R[] | undefined;
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    if (r.topic !== topic || r.partition !== partition) {
      topic = r.topic;
      partition = r.partition;
      from = stored.get(partitionKey(topic, partition)) ?? 0;
    }
    if (r.offset >= from) fresh?.push(r);
    else fresh ??= records.slice(0, i);
  }
  return fresh ?? records;
}

/** Whether `a` and `b` hold the same objects in the same order. */
function sameObjects(a: readonly object[], b: readonly object[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sleep(ms: number, interrupt: Promise<void>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
    interrupt,
  ]).finally(() => clearTimeout(timer));
}
