/**
 * Records of one partition from one append, stored as one row batch (codec `records`) instead of one
 * SQLite row each. The writer's cost is the same either way (it is the bytes: UTF-8, the WAL, the
 * checkpoint), but a reader pays per row: better-sqlite3 builds a JS array and one string per column
 * of every row, measured at 1.2 µs per capture-sized record through `read()`, against 0.35 µs to cut
 * the same records out of one blob (docs/embedded-log.md, "Appended records as row batches"). Every
 * consumer group reads every record, so that is the cost that counts.
 *
 * Layout of `data` (little-endian), for `count` records:
 *   uint32           count
 *   count × float64  timestamp (ms since epoch)
 *   count × int32    key length in bytes, -1 for null
 *   count × int32    value length in bytes, -1 for null (a tombstone)
 *   count × int32    headers length in bytes (JSON text), 0 for no headers
 *   then, record after record, the key's, the value's and the headers' UTF-8 bytes.
 * The header (the batch's text column) is the layout version, "1".
 */

import type { BatchCodec, OpenedBatch, RenderedRecord } from '../../core/batch-codec.ts';
import { BlobRecord, type RecordBlob } from '../../core/blob-record.ts';
import type { Record, StoredRecord } from '../../core/record.ts';

export const RECORDS_CODEC = 'records';
const VERSION = '1';
/** Bytes of fixed-size fields per record: the timestamp and three lengths. */
const FIXED = 8 + 4 + 4 + 4;
/** The count before them. */
const PREFIX = 4;

/** The headers of every record without any (frozen, shared). */
export const EMPTY_HEADERS: Readonly<{ [name: string]: string }> = Object.freeze({});

export interface EncodedRecords {
  readonly header: string;
  readonly data: Buffer;
  /** The newest timestamp: retention removes the batch once all of its records are expired. */
  readonly timestamp: number;
}

/**
 * Encodes `records[i]` for each i of `indexes`, with `headersText[i]` their headers as JSON (or null
 * for none), as the append already serialized them. `buffer(size)` gives the memory to write into
 * (at least `size` bytes); the result's `data` is a view of it.
 */
export function encodeRecords(
  records: readonly Record[],
  headersText: readonly (string | null)[],
  indexes: readonly number[],
  buffer: (size: number) => Buffer = Buffer.allocUnsafe,
): EncodedRecords {
  const count = indexes.length;
  // UTF-8 takes at most 3 bytes per UTF-16 unit: one pass writes every string, the blob is then cut.
  let bound = PREFIX + count * FIXED;
  for (const i of indexes) {
    const r = records[i]!;
    bound += 3 * ((r.key?.length ?? 0) + (r.value?.length ?? 0) + (headersText[i]?.length ?? 0));
  }
  const data = buffer(bound);
  data.writeUInt32LE(count, 0);
  const keys = PREFIX + count * 8;
  const values = keys + count * 4;
  const headers = values + count * 4;
  let at = headers + count * 4;
  let timestamp = Number.NEGATIVE_INFINITY;
  for (let n = 0; n < count; n++) {
    const i = indexes[n]!;
    const r = records[i]!;
    data.writeDoubleLE(r.timestamp, PREFIX + n * 8);
    if (r.timestamp > timestamp) timestamp = r.timestamp;
    at = writeText(data, r.key, at, keys + n * 4, -1);
    at = writeText(data, r.value, at, values + n * 4, -1);
    at = writeText(data, headersText[i] ?? null, at, headers + n * 4, 0);
  }
  return { header: VERSION, data: data.subarray(0, at), timestamp };
}

function writeText(data: Buffer, text: string | null, at: number, lengthAt: number, none: number): number {
  if (text === null) {
    data.writeInt32LE(none, lengthAt);
    return at;
  }
  const written = data.write(text, at, 'utf8');
  data.writeInt32LE(written, lengthAt);
  return at + written;
}

export const recordsCodec: BatchCodec = {
  open(header: string, data: Uint8Array): OpenedBatch {
    if (header !== VERSION) {
      throw new Error(`records batch layout ${JSON.stringify(header)} is not known (this build reads 1)`);
    }
    const buffer = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    return new OpenedRecords(buffer);
  },
};

