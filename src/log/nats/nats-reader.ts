import { LogError } from '../../core/errors.ts';
import type { StoredRecord } from '../../core/record.ts';
import { batchCodec, type OpenedBatch, pushRecords } from '../batch-codecs.ts';
import { commitInfo, decodeRecordMessage, type RecordMessage } from './nats-messages.ts';
import type { StreamStore } from './nats-store.ts';

export type Completion = 'complete' | 'abandoned' | 'pending';

/** Where the next read of a partition probably starts: saves the search on sequential reads. */
interface Cursor {
  offset: number;
  seq: number;
  /** The message at `seq`, opened, when the previous read stopped inside it. */
  opened?: { readonly message: RecordMessage; readonly batch: OpenedBatch };
}

const MAX_CURSORS = 1_024;

/**
 * The read side: finds the message holding an offset, renders its records, and returns nothing of an
 * append that is not complete (docs/nats.md, "Appends and commits").
 */
export class NatsReader {
  readonly #store: StreamStore;
  /** Final sequences known complete, by append id (recent ones). */
  readonly #complete = new Map<string, number>();
  readonly #cursors = new Map<string, Cursor>();

  constructor(store: StreamStore) {
    this.#store = store;
  }

  /** Whether the append `message` belongs to has completed, been abandoned, or is still being written. */
  async completion(message: { seq: number; append: string; commit: number }): Promise<Completion> {
    if (message.commit === message.seq) return 'complete';
    if (this.#complete.get(message.append) === message.commit) return 'complete';
    const found = await this.#commitOf(message);
    if (found !== undefined) return found;
    // Not there when asked; the stream's end says whether it may still come. The end is read
    // first and the message asked for again: a commit stored between the two questions (the
    // writer is appending right now) would otherwise look abandoned, and the reader would skip
    // this message and return the next ones (a hole in the partition).
    const bounds = await this.#store.bounds();
    if (bounds === null || bounds.last < message.commit) return 'pending';
    return (await this.#commitOf(message)) ?? 'abandoned';
  }

  /** 'complete' / 'abandoned' from the message at the commit sequence; undefined while it is absent. */
  async #commitOf(message: { append: string; commit: number }): Promise<Completion | undefined> {
    const final = await this.#store.at(message.commit);
    if (final === null) return undefined;
    const info = commitInfo(final.header, final.seq, this.#store.stream);
    if (info.append !== message.append) return 'abandoned';
    this.#complete.set(message.append, message.commit);
    if (this.#complete.size > 4_096) this.#complete.delete(this.#complete.keys().next().value!);
    return 'complete';
  }

  async read(subject: string, topic: string, partition: number, offset: number, max: number) {
    const out: StoredRecord[] = [];
    let cursor = this.#cursors.get(subject);
    if (cursor === undefined || cursor.offset !== offset) {
      cursor = { offset, seq: await this.#seek(subject, offset) };
    }
    let at = offset;
    let seq = cursor.seq;
    let opened = cursor.opened;
    while (out.length < max) {
      let message: RecordMessage;
      let batch: OpenedBatch;
      if (opened !== undefined && opened.message.seq === seq) {
        ({ message, batch } = opened);
      } else {
        // Any replica answers a direct get; one that is catching up (a node just restarted) has
        // nothing past its own end: the leader is asked before the read ends there. Without this
        // a one-shot reader (`tributary read`, a test's oracle) stopped short of the end.
        const raw = (await this.#store.next(subject, seq)) ?? (await this.#store.leaderNext(subject, seq));
        if (raw === null) break;
        message = decodeRecordMessage(raw, this.#store.stream);
        const state = await this.completion(message);
        if (state === 'pending') break;
        if (state === 'abandoned' || message.base + message.count <= at) {
          seq = message.seq + 1;
          continue;
        }
        batch = openBatch(message, topic, partition);
      }
      opened = undefined;
      // Offsets are dense; only the first message found may start above `at` (retention removed the rest).
      if (message.base > at) {
        if (out.length > 0) break;
        at = message.base;
      }
      const end = Math.min(message.base + message.count, at + max - out.length);
      try {
        pushRecords(batch, topic, partition, message.base, at, end, out);
      } catch (cause) {
        throw unreadable(this.#store.stream, message, cause);
      }
      at = end;
      if (end === message.base + message.count) seq = message.seq + 1;
      else opened = { message, batch };
    }
    this.#cursors.delete(subject);
    this.#cursors.set(subject, { offset: at, seq, ...(opened ? { opened } : {}) });
    if (this.#cursors.size > MAX_CURSORS) this.#cursors.delete(this.#cursors.keys().next().value!);
    return out;
  }

  /**
   * The smallest stream sequence from which the next message of `subject` holds `offset` or a later
   * one: a binary search over sequences (about log2(messages) direct gets).
   */
  async #seek(subject: string, offset: number): Promise<number> {
    const bounds = await this.#store.bounds();
    if (bounds === null || bounds.messages === 0) return 1;
    let lo = bounds.first;
    let hi = bounds.last + 1;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      const raw = await this.#store.next(subject, mid);
      if (raw === null) {
        hi = mid;
        continue;
      }
      const message = decodeRecordMessage(raw, this.#store.stream);
      if (message.base + message.count > offset) hi = mid;
      else lo = raw.seq + 1;
    }
    return lo;
  }

  /** The partition's start and end offsets: committed records only. */
  async bounds(subject: string): Promise<{ startOffset: number; endOffset: number }> {
    const lastRaw = await this.#store.last(subject);
    if (lastRaw === null) return { startOffset: 0, endOffset: 0 };
    const last = decodeRecordMessage(lastRaw, this.#store.stream);
    const state = await this.completion(last);
    const endOffset = state === 'complete' ? last.base + last.count : last.from;
    const firstRaw = await this.#store.leaderNext(subject, 1);
    const startOffset =
      firstRaw === null
        ? endOffset
        : Math.min(endOffset, decodeRecordMessage(firstRaw, this.#store.stream).base);
    return { startOffset, endOffset };
  }
}

function openBatch(message: RecordMessage, topic: string, partition: number): OpenedBatch {
  let batch: OpenedBatch;
  try {
    batch = batchCodec(message.codec).open(message.codecHeader, message.data);
  } catch (cause) {
    if (cause instanceof LogError && cause.code === 'LOG_UNKNOWN_CODEC') throw cause;
    throw unreadable(`${topic}/${partition}`, message, cause);
  }
  if (batch.count !== message.count) {
    throw unreadable(
      `${topic}/${partition}`,
      message,
      new Error(`the codec rendered ${batch.count} records`),
    );
  }
  return batch;
}

function unreadable(where: string, message: RecordMessage, cause: unknown): LogError {
  return new LogError(
    'LOG_CORRUPT',
    `Message ${message.seq} (offsets ${message.base}..${message.base + message.count - 1}) of ${where} cannot be rendered by codec ${message.codec}: ${(cause as Error)?.message ?? cause}`,
    { cause, hint: 'Remove the stream (or restore it) to start a new log.' },
  );
}
