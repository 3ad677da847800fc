/**
 * The replica's engine, independent of the IPC channel: reads the assigned partitions from the
 * event log at its own pace (bounded buffer per partition, short polling backoff at the end),
 * spreads records over key lanes, runs batches through `BatchHandler`, and commits per partition
 * the lowest contiguous finished offset (at-least-once). Transactional consumers take their start
 * offsets from the target and commit there with the writes; the store then only mirrors them for
 * lag.
 *
 * `assign`, `revoke` and `stop` may be called at any time; `revoke` resolves once the partitions'
 * batches in flight finished and their offsets are committed, so another replica can take over.
 */
import type { StoredRecord, TopicPartition } from '../../core/record.ts';
import type { ReplicaCounters } from '../consumer-protocol.ts';
import { partitionKey, type TargetSession } from '../transactional.ts';
import { BatchHandler } from './batch-handler.ts';
import { ConditionWaiters } from './condition-waiters.ts';
import type { ConsumerRunnerOptions } from './consumer-runner-options.ts';
import { DeadLetterGate } from './dead-letter-gate.ts';
import { LaneScheduler } from './lane-scheduler.ts';
import type { ResolvedConsumer } from './load-consumer.ts';
import { OffsetCommitter } from './offset-committer.ts';
import { CaptureHold, type PartitionReaderContext, readPartition } from './partition-reader.ts';
import { type PartitionState, PartitionTable } from './partition-table.ts';

export type { ConsumerRunnerOptions } from './consumer-runner-options.ts';

import { ReplicaTally } from './replica-tally.ts';
import { startOffsets } from './start-offsets.ts';

