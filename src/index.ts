/**
 * The package entry: `import { defineConsumer, postgresTarget } from 'tributary'` in a consumer
 * module. TypeScript runs through tsx, so this points at the sources (no build step).
 */
export type { ConsumerStore, DeadLetter, DeadLetterStatus } from './consumers/consumer-store.ts';
export {
  type BatchOptions,
  type ConsumerContext,
  type ConsumerDefinition,
  type ConsumerMetrics,
  type ConsumerRecord,
  type DebeziumEnvelope,
  type DebeziumOp,
  type DebeziumSource,
  type DefinedConsumer,
  defineConsumer,
  type Envelope,
  type RetryOptions,
  type RowKey,
  type UnwrappedRow,
} from './consumers/define-consumer.ts';
export {
  OFFSETS_TABLE,
  postgresTarget,
  sqliteTarget,
  type TransactionalTarget,
} from './consumers/transactional.ts';
export { TributaryError } from './core/errors.ts';
