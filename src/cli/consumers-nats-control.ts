/**
 * `tributary consumers pause|resume <name> --log nats://...`: writes the consumer's control key in
 * the NATS log's bucket (nats-consumer-control.ts), then waits until every live replica of the
 * consumer (`consumers run` processes on any machine, seen by their member keys) reports the new
 * state in a heartbeat written after the change; paused also means its partitions drained (none
 * read any more). A process that does not acknowledge within `--wait-ms` gets the change on its
 * next tick anyway: the command says which did not, and exits 0 (the change is stored).
 */
import { userInfo } from 'node:os';
import type { KV } from '@nats-io/kv';
import { loadConfig } from '../config/config-loader.ts';
import { validateConsumerName } from '../consumers/discovery.ts';
import { groupKeys, parseMemberKey } from '../consumers/nats/group-keys.ts';
import { writeNatsControl } from '../consumers/nats/nats-consumer-control.ts';
import { ConfigError } from '../core/errors.ts';
import { listEntries } from '../log/nats/nats-kv-keys.ts';
import { NatsLogBucket } from '../log/nats/nats-log-bucket.ts';
import { natsLogRef } from '../log/open-event-log.ts';
import { output } from './stdout-writer.ts';

export interface NatsControlFlags {
  dataDir?: string;
  config?: string;
  log?: string;
  waitMs?: string;
}

/** A member key not rewritten for this long belongs to a stopped process (as `consumers --log`). */
const STALE_MS = 10_000;

interface Member {
  readonly member: string;
  readonly host: string;
  readonly pid: number;
  readonly acknowledged: boolean;
}

export async function setPausedOnNats(name: string, paused: boolean, flags: NatsControlFlags): Promise<void> {
  validateConsumerName(name);
  const waitMs = Number(flags.waitMs ?? 30_000);
  if (!Number.isInteger(waitMs) || waitMs < 0)
    throw new ConfigError(`--wait-ms must be a whole number of milliseconds, not ${flags.waitMs}`);
  const config = loadConfig({
    flags: { dataDir: flags.dataDir, 'log.url': flags.log },
    ...(flags.config ? { file: flags.config } : {}),
  });
  const bucket = await NatsLogBucket.open(natsLogRef(config)!);
  try {
    await writeNatsControl(bucket.kv, name, paused, userInfo().username);
    // Heartbeats written after the change carry it (the key's revision orders writes in the bucket).
    const since = (await bucket.kv.get(groupKeys.control(name)))?.revision ?? 0;
    const deadline = Date.now() + waitMs;
    let members = await liveMembers(bucket.kv, name, paused, since);
    while (members.some((m) => !m.acknowledged) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      members = await liveMembers(bucket.kv, name, paused, since);
    }
    const what = paused ? 'paused' : 'resumed';
    if (members.length === 0) {
      void output.write(
        `${name}: ${what} (no running \`consumers run\` process seen: applied when one starts)\n`,
      );
      return;
    }
    const processes = new Set(members.map((m) => `${m.host}/${m.pid}`)).size;
    const late = members.filter((m) => !m.acknowledged);
    void output.write(
      `${name}: ${what}; ${members.length - late.length} of ${members.length} replicas in ${processes} process(es) acknowledged${paused && late.length === 0 ? ' (drained: nothing read until resumed)' : ''}\n`,
    );
    for (const m of late)
      process.stderr.write(
        `not yet acknowledged by ${m.member} (pid ${m.pid} on ${m.host}): it applies it on its next tick\n`,
      );
  } finally {
    await bucket.close();
  }
}

async function liveMembers(kv: KV, consumer: string, paused: boolean, since: number): Promise<Member[]> {
  const out: Member[] = [];
  for (const entry of await listEntries(kv, groupKeys.allMembers)) {
    if (Date.now() - entry.created.getTime() > STALE_MS) continue;
    const v = entry.json() as {
      consumer?: string;
      host?: string;
      pid?: number;
      paused?: boolean;
      partitions?: unknown[];
    };
    if (v.consumer !== consumer) continue;
    const acknowledged =
      entry.revision > since && v.paused === paused && (!paused || (v.partitions ?? []).length === 0);
    out.push({
      member: parseMemberKey(entry.key).member,
      host: v.host ?? '?',
      pid: v.pid ?? 0,
      acknowledged,
    });
  }
  return out;
}

/**
 * `consumers scale|restart --log`: not sent to `consumers run` processes. Each runs the fixed
 * `--replicas` it was started with; the replicas of a consumer are those of all its processes.
 */
export function notOnNats(verb: 'scale' | 'restart', name: string): ConfigError {
  return new ConfigError(
    `consumers ${verb} does not reach \`consumers run\` processes (${name} on a NATS log)`,
    {
      hint:
        verb === 'scale'
          ? 'Scale by the number of `consumers run` processes (the container replica count) or their --replicas; the partitions are shared among all of them within a lease.'
          : 'Restart the `consumers run` processes one by one (SIGTERM drains and releases the partitions; the others take them at once).',
    },
  );
}
