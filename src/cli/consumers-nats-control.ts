/**
 * `tributary consumers pause|resume|scale|restart <name> --log nats://...`: changes the consumer's
 * control key in the NATS log's bucket (nats-consumer-control.ts), then waits until every live
 * process of the consumer (`consumers run` on any machine, seen by its replicas' member keys)
 * shows the change in heartbeats written after it:
 * - pause/resume: each replica reports the state; paused also means its partitions drained;
 * - scale: each process heartbeats exactly that many replicas (the others drained and gone);
 * - restart: every live replica's worker started after the request (replaced one at a time).
 * A process that does not show it within `--wait-ms` applies it on its next tick anyway: the
 * command says which did not, and exits 0 (the change is stored).
 */
import { userInfo } from 'node:os';
import type { KV } from '@nats-io/kv';
import { loadConfig } from '../config/config-loader.ts';
import { validateConsumerName } from '../consumers/discovery.ts';
import { groupKeys, parseMemberKey } from '../consumers/nats/group-keys.ts';
import { type NatsControlChange, updateNatsControl } from '../consumers/nats/nats-consumer-control.ts';
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

export type NatsControlRequest =
  | { readonly verb: 'pause' | 'resume' }
  | { readonly verb: 'scale'; readonly replicas: number | null }
  | { readonly verb: 'restart' };

/** A member key not rewritten for this long belongs to a stopped process (as `consumers --log`). */
const STALE_MS = 10_000;

/** A live member key of the consumer, as its replica last wrote it. */
interface Member {
  readonly member: string;
  readonly host: string;
  readonly pid: number;
  readonly revision: number;
  readonly paused: boolean;
  readonly partitions: number;
  readonly replicaStartedAt: number;
}

export async function controlOnNats(
  name: string,
  request: NatsControlRequest,
  flags: NatsControlFlags,
): Promise<void> {
  validateConsumerName(name);
  const waitMs = Number(flags.waitMs ?? 30_000);
  if (!Number.isInteger(waitMs) || waitMs < 0)
    throw new ConfigError(`--wait-ms must be a whole number of milliseconds, not ${flags.waitMs}`);
  const config = loadConfig({
    flags: { dataDir: flags.dataDir, 'log.url': flags.log },
    ...(flags.config ? { file: flags.config } : {}),
  });
  const now = Date.now();
  const change: NatsControlChange =
    request.verb === 'scale'
      ? { replicas: request.replicas }
      : request.verb === 'restart'
        ? { restartAt: now }
        : { paused: request.verb === 'pause' };
  const bucket = await NatsLogBucket.open(natsLogRef(config)!);
  try {
    // Heartbeats written after the change carry it (the key's revision orders writes in the bucket).
    const since = await updateNatsControl(bucket.kv, name, change, userInfo().username, now);
    const done = (m: Member, all: readonly Member[]): boolean => {
      if (m.revision <= since) return false;
      switch (request.verb) {
        case 'pause':
          return m.paused && m.partitions === 0;
        case 'resume':
          return !m.paused;
        case 'restart':
          return m.replicaStartedAt >= now;
        case 'scale':
          // Its process heartbeats exactly the asked number of replicas since the change.
          return (
            request.replicas === null ||
            all.filter((o) => o.host === m.host && o.pid === m.pid && o.revision > since).length ===
              request.replicas
          );
      }
    };
    const deadline = Date.now() + waitMs;
    let members = await liveMembers(bucket.kv, name);
    while (members.some((m) => !done(m, members)) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      members = await liveMembers(bucket.kv, name);
    }
    const what =
      request.verb === 'scale'
        ? `scaled to ${request.replicas ?? 'each process’s own --replicas'} replica(s) per process`
        : request.verb === 'restart'
          ? 'restarted'
          : `${request.verb}d`;
    if (members.length === 0) {
      void output.write(
        `${name}: ${what} (no running \`consumers run\` process seen: applied when one starts)\n`,
      );
      return;
    }
    const processes = new Set(members.map((m) => `${m.host}/${m.pid}`)).size;
    const late = members.filter((m) => !done(m, members));
    void output.write(
      `${name}: ${what}; ${members.length - late.length} of ${members.length} replicas in ${processes} process(es) acknowledged${request.verb === 'pause' && late.length === 0 ? ' (drained: nothing read until resumed)' : ''}\n`,
    );
    for (const m of late)
      process.stderr.write(
        `not yet acknowledged by ${m.member} (pid ${m.pid} on ${m.host}): it applies it on its next tick\n`,
      );
  } finally {
    await bucket.close();
  }
}

async function liveMembers(kv: KV, consumer: string): Promise<Member[]> {
  const out: Member[] = [];
  for (const entry of await listEntries(kv, groupKeys.allMembers)) {
    if (Date.now() - entry.created.getTime() > STALE_MS) continue;
    const v = entry.json() as {
      consumer?: string;
      host?: string;
      pid?: number;
      paused?: boolean;
      partitions?: unknown[];
      replicaStartedAt?: number;
    };
    if (v.consumer !== consumer) continue;
    out.push({
      member: parseMemberKey(entry.key).member,
      host: v.host ?? '?',
      pid: v.pid ?? 0,
      revision: entry.revision,
      paused: v.paused === true,
      partitions: (v.partitions ?? []).length,
      replicaStartedAt: v.replicaStartedAt ?? 0,
    });
  }
  return out;
}
