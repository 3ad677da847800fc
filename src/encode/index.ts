import type { Encoder } from '../core/encoder.ts';
import { DebeziumEncoder } from './debezium/debezium-encoder.ts';
import { UnwrapEncoder } from './unwrap/unwrap-encoder.ts';

export { DebeziumEncoder } from './debezium/debezium-encoder.ts';
export { type JsonConverter, jsonConverter, ValueConversionError } from './json-values.ts';
export { EncodeError } from './row-json.ts';
export { UnwrapEncoder } from './unwrap/unwrap-encoder.ts';

export interface EncoderOptions {
  /** `debezium`: the full envelope; `unwrap`: the flattened row (ExtractNewRecordState). */
  readonly format: 'debezium' | 'unwrap';
  /** Topics are `<topicPrefix>.<schema>.<table>`. */
  readonly topicPrefix: string;
  /** Follow each delete with a tombstone record (null value). Default true. */
  readonly tombstones?: boolean;
}

export function createEncoder(options: EncoderOptions): Encoder {
  switch (options.format) {
    case 'debezium':
      return new DebeziumEncoder(options);
    case 'unwrap':
      return new UnwrapEncoder(options);
  }
}
