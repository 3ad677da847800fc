/**
 * A stored record whose value is still UTF-8 bytes inside the blob it was read from (a `records`
 * row batch: a row of the embedded log, a message of the NATS log): the text is decoded on first
 * access of `value`, then kept. A reader that only moves the bytes on (the lake sink,
 * lake-scan.ts) takes them with `BlobRecord.bytesInto` and never pays the decoding, nor the
 * garbage of one string per record.
 *
 * `value` is an own enumerable getter, so spreading or serializing the record includes the text,
 * as for a plain `StoredRecord`; its descriptor is shared by every record.
 */
import type { StoredRecord } from './record.ts';

/** A blob of records' text, shared by its records. */
export interface RecordBlob {
  readonly data: Buffer;
  /**
   * Whether the blob's text holds no line feed (`\n`) at all, then none of its values
   * does: a reader writing values as lines may copy them as they are.
   */
  readonly lineFree: boolean;
}

/** Where a record's value is: `blob.data[start, end)` (filled by `BlobRecord.bytesInto`). */
export interface ValueBytes {
  blob: RecordBlob | undefined;
  start: number;
  end: number;
}

const UNDECODED: unique symbol = Symbol('undecoded');

export class BlobRecord implements StoredRecord {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly key: string | null;
  declare readonly value: string;
  readonly headers: Readonly<{ [name: string]: string }>;
  readonly timestamp: number;
  readonly #blob: RecordBlob;
  readonly #start: number;
  readonly #end: number;
  #text: string | typeof UNDECODED = UNDECODED;

  constructor(
    topic: string,
    partition: number,
    offset: number,
    key: string | null,
    headers: Readonly<{ [name: string]: string }>,
    timestamp: number,
    blob: RecordBlob,
    start: number,
    end: number,
  ) {
    this.topic = topic;
    this.partition = partition;
    this.offset = offset;
    this.key = key;
    Object.defineProperty(this, 'value', VALUE);
    this.headers = headers;
    this.timestamp = timestamp;
    this.#blob = blob;
    this.#start = start;
    this.#end = end;
  }

  /**
   * Sets `into` to where the value's bytes are, for a record read from a blob (true); false for
   * any other record. The caller's object is reused: no allocation per record.
   */
  static bytesInto(record: StoredRecord, into: ValueBytes): boolean {
    if (!(record instanceof BlobRecord)) return false;
    into.blob = record.#blob;
    into.start = record.#start;
    into.end = record.#end;
    return true;
  }

  static textOf(record: BlobRecord): string {
    if (record.#text === UNDECODED)
      record.#text = record.#blob.data.toString('utf8', record.#start, record.#end);
    return record.#text;
  }
}

const VALUE: PropertyDescriptor = {
  enumerable: true,
  configurable: false,
  get(this: BlobRecord) {
    return BlobRecord.textOf(this);
  },
};
