/**
 * What `tributary consumers --log nats://...` shows: the groups whose replicas (`consumers run`
 * processes on any machine) wrote member keys into the log's bucket, each with its live members,
 * the partitions they own, their counters and the group's lag, all read from NATS.
 */
import type { KV } from '@nats-io/kv';
import type { EventLog } from '../../core/event-log.ts';
import { listEntries, listKeys } from '../../log/nats/nats-kv-keys.ts';
import { groupKeys, parseMemberKey, parseOffsetKey } from './group-keys.ts';
import { readNatsControl } from './nats-consumer-control.ts';

export interface NatsMemberStatus {
  readonly member: string;
  readonly consumer: string;
  readonly host: string;
  readonly pid: number;
  readonly replica: number;
  readonly partitions: readonly string[];
  readonly processed: number;
  readonly failed: number;
  readonly retried: number;
  readonly deadLettered: number;
  /** Epoch ms of its last heartbeat (the server's time of the write). */
  readonly updatedAt: number;
  /** Its heartbeat is recent (within `staleMs`, judged by this machine's clock). */
  readonly alive: boolean;
}

export interface NatsConsumerStatus {
  readonly name: string;
  readonly group: string;
  readonly members: readonly NatsMemberStatus[];
  /** `consumers pause --log` (until `consumers resume`). */
  readonly paused: boolean;
  readonly lag: { readonly records: number };
  readonly processed: number;
  readonly deadLettered: number;
}

export async function natsConsumerStatuses(
  kv: KV,
  log: EventLog,
  options: { staleMs?: number; now?: number } = {},
): Promise<NatsConsumerStatus[]> {
  const now = options.now ?? Date.now();
  const staleMs = options.staleMs ?? 10_000;
  const byGroup = new Map<string, NatsMemberStatus[]>();
  for (const entry of await listEntries(kv, groupKeys.allMembers)) {
    const { group, member } = parseMemberKey(entry.key);
    const v = entry.json() as Omit<NatsMemberStatus, 'member' | 'updatedAt' | 'alive'>;
    const updatedAt = entry.created.getTime();
    const list = byGroup.get(group) ?? [];
    list.push({ ...v, member, updatedAt, alive: now - updatedAt < staleMs });
    byGroup.set(group, list);
  }
  // Groups with offsets but no member (all stopped) are listed too, named after the group.
  for (const key of await listKeys(kv, 'o.>')) {
    const { group } = parseOffsetKey(key);
    if (!byGroup.has(group)) byGroup.set(group, []);
  }
  const out: NatsConsumerStatus[] = [];
  for (const [group, members] of [...byGroup].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const lag = await log.lag(group);
    const alive = members.filter((m) => m.alive);
    const name = members[0]?.consumer ?? group;
    out.push({
      name,
      group,
      members: members.sort((a, b) => (a.member < b.member ? -1 : 1)),
      paused: (await readNatsControl(kv, name)).paused,
      lag: { records: lag.reduce((n, p) => n + p.records, 0) },
      processed: alive.reduce((n, m) => n + m.processed, 0),
      deadLettered: alive.reduce((n, m) => n + m.deadLettered, 0),
    });
  }
  return out;
}

export function formatNatsStatuses(rows: readonly NatsConsumerStatus[]): string {
  if (rows.length === 0)
    return 'no consumers have run against this log (`tributary consumers run <name> --log ...`)\n';
  const header = ['NAME', 'GROUP', 'MEMBERS', 'PARTITIONS', 'LAG', 'PROCESSED', 'DEAD_LETTERS'];
  const lines = rows.map((s) => {
    const alive = s.members.filter((m) => m.alive);
    return [
      s.paused ? `${s.name} (paused)` : s.name,
      s.group,
      `${alive.length} on ${new Set(alive.map((m) => m.host)).size} host(s)`,
      String(alive.reduce((n, m) => n + m.partitions.length, 0)),
      String(s.lag.records),
      String(s.processed),
      String(s.deadLettered),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  return [header, ...lines]
    .map((l) =>
      l
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')
    .concat('\n');
}
