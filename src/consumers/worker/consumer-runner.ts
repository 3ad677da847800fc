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
import type { Logger } from 'pino';
import type { EventLog } from '../../core/event-log.ts';
import type { StoredRecord, TopicPartition } from '../../core/record.ts';
import type { ReplicaCounters } from '../consumer-protocol.ts';
import type { ConsumerStore } from '../consumer-store.ts';
import type { ConsumerMetrics } from '../define-consumer.ts';
import { partitionKey, type TargetSession } from '../transactional.ts';
import { BatchHandler } from './batch-handler.ts';
import { type LaneMode, LaneQueue, laneOf } from './key-lanes.ts';
import type { ResolvedConsumer } from './load-consumer.ts';
import { PartitionProgress } from './partition-progress.ts';

export interface ConsumerRunnerOptions {
  readonly consumer: ResolvedConsumer;
  readonly replica: number;
  /** Opened read-only: the capture is the log's only writer. */
  readonly log: EventLog;
  readonly store: ConsumerStore;
  readonly logger: Logger;
  readonly clock?: () => number;
  /** Polling backoff at the end of a partition. Defaults 2 and 25 ms (an idle read costs microseconds). */
  readonly pollMinMs?: number;
  readonly pollMaxMs?: number;
  /** How long in-flight handlers may run after `stop` before their signal aborts. Default 5 s. */
  readonly shutdownGraceMs?: number;
  /**
   * Says when the capture asks consumers to stand aside (capture-yield.ts): no read starts while it
   * holds; the records already read are still handled.
   */
  readonly yieldGate?: { holding(): boolean };
  /** Called when the runner cannot continue safely (the process should exit and be restarted). */
  readonly onFatal?: (error: Error) => void;
}

interface PartitionState {
  readonly ref: TopicPartition;
  readonly key: string;
  readonly progress: PartitionProgress;
  nextRead: number;
  committed: number;
  /** Records of this partition inside running batches. */
  executing: number;
  revoked: boolean;
  wake: () => void;
  reader: Promise<void>;
}

interface Lane {
  readonly queue: LaneQueue;
  running: boolean;
  timer: NodeJS.Timeout | undefined;
}

