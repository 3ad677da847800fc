import type { BatchCodec, OpenedBatch } from '../core/batch-codec.ts';
import { LogError } from '../core/errors.ts';
import type { StoredRecord } from '../core/record.ts';
import { COPY_ROWS_CODEC, copyRowsCodec } from '../encode/copy-row-batch.ts';
import { RECORDS_CODEC, recordsCodec } from './embedded/record-batch.ts';

/**
 * Codecs of row batches (`AppendBatch`): a batch is stored as the codec's opaque header and data and
 * rendered into records only when it is read (docs/embedded-log.md, "Row batches"). The codec name is
 * stored with each batch, so a name, once used, must keep rendering the same records forever.
 */

export type { BatchCodec, OpenedBatch, RenderedRecord } from '../core/batch-codec.ts';

const codecs = new Map<string, BatchCodec>();

/** Registers a codec under `name`; registering another codec under a taken name is refused. */
export function registerBatchCodec(name: string, codec: BatchCodec): void {
  if (typeof name !== 'string' || name.length === 0) {
    throw new LogError('LOG_INVALID_ARGUMENT', `A batch codec needs a non-empty name, got ${String(name)}`);
  }
  const existing = codecs.get(name);
  if (existing !== undefined && existing !== codec) {
    throw new LogError('LOG_INVALID_ARGUMENT', `A different batch codec is already registered as ${name}`);
  }
  codecs.set(name, codec);
}

/** The codec registered as `name`; throws LOG_UNKNOWN_CODEC naming it when there is none. */
export function batchCodec(name: string): BatchCodec {
  const codec = codecs.get(name);
  if (codec === undefined) {
    const known = [...codecs.keys()].sort().join(', ') || 'none';
    throw new LogError(
      'LOG_UNKNOWN_CODEC',
      `No row-batch codec named ${JSON.stringify(name)} (known: ${known})`,
      {
        hint: 'The log was written by a Tributary that has this codec: read it with that version or a newer one.',
      },
    );
  }
  return codec;
}

// ---- Built-in codecs -------------------------------------------------------------------------
// Import each built-in codec here and register it, e.g.
//   import { copyRowBatchCodec } from '../encode/copy-row-batch.ts';
//   registerBatchCodec('copy-rows', copyRowBatchCodec);
// A codec module implements `BatchCodec` (src/core/batch-codec.ts) and imports nothing from this
// file: this file imports it, and a cycle would run the codec module before `codecs` above exists.
registerBatchCodec(COPY_ROWS_CODEC, copyRowsCodec);
registerBatchCodec(RECORDS_CODEC, recordsCodec);
// ---- end of built-in codecs ------------------------------------------------------------------

/**
 * Pushes the records at offsets `from .. end - 1` of an opened batch whose first record is at
 * offset `base` onto `out`: as the codec stores them where it can (values left as bytes until
 * read, core/blob-record.ts), else rendered.
 */
export function pushRecords(
  batch: OpenedBatch,
  topic: string,
  partition: number,
  base: number,
  from: number,
  end: number,
  out: StoredRecord[],
): void {
  if (batch.stored) {
    for (let o = from; o < end; o++) out.push(batch.stored(o - base, topic, partition, o));
    return;
  }
  for (let o = from; o < end; o++) {
    const r = batch.record(o - base);
    out.push({
      topic,
      partition,
      offset: o,
      key: r.key,
      value: r.value,
      headers: r.headers,
      timestamp: r.timestamp,
    });
  }
}
