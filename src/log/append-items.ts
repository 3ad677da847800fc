/**
 * What every engine checks of its arguments: the items an append is given (records and
 * pre-encoded row batches) before anything is stored, and the range a read asks for.
 */
import { LogError } from '../core/errors.ts';
import type { AppendBatch, AppendItem, AppendRecord } from '../core/record.ts';
import { batchCodec } from './batch-codecs.ts';

export function hasHeaders(headers: AppendRecord['headers']): boolean {
  for (const _ in headers) return true;
  return false;
}

export function isBatch(item: AppendItem): item is AppendBatch {
  return (item as { kind?: unknown }).kind === 'batch';
}

/** Refuses a malformed batch before anything is stored, and an unknown codec before it is written. */
export function checkBatch(batch: AppendBatch): void {
  const fail = (what: string) =>
    new LogError('LOG_INVALID_ARGUMENT', `A batch for topic ${batch.topic} has ${what}`);
  if (!Number.isSafeInteger(batch.count) || batch.count < 1) throw fail(`count ${batch.count}`);
  if (!Number.isFinite(batch.timestamp)) throw fail(`timestamp ${batch.timestamp}`);
  if (typeof batch.header !== 'string') throw fail('a header that is not a string');
  if (!(batch.data instanceof Uint8Array)) throw fail('data that is not a Uint8Array');
  batchCodec(batch.codec);
}

/** `read(topic, partition, offset, max)` takes a non-negative integer offset and max. */
export function checkReadArguments(offset: number, max: number): void {
  if (!Number.isInteger(offset) || offset < 0 || !Number.isInteger(max) || max < 0) {
    throw new LogError(
      'LOG_INVALID_ARGUMENT',
      `read needs a non-negative integer offset and max (${offset}, ${max})`,
    );
  }
}
