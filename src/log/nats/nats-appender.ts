import type { JetStreamClient } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import type { MsgHdrs } from '@nats-io/nats-core';
import { nuid } from '@nats-io/nats-core';
import { LogError } from '../../core/errors.ts';
import type { Checkpoint } from '../../core/event-log.ts';
import type { AppendBatch, AppendItem, AppendRecord, StoredRecord } from '../../core/record.ts';
import { checkBatch, hasHeaders, isBatch } from '../append-items.ts';
import { batchCodec } from '../batch-codecs.ts';
import { EMPTY_HEADERS, encodeRecords, RECORDS_CODEC } from '../embedded/record-batch.ts';
import { partitionForKey } from '../partitioner.ts';
import {
  currentTerm,
  type LeaderTerm,
  supersededError,
  type TermStore,
  takeNextTerm,
} from './nats-leadership.ts';
import { checkpointHeaders, recordHeaders } from './nats-messages.ts';
import { LogNames } from './nats-names.ts';
import type { NatsReader } from './nats-reader.ts';
import { unavailable } from './nats-setup.ts';
import type { StreamStore } from './nats-store.ts';

/** Records per message at most (a message is also kept under the server's max_payload). */
const MAX_RECORDS_PER_MESSAGE = 10_000;

interface TopicState {
  readonly partitions: number;
  /** Next offset per partition, loaded from the stream on first use. */
  readonly next: (number | undefined)[];
}

type Segment = { kind: 'records'; indexes: number[] } | { kind: 'blob'; batch: AppendBatch };

interface PartitionPlan {
  readonly topic: string;
  readonly partition: number;
  readonly subject: string;
  readonly from: number;
  readonly segments: Segment[];
}

interface Outgoing {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly headers: MsgHdrs;
  readonly id: string;
  readonly seq: number;
}

export interface AppenderOptions {
  readonly defaultPartitions: number;
  /** Largest message payload to publish (below the server's max_payload). */
  readonly maxMessageBytes: number;
  /** How long an append retries while the cluster does not answer before it fails (ms). */
  readonly retryForMs: number;
  /** Told of each failed attempt that will be retried (the log keeps retrying the same messages). */
  readonly onRetry?: (error: unknown, attempt: number) => void;
}

/**
 * The write path (docs/nats.md, "Appends and commits"). The log has one writer: it knows the stream's
 * last sequence and chains every message to the previous one (expected last sequence), so messages
 * land in the order published, a retry after a leader change can never overtake a later message,
 * and a second writer is fenced off. Each message has an id (Nats-Msg-Id) that makes a retry land
 * once; a retry after the dedupe window is recognised by its id at the expected sequence.
 */
export class NatsAppender {
  readonly #js: JetStreamClient;
  readonly #kv: KV;
  readonly #store: StreamStore;
  readonly #reader: NatsReader;
  readonly #names: LogNames;
  readonly #options: AppenderOptions;
  readonly #writer = nuid.next();
  readonly #topics = new Map<string, TopicState>();
  #appends = 0;
  /** The stream's last sequence; undefined until recovered (and again after a failed append). */
  #lastSeq: number | undefined;
  /** The leadership term this writer took (nats-leadership.ts); a writer without one is fenced by the chain only. */
  #term: { terms: TermStore; term: LeaderTerm } | undefined;
  /** The KV bucket's stream, read at its leader (leadership terms). */
  readonly #kvStream: StreamStore;

  constructor(
    js: JetStreamClient,
    kv: KV,
    store: StreamStore,
    reader: NatsReader,
    names: LogNames,
    options: AppenderOptions,
    kvStream: StreamStore,
  ) {
    this.#kvStream = kvStream;
    this.#js = js;
    this.#kv = kv;
    this.#store = store;
    this.#reader = reader;
    this.#names = names;
    this.#options = options;
  }

