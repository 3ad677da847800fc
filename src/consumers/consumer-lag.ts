/**
 * Lag of a consumer group: per partition of its topics, the records between the committed
 * position and the end of the log, and the age of the oldest of them (seconds behind).
 */
import type { EventLog } from '../core/event-log.ts';
import type { ConsumerState } from './consumer-state.ts';
import { partitionKey } from './transactional.ts';

export interface PartitionConsumerLag {
  readonly topic: string;
  readonly partition: number;
  readonly committed: number;
  readonly endOffset: number;
  readonly records: number;
  /** Age of the oldest unconsumed record (now minus its source commit time); 0 when caught up. */
  readonly seconds: number;
}

export async function consumerLag(
  log: EventLog,
  store: Pick<ConsumerState, 'committed'>,
  group: string,
  topics: readonly string[],
  now: number = Date.now(),
): Promise<PartitionConsumerLag[]> {
  const committed = new Map(
    (await store.committed(group)).map((p) => [partitionKey(p.topic, p.partition), p.offset]),
  );
  const wanted = new Set(topics);
  const out: PartitionConsumerLag[] = [];
  for (const info of await log.topics()) {
    if (!wanted.has(info.topic)) continue;
    for (const p of info.partitions) {
      const position = Math.max(committed.get(partitionKey(info.topic, p.partition)) ?? 0, p.startOffset);
      const records = Math.max(0, p.endOffset - position);
      let seconds = 0;
      if (records > 0) {
        const [oldest] = await log.read(info.topic, p.partition, position, 1);
        if (oldest) seconds = Math.max(0, (now - oldest.timestamp) / 1000);
      }
      out.push({
        topic: info.topic,
        partition: p.partition,
        committed: position,
        endOffset: p.endOffset,
        records,
        seconds,
      });
    }
  }
  return out;
}
