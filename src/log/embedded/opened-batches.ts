import type { OpenedBatch } from '../../core/batch-codec.ts';
import { LogError } from '../../core/errors.ts';
import type { StoredRecord } from '../../core/record.ts';
import { batchCodec, pushRecords } from '../batch-codecs.ts';
import type { BatchStatements } from './sqlite-statements.ts';

/** Opened row batches kept per log instance: a consumer reads a 20,000-record batch in many calls. */
const OPENED_BATCHES = 4;

/**
 * The row batches a reader opened last, by partition and last offset, least recently used first:
 * a batch is parsed by its codec once and its records rendered by index as the reads reach them
 * (docs/embedded-log.md, "Row batches"). A batch that cannot be rendered is LOG_CORRUPT, naming
 * its offsets; an unknown codec is LOG_UNKNOWN_CODEC. Not safe for concurrent use (one per log).
 */
export class OpenedBatches {
  readonly #file: string;
  /** By "partitionId:lastOffset". */
  readonly #opened = new Map<
    string,
    { readonly id: number; readonly base: number; readonly last: number; readonly batch: OpenedBatch }
  >();

  constructor(file: string) {
    this.#file = file;
  }

  /** Pushes records `from .. min(last, from + need - 1)` of an opened batch; returns how many. */
  serve(
    batch: OpenedBatch,
    id: number,
    topic: string,
    partition: number,
    base: number,
    last: number,
    from: number,
    need: number,
    out: StoredRecord[],
  ): number {
    const end = Math.min(last + 1, from + need);
    try {
      pushRecords(batch, topic, partition, base, from, end, out);
    } catch (cause) {
      throw unreadableBatch(this.#file, topic, partition, base, last, cause);
    }
    // Read to its end, a batch is not needed again: dropped now, it dies young (cheap to collect).
    if (end === last + 1) this.#opened.delete(`${id}:${last}`);
    return Math.max(0, end - from);
  }

  /**
   * The last offset of the opened batch of partition `id` holding `offset`, if one is kept: a read
   * that resumes inside it needs no copy of its data (see the merged statement).
   */
  holding(id: number, offset: number): number | undefined {
    for (const entry of this.#opened.values()) {
      if (entry.id === id && entry.base <= offset && offset <= entry.last) return entry.last;
    }
    return undefined;
  }

  /**
   * An opened batch from the cache, or opened from the merged read's row when it carries the
   * data; undefined when it does not (see `fetch`).
   */
  cached(
    id: number,
    last: number,
    base: number,
    stored: { readonly codec: string; readonly header: string; readonly data: Uint8Array | null },
    topic: string,
    partition: number,
  ): OpenedBatch | undefined {
    const cacheKey = `${id}:${last}`;
    const cached = this.#opened.get(cacheKey);
    if (cached !== undefined && cached.base === base) {
      this.#opened.delete(cacheKey);
      this.#opened.set(cacheKey, cached);
      return cached.batch;
    }
    if (stored.data === null) return undefined;
    return this.#openWith(id, last, base, stored.codec, stored.header, stored.data, topic, partition);
  }

  /** Fetches and opens a batch whose data the merged read left out; undefined if it is gone. */
  fetch(
    batches: BatchStatements,
    id: number,
    last: number,
    base: number,
    topic: string,
    partition: number,
    codec: string,
  ): OpenedBatch | undefined {
    const content = batches.content.get(id, last) as [string, string, Uint8Array] | undefined;
    if (content === undefined) return undefined;
    const [, header, data] = content;
    return this.#openWith(id, last, base, codec, header, data, topic, partition);
  }

  /** Opens a batch with its codec, checks its count, and keeps it among the last opened. */
  #openWith(
    id: number,
    last: number,
    base: number,
    codec: string,
    header: string,
    data: Uint8Array,
    topic: string,
    partition: number,
  ): OpenedBatch {
    let opened: OpenedBatch;
    try {
      opened = batchCodec(codec).open(header, data);
    } catch (cause) {
      if (cause instanceof LogError && cause.code === 'LOG_UNKNOWN_CODEC') throw cause;
      throw unreadableBatch(this.#file, topic, partition, base, last, cause, codec);
    }
    if (opened.count !== last - base + 1) {
      throw unreadableBatch(
        this.#file,
        topic,
        partition,
        base,
        last,
        new Error(`the codec rendered ${opened.count} records`),
        codec,
      );
    }
    const cacheKey = `${id}:${last}`;
    this.#opened.set(cacheKey, { id, base, last, batch: opened });
    if (this.#opened.size > OPENED_BATCHES) {
      this.#opened.delete(this.#opened.keys().next().value!);
    }
    return opened;
  }
}

function unreadableBatch(
  file: string,
  topic: string,
  partition: number,
  base: number,
  last: number,
  cause: unknown,
  codec?: string,
): LogError {
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new LogError(
    'LOG_CORRUPT',
    `The row batch at offsets ${base}..${last} of ${topic}/${partition} in ${file} cannot be rendered` +
      `${codec === undefined ? '' : ` by codec ${codec}`}: ${detail}`,
    { cause, hint: 'Restore the data directory from a backup, or move it away to start a new log.' },
  );
}