  async append(items: readonly AppendItem[], checkpoint: Checkpoint | undefined): Promise<StoredRecord[]> {
    if (this.#lastSeq === undefined) await this.#recover();
    const stored: StoredRecord[] = [];
    const headersText: (string | null)[] = [];
    const plans = await this.#plan(items, stored, headersText);
    const appendId = `${this.#writer}.${++this.#appends}`;
    const bodies = this.#bodies(plans, stored, headersText);
    const total = bodies.length + (checkpoint === undefined ? 0 : 1);
    if (total === 0) return stored;
    const first = this.#lastSeq! + 1;
    const info = { append: appendId, commit: first + total - 1 };
    const outgoing: Outgoing[] = bodies.map((b, i) => ({
      subject: b.subject,
      data: b.data,
      headers: recordHeaders(info, b.base, b.count, b.from, b.codec, b.codecHeader),
      id: `${appendId}.${i}`,
      seq: first + i,
    }));
    if (checkpoint !== undefined) {
      outgoing.push({
        subject: this.#names.checkpoint(checkpoint.source),
        data: new TextEncoder().encode(checkpoint.position),
        headers: checkpointHeaders(info),
        id: `${appendId}.${bodies.length}`,
        seq: info.commit,
      });
    }
    try {
      await this.#publish(outgoing);
    } catch (error) {
      // What landed of this append stays, unfinished: readers skip it, the next append follows it.
      this.#lastSeq = undefined;
      for (const t of this.#topics.values()) t.next.fill(undefined);
      throw error;
    }
    this.#lastSeq = info.commit;
    for (const plan of plans) {
      const state = this.#topics.get(plan.topic)!;
      state.next[plan.partition] = plan.from + countOf(plan.segments);
    }
    return stored;
  }

  /**
   * Finds the stream's last sequence. The messages of an append that did not complete (a crash or a
   * failure mid-append) stay where they are: readers skip them (their last message never came, or
   * its sequence holds another append's), and a partition's next offset is then the `Trib-From` of
   * such a message. They are not deleted: on 2.9, deleting the last message of a subject leaves
   * `last_by_subj` answering "not found" for the subject (measured), which would restart its offsets.
   */
  async #recover(): Promise<void> {
    const bounds = await this.#store.bounds();
    if (bounds === null) throw new LogError('LOG_FAILED', `Stream ${this.#store.stream} disappeared`);
    // The end first, then the term: a term taken after this read breaks the chain at the next publish.
    if (this.#term !== undefined) {
      const now = await currentTerm(this.#term.terms).catch((error: unknown) => {
        throw unavailable(`read the leadership term of stream ${this.#store.stream}`, error);
      });
      if (now?.term !== this.#term.term.term || now.holder !== this.#term.term.holder) {
        throw supersededError(this.#store.stream, this.#term.term, now);
      }
    }
    this.#lastSeq = bounds.last;
  }

  /**
   * Makes this writer the leader of `source`: publishes the next term, chained to the stream's
   * end, which fences every earlier writer (nats-leadership.ts). Call before reading the position
   * to resume from: everything a former leader appended is then before it.
   */
  async takeLeadership(
    source: string,
    holder: string,
  ): Promise<{ term: LeaderTerm; previous: LeaderTerm | null }> {
    const terms = this.termStore(source);
    const taken = await takeNextTerm(this.#js, this.#store, terms, this.#names.leader(source), holder, {
      retryForMs: this.#options.retryForMs,
      ...(this.#options.onRetry ? { onRetry: this.#options.onRetry } : {}),
    });
    this.#term = { terms, term: taken.term };
    this.#lastSeq = taken.seq;
    // Offsets may have moved under a former leader: found again from the stream.
    for (const t of this.#topics.values()) t.next.fill(undefined);
    return { term: taken.term, previous: taken.previous };
  }

  /** Where the leadership term of `source` lives. */
  termStore(source: string): TermStore {
    const key = LogNames.leaderKey(source);
    return { kv: this.#kv, kvStream: this.#kvStream, key, kvSubject: this.#names.kvSubject(key) };
  }

  /** The term this writer holds, if it took one. */
  get term(): LeaderTerm | undefined {
    return this.#term?.term;
  }

  async #topic(name: string): Promise<TopicState> {
    let state = this.#topics.get(name);
    if (state !== undefined) return state;
    if (typeof name !== 'string' || name.length === 0) {
      throw new LogError(
        'LOG_INVALID_ARGUMENT',
        `A record's topic must be a non-empty string, got ${String(name)}`,
      );
    }
    const key = LogNames.topicKey(name);
    let partitions: number;
    try {
      const entry = await this.#kv.get(key);
      if (entry !== null && entry.operation === 'PUT') {
        partitions = (entry.json() as { partitions: number }).partitions;
      } else {
        partitions = this.#options.defaultPartitions;
        await this.#kv.create(key, JSON.stringify({ partitions })).catch(async (error: unknown) => {
          const again = await this.#kv.get(key);
          if (again === null) throw error;
          partitions = (again.json() as { partitions: number }).partitions;
        });
      }
    } catch (error) {
      throw unavailable(`read or create topic ${name}`, error);
    }
    state = { partitions, next: new Array(partitions).fill(undefined) };
    this.#topics.set(name, state);
    return state;
  }

