import { LogError } from '../core/errors.ts';
import { COPY_ROWS_CODEC, copyRowsCodec } from '../encode/copy-row-batch.ts';
import { RECORDS_CODEC, recordsCodec } from './embedded/record-batch.ts';

/**
 * Codecs of row batches (`AppendBatch`): a batch is stored as the codec's opaque header and data and
 * rendered into records only when it is read (docs/embedded-log.md, "Row batches"). The codec name is
 * stored with each batch, so a name, once used, must keep rendering the same records forever.
 */

/** One record of a batch, as the codec renders it. */
export interface RenderedRecord {
  readonly key: string | null;
  readonly value: string | null;
  readonly headers: Readonly<{ [name: string]: string }>;
  readonly timestamp: number;
}

/** A batch parsed once; readers then render the records they need by index (0 .. count-1). */
export interface OpenedBatch {
  readonly count: number;
  record(index: number): RenderedRecord;
}

export interface BatchCodec {
  open(header: string, data: Uint8Array): OpenedBatch;
}

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
// A codec module must import only types from this file: a value import would form an import cycle
// in which the codec module runs before `codecs` above exists.
registerBatchCodec(COPY_ROWS_CODEC, copyRowsCodec);
registerBatchCodec(RECORDS_CODEC, recordsCodec);
// ---- end of built-in codecs ------------------------------------------------------------------
