/**
 * `tributary consumers pause|resume|scale|restart <name> --log nats://...`: the desired state of a
 * consumer run by `consumers run` processes, in the log's bucket (`c.<consumer>`, group-keys.ts),
 * so that one command reaches every process of the consumer on any machine. Each process reads the
 * key on every coordination tick (every `leaseMs / 4`):
 * - paused: the process revokes its replicas' partitions (they drain and commit) but keeps owning
 *   them in the bucket and keeps its heartbeats, so nothing moves to another process and nothing is
 *   handled until the consumer is resumed;
 * - replicas: how many replicas each process runs (null: the `--replicas` it was started with);
 *   one scaled down drains, commits and releases its partitions before it goes;
 * - restartAt: a rolling restart asked at that time; each process replaces, one at a time, every
 *   replica whose worker started before it (drained first; a process started later has none).
 * Changes are compare-and-set on the key, so two commands at once keep each other's fields.
 */
import type { KV } from '@nats-io/kv';
import { unavailable } from '../../log/nats/nats-setup.ts';
import { groupKeys } from './group-keys.ts';

export interface NatsConsumerControl {
  readonly paused: boolean;
  readonly replicas: number | null;
  readonly restartAt: number | null;
  readonly by: string | null;
  readonly at: number | null;
}

export type NatsControlChange = Partial<Pick<NatsConsumerControl, 'paused' | 'replicas' | 'restartAt'>>;

const RUNNING: NatsConsumerControl = { paused: false, replicas: null, restartAt: null, by: null, at: null };

export async function readNatsControl(kv: KV, consumer: string): Promise<NatsConsumerControl> {
  const entry = await kv.get(groupKeys.control(consumer)).catch((error: unknown) => {
    throw unavailable(`read the control key of ${consumer}`, error);
  });
  if (entry?.operation !== 'PUT') return RUNNING;
  return { ...RUNNING, ...(entry.json() as Partial<NatsConsumerControl>) };
}

/** Applies `change` to the consumer's control key; the key's revision after the write. */
export async function updateNatsControl(
  kv: KV,
  consumer: string,
  change: NatsControlChange,
  by: string,
  now = Date.now(),
): Promise<number> {
  const key = groupKeys.control(consumer);
  for (let attempt = 1; ; attempt++) {
    try {
      const entry = await kv.get(key);
      const current = entry?.operation === 'PUT' ? (entry.json() as Partial<NatsConsumerControl>) : {};
      const value = JSON.stringify({ ...RUNNING, ...current, ...change, by, at: now });
      if (entry) return await kv.update(key, value, entry.revision);
      return await kv.create(key, value);
    } catch (error) {
      // Another command wrote the key meanwhile: apply ours on top of it.
      if (attempt >= 5) throw unavailable(`write the control key of ${consumer}`, error);
    }
  }
}