export class ConsumerRunner {
  readonly #o: ConsumerRunnerOptions;
  readonly #c: ResolvedConsumer;
  readonly #clock: () => number;
  readonly #partitions = new Map<string, PartitionState>();
  /** The same states by topic, then partition: found per record without building a key string. */
  readonly #byTopic = new Map<string, Map<number, PartitionState>>();
  readonly #lanes: Lane[];
  readonly #laneMode: LaneMode;
  readonly #maxBuffered: number;
  readonly #abort = new AbortController();
  readonly #waiters = new Set<() => void>();
  #counters: ReplicaCounters = emptyCounters();
  #custom = new Map<string, number>();
  #handler: BatchHandler | undefined;
  #target: TargetSession<unknown> | undefined;
  #stopping = false;
  #resolveStopped!: () => void;
  readonly #stopped = new Promise<void>((resolve) => {
    this.#resolveStopped = resolve;
  });
  #flushTimer: NodeJS.Timeout | undefined;
  /** While the capture holds the consumers back: settles when it lets go (see `#whileHeld`). */
  #held: Promise<void> | undefined;
  #inFlight = 0;
  #lastProgressAt: number;
  /** Revocations under way that handle the records already read before letting go (see `#revoke`). */
  #draining = 0;
  /** Assignments and revocations, one after the other (see `#serially`). */
  #membership: Promise<void> = Promise.resolve();

  constructor(options: ConsumerRunnerOptions) {
    this.#o = options;
    this.#c = options.consumer;
    this.#clock = options.clock ?? Date.now;
    this.#lastProgressAt = this.#clock();
    this.#laneMode = this.#c.transactional ? 'partition' : 'key';
    this.#lanes = Array.from({ length: this.#c.concurrency }, () => ({
      queue: new LaneQueue(),
      running: false,
      timer: undefined,
    }));
    this.#maxBuffered = Math.min(20_000, Math.max(256, this.#c.maxRecords * this.#c.concurrency * 2));
  }

  /** Opens the transactional target, if any. */
  async start(): Promise<void> {
    if (this.#c.transactional && !this.#target) {
      this.#target = await this.#c.transactional.open({ connections: this.#c.concurrency });
    }
    const metrics: ConsumerMetrics = {
      increment: (name, by = 1) => {
        if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(name) || !Number.isFinite(by)) {
          throw new TypeError(`metric names are letters, digits and _ (got ${JSON.stringify(name)})`);
        }
        this.#custom.set(name, (this.#custom.get(name) ?? 0) + by);
      },
    };
    this.#handler = new BatchHandler({
      consumer: this.#c,
      replica: this.#o.replica,
      store: this.#o.store,
      logger: this.#o.logger,
      metrics,
      counters: this.#counters,
      signal: this.#abort.signal,
      stopping: () => this.#stopping,
      stopped: this.#stopped,
      target: this.#target,
      clock: this.#clock,
      onProgress: () => {
        this.#lastProgressAt = this.#clock();
      },
    });
  }

  get assigned(): readonly TopicPartition[] {
    return [...this.#partitions.values()].map((p) => p.ref);
  }

  /** Records inside running handler calls. */
  get inFlight(): number {
    return this.#inFlight;
  }

  get lastProgressAt(): number {
    return this.#lastProgressAt;
  }

  /** The counters since the previous call (deltas), and the user's counters. */
  takeCounters(): { counters: ReplicaCounters; metrics: { [name: string]: number } } {
    const counters = { ...this.#counters, durations: this.#counters.durations.splice(0) };
    this.#counters.processed =
      this.#counters.failed =
      this.#counters.retried =
      this.#counters.deadLettered =
        0;
    const metrics = Object.fromEntries(this.#custom);
    this.#custom.clear();
    return { counters, metrics };
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
    for (const ref of added) {
      const key = partitionKey(ref.topic, ref.partition);
      const start = starts.get(key) ?? 0;
      const state: PartitionState = {
        ref: { topic: ref.topic, partition: ref.partition },
        key,
        progress: new PartitionProgress(start),
        nextRead: start,
        committed: start,
        executing: 0,
        revoked: false,
        wake: () => {},
        reader: Promise.resolve(),
      };
      this.#partitions.set(key, state);
      let byPartition = this.#byTopic.get(state.ref.topic);
      if (byPartition === undefined) {
        byPartition = new Map();
        this.#byTopic.set(state.ref.topic, byPartition);
      }
      byPartition.set(state.ref.partition, state);
      state.reader = this.#read(state);
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
      for (const lane of this.#lanes) this.#pump(lane);
      await this.#until(
        () =>
          states.every((s) => s.executing === 0) &&
          (this.#abort.signal.aborted || !this.#lanes.some((lane) => lane.queue.some(ours))),
      );
    } finally {
      this.#draining--;
    }
    for (const lane of this.#lanes) lane.queue.remove(ours);
    await this.#until(() => states.every((s) => s.executing === 0));
    this.#flush(states);
    for (const s of states) {
      this.#partitions.delete(s.key);
      const byPartition = this.#byTopic.get(s.ref.topic);
      byPartition?.delete(s.ref.partition);
      if (byPartition?.size === 0) this.#byTopic.delete(s.ref.topic);
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
      this.#notify();
    }, this.#o.shutdownGraceMs ?? 5000);
    try {
      // Read the partitions when the changes before this one are done: an assignment may be under way.
      await this.#serially(() => this.#revoke(this.assigned));
    } finally {
      clearTimeout(grace);
      this.#abort.abort();
      clearTimeout(this.#flushTimer);
      for (const lane of this.#lanes) clearTimeout(lane.timer);
      await this.#target?.close();
      this.#target = undefined;
    }
  }

  async #startOffsets(partitions: readonly TopicPartition[]): Promise<Map<string, number>> {
    const starts = new Map<string, number>();
    for (const p of this.#o.store.committed(this.#c.group))
      starts.set(partitionKey(p.topic, p.partition), p.offset);
    if (this.#target) {
      for (const [key, offset] of await this.#target.offsets(this.#c.group, partitions))
        starts.set(key, offset);
    }
    const topics = await this.#o.log.topics();
    for (const p of partitions) {
      const key = partitionKey(p.topic, p.partition);
      const info = topics
        .find((t) => t.topic === p.topic)
        ?.partitions.find((x) => x.partition === p.partition);
      const committed = starts.get(key) ?? 0;
      if (info && committed < info.startOffset) {
        this.#o.logger.warn(
          { topic: p.topic, partition: p.partition, committed, startOffset: info.startOffset },
          'retention removed records this group had not consumed; starting at the oldest stored',
        );
        starts.set(key, info.startOffset);
      } else starts.set(key, committed);
    }
    return starts;
  }

  async #read(state: PartitionState): Promise<void> {
    const min = this.#o.pollMinMs ?? 5;
    const max = this.#o.pollMaxMs ?? 25;
    let backoff = min;
    let failingSince: number | undefined;
    while (!state.revoked && !this.#stopping) {
      if (this.#o.yieldGate?.holding()) {
        await new Promise<void>((resolve) => {
          state.wake = resolve;
          void this.#whileHeld().then(resolve);
        });
        continue;
      }
      const room = this.#maxBuffered - state.progress.outstanding;
      if (room <= 0) {
        // Woken as soon as a batch of this partition finishes; the timeout is only a safety net.
        await this.#pause(state, 1000);
        continue;
      }
      let records: readonly StoredRecord[];
      try {
        records = await this.#o.log.read(
          state.ref.topic,
          state.ref.partition,
          state.nextRead,
          Math.min(room, 1000),
        );
      } catch (error) {
        failingSince ??= this.#clock();
        // A read-only connection that keeps failing is not healed by retrying on it: a new process
        // (the supervisor restarts this one) opens a fresh one. Until then the replica looks alive.
        if (this.#clock() - failingSince > READ_FAILURE_LIMIT_MS) {
          this.#o.onFatal?.(
            new Error(`cannot read ${state.ref.topic}/${state.ref.partition} from the log for 30 s`, {
              cause: error,
            }),
          );
          return;
        }
        this.#o.logger.warn({ err: error, topic: state.ref.topic }, 'cannot read the log; retrying');
        await this.#pause(state, 1000);
        continue;
      }
      failingSince = undefined;
      if (records.length === 0) {
        await this.#pause(state, backoff);
        backoff = Math.min(max, backoff * 2);
        continue;
      }
      backoff = min;
      const now = this.#clock();
      const lanes = this.#lanes;
      // One lane for the whole read when lanes go by partition (or there is one lane).
      const single =
        lanes.length === 1 || this.#laneMode === 'partition'
          ? lanes[laneOf(records[0]!, lanes.length, this.#laneMode)]!
          : undefined;
      const progress = state.progress;
      for (const r of records) {
        progress.add(r.offset);
        (single ?? lanes[laneOf(r, lanes.length, 'key')]!).queue.push(r, now);
      }
      state.nextRead = records[records.length - 1]!.offset + 1;
      for (const lane of this.#lanes) this.#pump(lane);
      if (records.length < SMALL_READ) {
        // At the end of a partition that is being written: waiting `pollMinMs` lets the next
        // read take what arrived meanwhile in one query instead of a query per append (a replica
        // keeping up with a fast capture used most of its CPU on tiny reads).
        await this.#pause(state, min);
      } else {
        // Yield so lanes start before the next read.
        await new Promise((r) => setImmediate(r));
      }
    }
  }

  /**
   * Settles once the capture lets go (or at stop). One timer for all the partitions: a held
   * replica wakes a few times a second, not once per partition every few milliseconds.
   */
  #whileHeld(): Promise<void> {
    this.#held ??= new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        if (!this.#stopping && this.#o.yieldGate?.holding()) return;
        clearInterval(timer);
        this.#held = undefined;
        resolve();
      }, YIELD_POLL_MS);
      timer.unref();
    });
    return this.#held;
  }

  /** Sleeps up to `ms`, ended early by `wake` (revoke, stop, room freed). */
  #pause(state: PartitionState, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      state.wake = done;
    });
  }

  #pump(lane: Lane): void {
    if (lane.running || lane.queue.size === 0 || this.#abort.signal.aborted) return;
    if (this.#stopping && this.#draining === 0) return;
    const now = this.#clock();
    const wait = this.#c.maxWaitMs - (now - lane.queue.since);
    // A revocation does not wait for batches to fill.
    if (this.#draining === 0 && lane.queue.size < this.#c.maxRecords && wait > 0) {
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
    const batch = lane.queue.take(this.#c.maxRecords, now);
    lane.running = true;
    void this.#execute(batch).finally(() => {
      lane.running = false;
      this.#pump(lane);
    });
  }

  #stateOf(record: StoredRecord): PartitionState | undefined {
    return this.#byTopic.get(record.topic)?.get(record.partition);
  }

  async #execute(batch: StoredRecord[]): Promise<void> {
    // Records per partition in this batch (a batch holds records of few partitions).
    const states = new Map<PartitionState, number>();
    let last: PartitionState | undefined;
    for (const r of batch) {
      if (last === undefined || last.ref.partition !== r.partition || last.ref.topic !== r.topic) {
        last = this.#stateOf(r)!;
      }
      states.set(last, (states.get(last) ?? 0) + 1);
    }
    for (const [s, n] of states) s.executing += n;
    this.#inFlight += batch.length;
    try {
      const ok = await this.#handler!.run(batch, (records) => {
        let state: PartitionState | undefined;
        for (const r of records) {
          if (state === undefined || state.ref.partition !== r.partition || state.ref.topic !== r.topic) {
            state = this.#stateOf(r);
          }
          state?.progress.finish(r.offset);
        }
      });
      this.#lastProgressAt = this.#clock();
      if (!ok && !this.#stopping) {
        this.#o.onFatal?.(new Error('a batch could neither be handled nor dead-lettered'));
      }
    } catch (error) {
      this.#o.onFatal?.(error instanceof Error ? error : new Error(String(error)));
    } finally {
      for (const [s, n] of states) s.executing -= n;
      this.#inFlight -= batch.length;
      for (const s of states.keys()) s.wake();
      this.#scheduleFlush();
      this.#notify();
    }
  }

  #scheduleFlush(): void {
    if (this.#flushTimer !== undefined) return;
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = undefined;
      try {
        this.#flush([...this.#partitions.values()]);
      } catch (error) {
        this.#o.logger.warn({ err: error }, 'cannot commit offsets; retrying');
        this.#scheduleFlush();
      }
    }, 100);
  }

  /** Commits the watermark of partitions that moved (a mirror of the target's for transactional). */
  #flush(states: readonly PartitionState[]): void {
    const moved = states.filter((s) => s.progress.committable > s.committed);
    if (moved.length === 0) return;
    this.#o.store.commit(
      this.#c.group,
      moved.map((s) => ({ topic: s.ref.topic, partition: s.ref.partition, offset: s.progress.committable })),
    );
    for (const s of moved) s.committed = s.progress.committable;
  }

  #until(condition: () => boolean): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => {
        if (condition()) {
          this.#waiters.delete(check);
          resolve();
        }
      };
      this.#waiters.add(check);
    });
  }

  #notify(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }
}

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

function emptyCounters(): ReplicaCounters {
  return { processed: 0, failed: 0, retried: 0, deadLettered: 0, durations: [] };
}
