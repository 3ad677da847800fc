/**
 * Reading a batch's records for the lake: each change record's text is staged as it is (wrapped
 * with its key, `LakeBatch`; its bytes copied when it was read from the embedded log) for DuckDB
 * to parse; JavaScript never reads the envelope's fields. Tombstones and values that are not JSON
 * objects are staged as no change (the stage drops them); a text that is not JSON fails with the
 * `SyntaxError` `JSON.parse` gives.
 *
 * A scan depends only on the records: it may run ahead of its batch's transaction
 * (`ConsumerContext.upcoming`), in chunks that leave the event loop to the DuckDB work of the
 * batch being written (`scanInChunks`).
 */
import type { ConsumerRecord } from '../../consumers/define-consumer.ts';
import { recordValueBytes, recordValueText } from '../../consumers/worker/lazy-record.ts';
import type { ValueBytes } from '../../core/blob-record.ts';
import { LakeBatch, type StagedChange } from './lake-batch.ts';

/** Records scanned between two yields of `scanInChunks`. */
const CHUNK = 2000;

/** A scanned batch: its changes, staged. */
export interface LakeScan {
  readonly batch: LakeBatch;
}

/** Scans `records` at once. */
export function scanLake(records: readonly ConsumerRecord<unknown>[]): LakeScan {
  const batch = new LakeBatch(textOf);
  add(batch, records, 0, records.length);
  return { batch };
}

/** Scans `records` a chunk at a time, yielding to the event loop before each chunk. */
export async function scanInChunks(records: readonly ConsumerRecord<unknown>[]): Promise<LakeScan> {
  const batch = new LakeBatch(textOf);
  for (let from = 0; from < records.length; from += CHUNK) {
    await new Promise((resolve) => setImmediate(resolve));
    add(batch, records, from, Math.min(records.length, from + CHUNK));
  }
  return { batch };
}

/** Stages the records of `records[from, to)`. */
function add(batch: LakeBatch, records: readonly ConsumerRecord<unknown>[], from: number, to: number): void {
  for (let i = from; i < to; i++) {
    const r = records[i]!;
    // An envelope read from the embedded log is copied as its bytes when no line break can be in it.
    if (recordValueBytes(r, bytes)) {
      const blob = bytes.blob!;
      if (blob.data[bytes.start] === 0x7b && blob.lineFree) {
        batch.pushBytes(r, blob.data, bytes.start, bytes.end);
        continue;
      }
    }
    let text = recordValueText(r);
    if (text === undefined) text = r.value == null ? null : JSON.stringify(r.value);
    if (text !== null && text.charCodeAt(0) !== 0x7b && !isObject(text)) text = null;
    // A line break would split DuckDB's staged lines (lake-batch.ts): whitespace between JSON
    // tokens becomes a space (a raw one inside a string is not JSON, and `JSON.parse` says so).
    if (text?.includes('\n')) {
      JSON.parse(text);
      text = text.replace(/[\n\r]/g, ' ');
    }
    batch.push(r, text);
  }
}

/** Where a record's bytes are (reused record after record). */
const bytes: ValueBytes = { blob: undefined, start: 0, end: 0 };

/** The envelope text of a record staged as its bytes (for an error naming it). */
function textOf(change: StagedChange): string | null {
  return recordValueText(change as ConsumerRecord<unknown>) ?? null;
}

/** Whether `text` (not starting with `{`) is a JSON object after whitespace; throws when not JSON. */
function isObject(text: string): boolean {
  const value: unknown = JSON.parse(text);
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