class OpenedRecords implements OpenedBatch {
  readonly count: number;
  readonly #data: Buffer;
  /** Offsets of the key, value and headers lengths in `data`. */
  readonly #keys: number;
  readonly #values: number;
  readonly #headers: number;
  /**
   * Where the text of record `#next` starts: readers go through a batch in order, so each record
   * is found from the previous one without a table of positions (one allocation less per batch).
   */
  #next = 0;
  #at: number;
  /** The blob its `BlobRecord`s share (made by the first). */
  #blob: TextBlob | undefined;

  constructor(data: Buffer) {
    if (data.length < PREFIX) throw new Error(`records batch of ${data.length} bytes is malformed`);
    const count = data.readUInt32LE(0);
    if (data.length < PREFIX + count * FIXED) {
      throw new Error(`records batch of ${data.length} bytes cannot hold ${count} records`);
    }
    this.count = count;
    this.#data = data;
    this.#keys = PREFIX + count * 8;
    this.#values = this.#keys + count * 4;
    this.#headers = this.#values + count * 4;
    this.#at = this.#headers + count * 4;
    // The lengths must account for every byte: a truncated or garbled blob is refused, not misread.
    let end = this.#at;
    for (let n = 0; n < count; n++) end += this.#length(n);
    if (end !== data.length) {
      throw new Error(`records batch of ${data.length} bytes announces ${end} bytes of records`);
    }
  }

  /** Bytes of record n's text; throws on a length no writer produces. */
  #length(n: number): number {
    const data = this.#data;
    const key = data.readInt32LE(this.#keys + n * 4);
    const value = data.readInt32LE(this.#values + n * 4);
    const headers = data.readInt32LE(this.#headers + n * 4);
    if (key < -1 || value < -1 || headers < 0) {
      throw new Error(`records batch holds a negative length at record ${n}`);
    }
    return Math.max(0, key) + Math.max(0, value) + headers;
  }

  record(index: number): RenderedRecord {
    const r = this.#read(index);
    const value = r.valueLength < 0 ? null : this.#data.toString('utf8', r.value, r.value + r.valueLength);
    return { key: r.key, value, headers: r.headers, timestamp: r.timestamp };
  }

  /** Record `index` as stored at `offset`, its value left as bytes until read (`BlobRecord`). */
  stored(index: number, topic: string, partition: number, offset: number): StoredRecord {
    const r = this.#read(index);
    if (r.valueLength < 0) {
      return {
        topic,
        partition,
        offset,
        key: r.key,
        value: null,
        headers: r.headers,
        timestamp: r.timestamp,
      };
    }
    this.#blob ??= new TextBlob(this.#data, this.#headers + this.count * 4);
    const end = r.value + r.valueLength;
    return new BlobRecord(topic, partition, offset, r.key, r.headers, r.timestamp, this.#blob, r.value, end);
  }

  /** Record `index`'s key, headers and timestamp, and where its value is. */
  #read(index: number) {
    if (!(index >= 0 && index < this.count)) {
      throw new Error(`record ${index} is outside the batch (${this.count} records)`);
    }
    if (index < this.#next) {
      this.#next = 0;
      this.#at = this.#headers + this.count * 4;
    }
    while (this.#next < index) this.#at += this.#length(this.#next++);
    const data = this.#data;
    const keyLength = data.readInt32LE(this.#keys + index * 4);
    const valueLength = data.readInt32LE(this.#values + index * 4);
    const headersLength = data.readInt32LE(this.#headers + index * 4);
    let at = this.#at;
    let key: string | null = null;
    if (keyLength >= 0) {
      key = data.toString('utf8', at, at + keyLength);
      at += keyLength;
    }
    const value = at;
    at += Math.max(0, valueLength);
    let headers = EMPTY_HEADERS;
    if (headersLength > 0) {
      headers = JSON.parse(data.toString('utf8', at, at + headersLength)) as { [name: string]: string };
      at += headersLength;
    }
    this.#next = index + 1;
    this.#at = at;
    return { key, value, valueLength, headers, timestamp: data.readDoubleLE(PREFIX + index * 8) };
  }
}

/** The batch's text (from `textStart` on: its keys, values and headers), shared by its records. */
class TextBlob implements RecordBlob {
  readonly data: Buffer;
  readonly #textStart: number;
  #lineFree: boolean | undefined;

  constructor(data: Buffer, textStart: number) {
    this.data = data;
    this.#textStart = textStart;
  }

  get lineFree(): boolean {
    // DuckDB splits staged lines at line feeds only (a carriage return is JSON whitespace).
    this.#lineFree ??= this.data.indexOf(0x0a, this.#textStart) < 0;
    return this.#lineFree;
  }
}
