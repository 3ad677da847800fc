/**
 * A row-batch codec: how the log stores a batch of records (`AppendBatch`) as an opaque header and
 * data, and renders them back into records only when they are read (docs/embedded-log.md, "Row
 * batches"). Codecs are registered by name in `log/batch-codecs.ts`; a name, once used, must keep
 * rendering the same records forever.
 */

import type { StoredRecord } from './record.ts';

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
  /**
   * Record `index` as stored at `offset` of `topic` `partition`, where the codec can give it
   * cheaper than `record` (its value read lazily, see core/blob-record.ts); optional.
   */
  stored?(index: number, topic: string, partition: number, offset: number): StoredRecord;
}

export interface BatchCodec {
  open(header: string, data: Uint8Array): OpenedBatch;
}
