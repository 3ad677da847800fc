/**
 * `tributary consumers pause|resume <name> --log nats://...`: the desired state of a consumer run by
 * `consumers run` processes, in the log's bucket (`c.<consumer>`, group-keys.ts), so that one
 * command reaches every process of the consumer on any machine. Each process reads the key on every
 * coordination tick (every `leaseMs / 4`); a paused process revokes its replicas' partitions (they
 * drain and commit) but keeps owning them in the bucket and keeps its heartbeats, so nothing moves
 * to another process and nothing is handled until the consumer is resumed.
 */
import type { KV } from '@nats-io/kv';
import { unavailable } from '../../log/nats/nats-setup.ts';
import { groupKeys } from './group-keys.ts';

export interface NatsConsumerControl {
  readonly paused: boolean;
  readonly by: string | null;
  readonly at: number | null;
}

const RUNNING: NatsConsumerControl = { paused: false, by: null, at: null };

export async function readNatsControl(kv: KV, consumer: string): Promise<NatsConsumerControl> {
  const entry = await kv.get(groupKeys.control(consumer)).catch((error: unknown) => {
    throw unavailable(`read the control key of ${consumer}`, error);
  });
  if (entry?.operation !== 'PUT') return RUNNING;
  return { ...RUNNING, ...(entry.json() as Partial<NatsConsumerControl>) };
}

export async function writeNatsControl(
  kv: KV,
  consumer: string,
  paused: boolean,
  by: string,
  now = Date.now(),
): Promise<void> {
  const value: NatsConsumerControl = { paused, by, at: now };
  await kv.put(groupKeys.control(consumer), JSON.stringify(value)).catch((error: unknown) => {
    throw unavailable(`write the control key of ${consumer}`, error);
  });
}