  /** Assigns partitions and offsets; throws before anything is published if an item is invalid. */
  async #plan(
    items: readonly AppendItem[],
    stored: StoredRecord[],
    headersText: (string | null)[],
  ): Promise<PartitionPlan[]> {
    const plans = new Map<string, PartitionPlan>();
    const next = new Map<string, number>();
    const planOf = async (topic: string, partition: number): Promise<[PartitionPlan, string]> => {
      const subject = this.#names.records(topic, partition);
      let plan = plans.get(subject);
      if (plan === undefined) {
        const state = this.#topics.get(topic)!;
        let from = state.next[partition];
        if (from === undefined) {
          from = (await this.#reader.bounds(subject)).endOffset;
          state.next[partition] = from;
        }
        plan = { topic, partition, subject, from, segments: [] };
        plans.set(subject, plan);
        next.set(subject, from);
      }
      return [plan, subject];
    };
    const add = async (record: AppendRecord, partitions: number) => {
      const partition = partitionOf(record, partitions);
      const [plan, subject] = await planOf(record.topic, partition);
      const offset = next.get(subject)!;
      next.set(subject, offset + 1);
      const last = plan.segments.at(-1);
      const segment = last?.kind === 'records' ? last : { kind: 'records' as const, indexes: [] };
      if (segment !== last) plan.segments.push(segment);
      segment.indexes.push(stored.length);
      const headers = hasHeaders(record.headers) ? JSON.stringify(record.headers) : null;
      headersText.push(headers);
      stored.push({
        topic: record.topic,
        partition,
        offset,
        key: record.key,
        value: record.value,
        headers: headers === null ? EMPTY_HEADERS : record.headers,
        timestamp: record.timestamp,
      });
    };
    for (const item of items) {
      const state = await this.#topic(item.topic);
      if (!isBatch(item)) {
        await add(item, state.partitions);
        continue;
      }
      checkBatch(item);
      if (
        state.partitions === 1 &&
        item.data.byteLength + item.header.length < this.#options.maxMessageBytes
      ) {
        const [plan, subject] = await planOf(item.topic, 0);
        next.set(subject, next.get(subject)! + item.count);
        plan.segments.push({ kind: 'blob', batch: item });
        continue;
      }
      const opened = batchCodec(item.codec).open(item.header, item.data);
      if (opened.count !== item.count) {
        throw new LogError(
          'LOG_INVALID_ARGUMENT',
          `A batch for topic ${item.topic} says ${item.count} records but codec ${item.codec} renders ${opened.count}`,
        );
      }
      for (let i = 0; i < item.count; i++) {
        const r = opened.record(i);
        await add(
          { topic: item.topic, key: r.key, value: r.value, headers: r.headers, timestamp: r.timestamp },
          state.partitions,
        );
      }
    }
    return [...plans.values()];
  }

  /** The message bodies of the plans: record runs cut to fit a message, blobs as they are. */
  #bodies(
    plans: readonly PartitionPlan[],
    stored: readonly StoredRecord[],
    headersText: readonly (string | null)[],
  ) {
    const bodies: {
      subject: string;
      data: Uint8Array;
      base: number;
      count: number;
      from: number;
      codec: string;
      codecHeader: string;
    }[] = [];
    const max = this.#options.maxMessageBytes;
    const pushRun = (plan: PartitionPlan, run: number[]) => {
      const encoded = encodeRecords(stored, headersText, run);
      if (encoded.data.byteLength > max && run.length > 1) {
        const half = Math.ceil(run.length / 2);
        pushRun(plan, run.slice(0, half));
        pushRun(plan, run.slice(half));
        return;
      }
      if (encoded.data.byteLength > max) {
        const r = stored[run[0]!]!;
        throw new LogError(
          'LOG_RECORD_TOO_LARGE',
          `A record of ${r.topic} takes ${encoded.data.byteLength} bytes, more than the NATS message limit of ${max}`,
          { hint: 'Raise max_payload in the NATS server configuration (up to 64 MB) and restart the log.' },
        );
      }
      bodies.push({
        subject: plan.subject,
        data: encoded.data,
        base: stored[run[0]!]!.offset,
        count: run.length,
        from: plan.from,
        codec: RECORDS_CODEC,
        codecHeader: encoded.header,
      });
    };
    for (const plan of plans) {
      let base = plan.from;
      for (const segment of plan.segments) {
        if (segment.kind === 'blob') {
          const b = segment.batch;
          bodies.push({
            subject: plan.subject,
            data: b.data,
            base,
            count: b.count,
            from: plan.from,
            codec: b.codec,
            codecHeader: b.header,
          });
          base += b.count;
          continue;
        }
        // Runs cut by an estimate of their size, then halved while still too large.
        let run: number[] = [];
        let bytes = 0;
        for (const i of segment.indexes) {
          const r = stored[i]!;
          const size = 24 + (r.key?.length ?? 0) + (r.value?.length ?? 0) + (headersText[i]?.length ?? 0);
          if (run.length > 0 && (bytes + size > max * 0.8 || run.length >= MAX_RECORDS_PER_MESSAGE)) {
            pushRun(plan, run);
            run = [];
            bytes = 0;
          }
          run.push(i);
          bytes += size;
        }
        if (run.length > 0) pushRun(plan, run);
        base += segment.indexes.length;
      }
    }
    return bodies;
  }

  /**
   * Publishes the messages pipelined, each expecting the previous one's sequence (and, within one
   * attempt, its message id); on a failure, publishes again from the first message not stored,
   * until `retryForMs` has passed. The first message of an attempt expects the sequence only: the
   * server remembers the last message id in memory, rebuilt only within the dedupe window.
   */
  async #publish(messages: readonly Outgoing[]): Promise<void> {
    let done = 0;
    let attempt = 0;
    const started = Date.now();
    while (done < messages.length) {
      const pending = messages.slice(done);
      const results = await Promise.allSettled(
        pending.map((m, i) =>
          this.#js.publish(m.subject, m.data, {
            msgID: m.id,
            headers: m.headers,
            // Pipelined: a message after the first also expects its predecessor's id, so that when
            // the predecessor did not land and another writer's message took its place (a new
            // leader's term), none of the following ones lands either (nats-leadership.ts).
            expect:
              i === 0
                ? { lastSequence: m.seq - 1 }
                : { lastSequence: m.seq - 1, lastMsgID: pending[i - 1]!.id },
            timeout: 5_000,
            retries: 0,
          }),
        ),
      );
      let failure: unknown;
      for (const [i, result] of results.entries()) {
        const m = pending[i]!;
        if (result.status === 'fulfilled' && result.value.seq === m.seq) {
          done++;
          continue;
        }
        if (result.status === 'fulfilled' || isWrongSequence(result.reason)) {
          // Ours already (a retry after the dedupe window), or another writer's: look at that sequence.
          const there = await this.#store.at(m.seq);
          if (there !== null && there.header?.get('Nats-Msg-Id') === m.id) {
            done++;
            continue;
          }
          throw await this.#fenced(m, result.status === 'fulfilled' ? result.value.seq : undefined);
        }
        failure = result.reason;
        break;
      }
      if (done === messages.length) return;
      attempt++;
      if (Date.now() - started >= this.#options.retryForMs) {
        throw unavailable(
          `append to stream ${this.#store.stream} (gave up after ${attempt} attempts over ${Date.now() - started} ms)`,
          failure,
        );
      }
      this.#options.onRetry?.(failure, attempt);
      await new Promise((r) => setTimeout(r, Math.min(2_000, 50 * 2 ** Math.min(attempt, 6))));
    }
  }

  async #fenced(message: Outgoing, landedAt: number | undefined): Promise<LogError> {
    if (this.#term !== undefined) {
      const now = await currentTerm(this.#term.terms).catch(() => undefined);
      if (now !== undefined && now?.term !== this.#term.term.term) {
        return supersededError(this.#store.stream, this.#term.term, now);
      }
    }
    return new LogError(
      'LOG_FENCED',
      `Stream ${this.#store.stream} moved on without this writer: message ${message.id} was to be sequence ${message.seq}` +
        (landedAt === undefined ? '' : ` but landed at ${landedAt}`) +
        ' (another process appends to the same log, or the stream lost acknowledged messages)',
      {
        hint: 'Run one capture per log (log.nats.name); if the stream lost data, see docs/nats.md, "Durability".',
      },
    );
  }
}

function countOf(segments: readonly Segment[]): number {
  let n = 0;
  for (const s of segments) n += s.kind === 'blob' ? s.batch.count : s.indexes.length;
  return n;
}

function isWrongSequence(error: unknown): boolean {
  const e = error as { code?: number; api_error?: { err_code?: number }; message?: string };
  return e?.api_error?.err_code === 10071 || String(e?.message).includes('wrong last sequence');
}

function partitionOf(record: AppendRecord, partitions: number): number {
  const given = record.partition;
  if (given === undefined) return record.key === null ? 0 : partitionForKey(record.key, partitions);
  if (!Number.isInteger(given) || given < 0 || given >= partitions) {
    throw new LogError(
      'LOG_INVALID_PARTITION',
      `Topic ${record.topic} has partitions 0..${partitions - 1}; a record asked for partition ${given}`,
    );
  }
  return given;
}