export class ConsumerRunner {
  readonly #o: ConsumerRunnerOptions;
  readonly #c: ResolvedConsumer;
  readonly #clock: () => number;
  readonly #partitions = new PartitionTable();
  readonly #lanes: LaneScheduler;
  readonly #maxBuffered: number;
  readonly #abort = new AbortController();
  readonly #waiters = new ConditionWaiters();
  readonly #tally = new ReplicaTally();
  #handler: BatchHandler | undefined;
  readonly #gate: DeadLetterGate;
  #target: TargetSession<unknown> | undefined;
  #stopping = false;
  #resolveStopped!: () => void;
  readonly #stopped = new Promise<void>((resolve) => {
    this.#resolveStopped = resolve;
  });
  readonly #commits: OffsetCommitter;
  readonly #hold: CaptureHold;
  #inFlight = 0;
  /** A batch could neither be handled nor dead-lettered: the replica ends, no further batch starts. */
  #broken = false;
  #lastProgressAt: number;
  /** Revocations under way that handle the records already read before letting go (see `#revoke`). */
  #draining = 0;
  /** Assignments and revocations, one after the other (see `#serially`). */
  #membership: Promise<void> = Promise.resolve();
  readonly #reader: PartitionReaderContext;

  constructor(options: ConsumerRunnerOptions) {
    this.#o = options;
    this.#c = options.consumer;
    this.#clock = options.clock ?? Date.now;
    this.#lastProgressAt = this.#clock();
    this.#lanes = new LaneScheduler({
      lanes: this.#c.concurrency,
      mode: this.#c.transactional ? 'partition' : 'key',
      maxRecords: this.#c.maxRecords,
      maxWaitMs: this.#c.maxWaitMs,
      clock: this.#clock,
      blocked: () =>
        this.#broken ||
        this.#abort.signal.aborted ||
        this.#gate.halted ||
        (this.#stopping && this.#draining === 0),
      draining: () => this.#draining > 0,
      execute: (batch, dropWaiting, upcoming) => this.#execute(batch, dropWaiting, upcoming),
    });
    this.#commits = new OffsetCommitter(options.store, this.#c.group, options.logger, () =>
      this.#partitions.values(),
    );
    this.#hold = new CaptureHold(options.yieldGate, () => this.#stopping);
    this.#gate = DeadLetterGate.forConsumer(
      this.#c.failure,
      options.failure,
      ({ message, halted }) => {
        this.#o.logger.error(
          { halted },
          halted ? `${message}; handling nothing more until resumed` : `${message}; going on`,
        );
        this.#o.onFailing?.({ reason: 'dead_letters', message, halted });
        // Halted: no new batch starts; the lanes' records stay uncommitted for the resume.
        if (halted) for (const s of this.#partitions.values()) s.wake();
      },
      (message) => {
        this.#o.logger.error(`${message}; the consumer stops (handling nothing more until restarted)`);
        this.#o.onFailing?.({ reason: 'target_stopped', message, halted: true });
        for (const s of this.#partitions.values()) s.wake();
      },
    );
    // Records read ahead per partition: two batches per lane it feeds. A transactional consumer's
    // partition feeds one lane: its running batch, the next one waiting in full (offered for work
    // ahead) and a read in flight; more only lengthens what the young generation copies. At most
    // 20,000, or that many batches when they are larger (else a batch could never fill, and would
    // always wait its `maxWaitMs`). With two, the next batch of a transactional consumer was read
    // only once the one before it finished, and was seldom full when its predecessor began: the
    // lake staged it in its own transaction (bench/lake-backlog.ts --batch 50000, four pairs of
    // runs: 5.4-5.9 s with three, 5.7-7.8 s with two).
    const c = this.#c;
    const batches = c.transactional ? 3 : 2;
    const perPartition = c.maxRecords * batches * (c.transactional ? 1 : c.concurrency);
    this.#maxBuffered = Math.max(256, Math.min(Math.max(20_000, c.maxRecords * batches), perPartition));
    this.#reader = {
      log: options.log,
      logger: options.logger,
      clock: this.#clock,
      pollMinMs: options.pollMinMs ?? 5,
      pollMaxMs: options.pollMaxMs ?? 25,
      maxBuffered: this.#maxBuffered,
      hold: this.#hold,
      running: () => !this.#stopping && !this.#gate.halted,
      ...(options.onFatal ? { onFatal: options.onFatal } : {}),
      onRecords: (state, records) => this.#enqueue(state, records),
    };
  }

  /** Opens the transactional target, if any. */
  async start(): Promise<void> {
    if (this.#c.transactional && !this.#target) {
      this.#target = await this.#c.transactional.open({ connections: this.#c.concurrency });
    }
    this.#handler = new BatchHandler({
      consumer: this.#c,
      replica: this.#o.replica,
      store: this.#o.store,
      logger: this.#o.logger,
      metrics: this.#tally.metrics,
      counters: this.#tally.counters,
      signal: this.#abort.signal,
      stopping: () => this.#stopping,
      stopped: this.#stopped,
      target: this.#target,
      clock: this.#clock,
      onProgress: () => {
        this.#lastProgressAt = this.#clock();
      },
      gate: this.#gate,
    });
  }

  get assigned(): readonly TopicPartition[] {
    return [...this.#partitions.values()].map((p) => p.ref);
  }

  /** Records read from the log and not finished yet: running, or waiting in a lane. */
  get buffered(): number {
    let n = 0;
    for (const s of this.#partitions.values()) n += s.progress.outstanding;
    return n;
  }

  /** Records inside running handler calls. */
  get inFlight(): number {
    return this.#inFlight;
  }

  get lastProgressAt(): number {
    return this.#lastProgressAt;
  }

  /** The dead-letter threshold is reached (and, with `continue`, no record was handled since). */
  get failing(): boolean {
    return this.#gate.failing;
  }

  /** Handles nothing more: the dead-letter threshold was reached with `action: 'pause'`. */
  get halted(): boolean {
    return this.#gate.halted;
  }

  /** The counters since the previous call (deltas), and the user's counters. */
  takeCounters(): { counters: ReplicaCounters; metrics: { [name: string]: number } } {
    return this.#tally.take();
  }

  /**
   * A revoke that arrives while an assignment of the same partitions still reads its start
   * offsets must wait for it: answered at once, it would let the partition be handled here and
   * by its next owner. So membership changes run one after the other, in the order received.
   */
  #serially(change: () => Promise<void>): Promise<void> {
    const next = this.#membership.then(change);
    this.#membership = next.catch(() => undefined);
    return next;
  }

  assign(partitions: readonly TopicPartition[]): Promise<void> {
    return this.#serially(() => this.#assign(partitions));
  }

  async #assign(partitions: readonly TopicPartition[]): Promise<void> {
    if (this.#stopping) return;
    const added = partitions.filter((p) => !this.#partitions.has(partitionKey(p.topic, p.partition)));
    if (added.length === 0) return;
    const starts = await this.#startOffsets(added);
    this.#lastProgressAt = this.#clock();
    const skips = await Promise.all(
      added.map((ref) =>
        this.#o.store.deadLetteredOffsets(
          this.#c.group,
          ref.topic,
          ref.partition,
          starts.get(partitionKey(ref.topic, ref.partition)) ?? 0,
        ),
      ),
    );
    for (const [i, ref] of added.entries()) {
      const start = starts.get(partitionKey(ref.topic, ref.partition)) ?? 0;
      const deadLettered = skips[i]!;
      const state = this.#partitions.add(ref, start, deadLettered);
      state.reader = readPartition(state, this.#reader);
      this.#o.logger.info(
        { topic: ref.topic, partition: ref.partition, offset: start },
        'partition assigned',
      );
    }
  }

  /** Stops reading the partitions, finishes their batches in flight and commits their offsets. */
  revoke(partitions: readonly TopicPartition[]): Promise<void> {
    return this.#serially(() => this.#revoke(partitions));
  }

  async #revoke(partitions: readonly TopicPartition[]): Promise<void> {
    const states = partitions
      .map((p) => this.#partitions.get(partitionKey(p.topic, p.partition)))
      .filter((s): s is PartitionState => s !== undefined);
    for (const s of states) {
      s.revoked = true;
      s.wake();
    }
    await Promise.all(states.map((s) => s.reader));
    const keys = new Set(states.map((s) => s.key));
    const ours = (r: StoredRecord) => keys.has(partitionKey(r.topic, r.partition));
    // The records already read are handled before the partitions go. Lanes finish out of order:
    // dropping the waiting ones would leave records of other keys handled above the committed
    // offset, and the next owner would handle those again. Once the shutdown grace is over
    // (handlers aborted), what still waits is dropped: the next owner reads it.
    this.#draining++;
    try {
      this.#lanes.pumpAll();
      await this.#waiters.until(
        () =>
          states.every((s) => s.executing === 0) &&
          (this.#abort.signal.aborted || this.#gate.halted || !this.#lanes.waiting(ours)),
      );
    } finally {
      this.#draining--;
    }
    this.#lanes.remove(ours);
    await this.#waiters.until(() => states.every((s) => s.executing === 0));
    await this.#commits.flush(states);
    for (const s of states) {
      this.#partitions.delete(s);
      this.#o.logger.info(
        { topic: s.ref.topic, partition: s.ref.partition, offset: s.committed },
        'partition revoked',
      );
    }
  }

  /** Revokes everything (handlers get `shutdownGraceMs`, then their signal aborts) and closes the target. */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#resolveStopped();
    const grace = setTimeout(() => {
      this.#abort.abort();
      this.#waiters.notify();
    }, this.#o.shutdownGraceMs ?? 5000);
    try {
      // Read the partitions when the changes before this one are done: an assignment may be under way.
      await this.#serially(() => this.#revoke(this.assigned));
    } finally {
      clearTimeout(grace);
      this.#abort.abort();
      this.#commits.cancel();
      this.#lanes.clearTimers();
      await this.#target?.close();
      this.#target = undefined;
    }
  }

  #startOffsets(partitions: readonly TopicPartition[]): Promise<Map<string, number>> {
    return startOffsets({
      consumer: this.#c,
      partitions,
      log: this.#o.log,
      store: this.#o.store,
      target: this.#target,
      policy: this.#c.offsetReset ?? this.#o.offsetReset ?? 'fail',
      logger: this.#o.logger,
      onOutOfRange: (message) =>
        this.#o.onFailing?.({ reason: 'offset_out_of_range', message, halted: true }),
    });
  }

  /** Records read from a partition to the lanes; those dead-lettered by a previous owner are finished at once. */
  #enqueue(state: PartitionState, records: readonly StoredRecord[]): void {
    // Read while the partition was being revoked (or the replica stopping): not handled here. The
    // drain handles only what was read before; a batch it cuts short drops what waits behind it,
    // and records pushed after that would run ahead of it (per-key order).
    if (state.revoked || this.#stopping) return;
    const progress = state.progress;
    const skip = state.deadLettered;
    this.#lanes.push(records, this.#clock(), (r) => {
      progress.add(r.offset);
      if (skip.size === 0 || !skip.delete(r.offset)) return false;
      progress.finish(r.offset);
      this.#commits.schedule();
      return true;
    });
    state.nextRead = records[records.length - 1]!.offset + 1;
    this.#lanes.pumpAll();
  }

  async #execute(
    batch: StoredRecord[],
    dropWaiting: (match: (r: StoredRecord) => boolean) => void,
    upcoming: () => StoredRecord[],
  ): Promise<void> {
    const states = this.#partitions.count(batch);
    for (const [s, n] of states) s.executing += n;
    this.#inFlight += batch.length;
    try {
      const ok = await this.#handler!.run(batch, (records) => this.#partitions.finish(records), upcoming);
      this.#lastProgressAt = this.#clock();
      if (!ok && (this.#stopping || [...states.keys()].some((s) => s.revoked))) {
        // Left unfinished by a stop or revocation (a retry cut short): the records waiting in
        // this lane behind it hold later records of the same keys, which must not be handled
        // before it. They are dropped with it; the next owner reads them all again from the
        // committed offset, which is below them.
        const left = new Set(states.keys());
        dropWaiting((r) => {
          const s = this.#partitions.get(partitionKey(r.topic, r.partition));
          return s !== undefined && left.has(s);
        });
      }
      if (!ok && !this.#stopping && !this.#gate.halted) {
        this.#broken = true;
        this.#o.onFatal?.(new Error('a batch could neither be handled nor dead-lettered'));
      }
    } catch (error) {
      this.#broken = true;
      this.#o.onFatal?.(error instanceof Error ? error : new Error(String(error)));
    } finally {
      for (const [s, n] of states) s.executing -= n;
      this.#inFlight -= batch.length;
      for (const s of states.keys()) s.wake();
      this.#commits.schedule();
      this.#waiters.notify();
    }
  }
}
