/**
 * Where a replica starts reading each partition it is given: the group's committed offset (from
 * the transactional target when there is one, else the consumer store), moved to the oldest
 * stored record when retention removed what the group had not consumed, and checked against the
 * end of the log. A stored offset beyond the end (a target kept from another data directory)
 * follows the consumer's `offsetReset`, as Kafka's `auto.offset.reset`: `fail` (the default)
 * names every such partition and stops; `earliest` / `latest` restart at the log's start / end
 * and store that in the target and the consumer store. A target offset ahead of the consumer
 * store is mirrored into the store at once (the store's offsets are what lag is measured from).
 */
import type { Logger } from 'pino';
import { TributaryError } from '../../core/errors.ts';
import type { EventLog } from '../../core/event-log.ts';
import type { PartitionOffset, TopicPartition } from '../../core/record.ts';
import type { ConsumerState } from '../consumer-state.ts';
import type { OffsetReset } from '../define-consumer.ts';
import { partitionKey, type TargetSession } from '../transactional.ts';
import type { ResolvedConsumer } from './load-consumer.ts';

/** A stored offset is beyond the end of the log and the consumer's `offsetReset` is `fail`. */
export class OffsetOutOfRangeError extends TributaryError {
  constructor(message: string) {
    super('OFFSET_OUT_OF_RANGE', message);
  }
}

export interface StartOffsetsInput {
  readonly consumer: Pick<ResolvedConsumer, 'name' | 'group' | 'transactional'>;
  readonly partitions: readonly TopicPartition[];
  readonly log: EventLog;
  readonly store: ConsumerState;
  readonly target: TargetSession<unknown> | undefined;
  readonly policy: OffsetReset;
  readonly logger: Logger;
  /** Told before the `OffsetOutOfRangeError` is thrown (the consumer's failure state). */
  readonly onOutOfRange?: (message: string) => void;
}

/** `partitionKey(topic, partition)` → the first offset to read. */
export async function startOffsets(input: StartOffsetsInput): Promise<Map<string, number>> {
  const { consumer, partitions, logger, policy } = input;
  const starts = new Map<string, number>();
  const stored = new Map<string, number>();
  for (const p of await input.store.committed(consumer.group)) {
    starts.set(partitionKey(p.topic, p.partition), p.offset);
    stored.set(partitionKey(p.topic, p.partition), p.offset);
  }
  if (input.target) {
    for (const [key, offset] of await input.target.offsets(consumer.group, partitions))
      starts.set(key, offset);
  }
  const topics = await input.log.topics();
  const beyond: string[] = [];
  const resets: PartitionOffset[] = [];
  for (const p of partitions) {
    const key = partitionKey(p.topic, p.partition);
    const info = topics.find((t) => t.topic === p.topic)?.partitions.find((x) => x.partition === p.partition);
    const committed = starts.get(key) ?? 0;
    if (info && committed > info.endOffset) {
      // The stored offset is beyond the log: a target kept from another data directory.
      if (policy === 'fail') {
        beyond.push(`${p.topic}/${p.partition} at ${committed} (the log ends at ${info.endOffset})`);
        continue;
      }
      const offset = policy === 'earliest' ? info.startOffset : info.endOffset;
      logger.warn(
        { topic: p.topic, partition: p.partition, committed, endOffset: info.endOffset, offset, policy },
        `stored offset beyond the end of the log; offsetReset ${policy}: starting at ${offset}`,
      );
      starts.set(key, offset);
      resets.push({ topic: p.topic, partition: p.partition, offset });
    } else if (info && committed < info.startOffset) {
      logger.warn(
        { topic: p.topic, partition: p.partition, committed, startOffset: info.startOffset },
        'retention removed records this group had not consumed; starting at the oldest stored',
      );
      starts.set(key, info.startOffset);
    } else starts.set(key, committed);
  }
  if (beyond.length > 0) {
    const where = consumer.transactional ? ` in ${consumer.transactional.description}` : '';
    const message = `group ${consumer.group}: stored offsets${where} are beyond the end of the log: ${beyond.join(', ')}. Was the target kept from another data directory? Set offsetReset: 'earliest' (handle the log from its start) or 'latest' (skip to its end) in the consumer's definition, or the setting consumers.offsetReset, then \`tributary consumers restart ${consumer.name}\``;
    input.onOutOfRange?.(message);
    throw new OffsetOutOfRangeError(message);
  }
  if (resets.length > 0) {
    await input.target?.reset?.(consumer.group, resets);
    await input.store.commit(consumer.group, resets, { force: true });
  }
  // The target is ahead of the consumer store when another replica applied records and lost the
  // partition before it mirrored their offset: mirror it now, or the store (what `consumers`
  // shows as lag) stays behind until this replica handles a record of the partition, maybe never.
  const behind = partitions
    .map((p) => ({ ...p, offset: starts.get(partitionKey(p.topic, p.partition)) ?? 0 }))
    .filter((p) => p.offset > (stored.get(partitionKey(p.topic, p.partition)) ?? 0))
    .filter((p) => !resets.some((r) => r.topic === p.topic && r.partition === p.partition));
  if (input.target && behind.length > 0) await input.store.commit(consumer.group, behind);
  return starts;
}
