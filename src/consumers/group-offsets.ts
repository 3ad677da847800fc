import type { Logger } from 'pino';
import type { PartitionOffset } from '../core/record.ts';
import { NatsLogBucket } from '../log/nats/nats-log-bucket.ts';
import type { NatsLogRef } from '../log/open-event-log.ts';
import { ConsumerStore } from './consumer-store.ts';
import { NatsConsumerState } from './nats/nats-consumer-state.ts';

/** The committed offsets of the supervisor's consumer groups, where their replicas commit them. */
export interface GroupOffsets {
  committed(group: string): Promise<readonly PartitionOffset[]>;
  close(): Promise<void>;
}

/**
 * The embedded log: the data directory's consumer store. A NATS log: its KV bucket (the replicas
 * of `run --log nats://` keep their state there, as those of `consumers run` do), opened at the
 * first call; a call while NATS does not answer throws (the supervisor retries at its next refresh).
 */
export function groupOffsets(dataDir: string, log: NatsLogRef | undefined, logger: Logger): GroupOffsets {
  if (log === undefined) {
    const store = ConsumerStore.open({ dataDir });
    return {
      committed: async (group) => store.committed(group),
      close: async () => store.close(),
    };
  }
  let opened: Promise<{ bucket: NatsLogBucket; state: NatsConsumerState }> | undefined;
  const open = () => {
    opened ??= NatsLogBucket.open(log).then(
      (bucket) => ({ bucket, state: new NatsConsumerState(bucket.kv, { logger }) }),
      (error: unknown) => {
        opened = undefined;
        throw error;
      },
    );
    return opened;
  };
  return {
    committed: async (group) => (await open()).state.committed(group),
    close: async () => {
      const o = await opened?.catch(() => undefined);
      await o?.bucket.close();
    },
  };
}
