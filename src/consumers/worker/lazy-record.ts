/**
 * The records a handler gets (`consumerRecord`): values parsed from their JSON text on first
 * access, and the text or the bytes it came from for readers that must keep every digit or only
 * move the bytes on (`recordValueText`, `recordValueBytes`).
 */
import { BlobRecord, type ValueBytes } from '../../core/blob-record.ts';
import type { StoredRecord } from '../../core/record.ts';
import type { ConsumerRecord } from '../define-consumer.ts';

/**
 * The handler's view of a record. The value is parsed from its JSON text on first access (then
 * kept): parsing is most of a replica's CPU per record, and handlers that filter on the key or the
 * topic, or only count, never pay it. A value that is not valid JSON throws where it is read, in
 * the handler, which then fails like any handler error (retries, dead letter).
 */
export function consumerRecord(record: StoredRecord): ConsumerRecord<unknown> {
  return new LazyRecord(record);
}

/**
 * The JSON text a record's value was parsed from (`undefined` for a record not read from the log):
 * for a reader that must keep every digit of a number (`int8` beyond 2^53), which `JSON.parse` rounds.
 */
export function recordValueText(record: ConsumerRecord<unknown>): string | null | undefined {
  return record instanceof LazyRecord ? LazyRecord.textOf(record) : undefined;
}

/**
 * Sets `into` to where a record's value text is as UTF-8 bytes, when it was read from a `records`
 * batch of the log (embedded or NATS) and still is (core/blob-record.ts; true): a reader that
 * copies the text on (the lake) never decodes it. False for any other record: read
 * `recordValueText`.
 */
export function recordValueBytes(record: ConsumerRecord<unknown>, into: ValueBytes): boolean {
  return record instanceof LazyRecord && BlobRecord.bytesInto(LazyRecord.storedOf(record), into);
}

const UNPARSED: unique symbol = Symbol('unparsed');

/**
 * `value` is an own enumerable getter (spreading or serializing a record includes the parsed
 * value) whose descriptor is shared by every record: an object literal with `get value()` creates
 * a closure and an accessor pair per record, measured at 4x the cost of this class.
 */
class LazyRecord implements ConsumerRecord<unknown> {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly key: string | null;
  declare readonly value: unknown;
  readonly headers: Readonly<{ [name: string]: string }>;
  readonly timestamp: number;
  /** The record as read: its value text, read when needed (a `BlobRecord` decodes it then). */
  readonly #stored: StoredRecord;
  #value: unknown = UNPARSED;

  constructor(record: StoredRecord) {
    this.topic = record.topic;
    this.partition = record.partition;
    this.offset = record.offset;
    this.key = record.key;
    Object.defineProperty(this, 'value', VALUE);
    this.headers = record.headers;
    this.timestamp = record.timestamp;
    this.#stored = record;
  }

  static textOf(record: LazyRecord): string | null {
    return record.#stored.value;
  }

  static storedOf(record: LazyRecord): StoredRecord {
    return record.#stored;
  }

  static valueOf(record: LazyRecord): unknown {
    if (record.#value === UNPARSED) {
      const text = record.#stored.value;
      record.#value = text === null ? null : (JSON.parse(text) as unknown);
    }
    return record.#value;
  }
}

const VALUE: PropertyDescriptor = {
  enumerable: true,
  configurable: false,
  get(this: LazyRecord) {
    return LazyRecord.valueOf(this);
  },
};
