/**
 * The consumer state a NATS log keeps in its KV bucket (docs/nats.md, "Consumers anywhere"):
 *
 *   o.<group>.<topic>.<partition>           {"offset":n,"owner":member|null}  offset + owner (lease)
 *   m.<group>.<member>                      {"consumer","host","pid","replica",...}  a live replica
 *   d.<group>.<topic>.<partition>.<offset>  a dead letter (JSON, as `DeadLetter`)
 *   c.<consumer>                            {"paused":bool,"by","at"}  `consumers pause|resume`
 *
 * One key holds a partition's committed offset and its owner, so a takeover (compare-and-set of the
 * owner) and a commit (compare-and-set of the offset, only while the owner is the committer) can
 * never both succeed against the same revision: a stale owner cannot move the offset.
 * Names are escaped into single tokens as the log's own keys are (nats-names.ts).
 */
import { escapeToken, unescapeToken } from '../../log/nats/nats-names.ts';

export interface PartitionEntry {
  readonly offset: number;
  readonly owner: string | null;
}

export const groupKeys = {
  offset: (group: string, topic: string, partition: number) =>
    `o.${escapeToken(group)}.${escapeToken(topic)}.${partition}`,
  offsets: (group: string) => `o.${escapeToken(group)}.>`,
  member: (group: string, member: string) => `m.${escapeToken(group)}.${escapeToken(member)}`,
  members: (group: string) => `m.${escapeToken(group)}.*`,
  allMembers: 'm.>',
  deadLetter: (group: string, topic: string, partition: number, offset: number) =>
    `d.${escapeToken(group)}.${escapeToken(topic)}.${partition}.${offset}`,
  deadLettersOf: (group: string, topic: string, partition: number) =>
    `d.${escapeToken(group)}.${escapeToken(topic)}.${partition}.*`,
  allDeadLetters: 'd.>',
  control: (consumer: string) => `c.${escapeToken(consumer)}`,
};

/** `o.<group>.<topic>.<partition>` → its parts. */
export function parseOffsetKey(key: string): { group: string; topic: string; partition: number } {
  const [, group, topic, partition] = key.split('.');
  return { group: unescapeToken(group!), topic: unescapeToken(topic!), partition: Number(partition) };
}

/** `m.<group>.<member>` → its parts. */
export function parseMemberKey(key: string): { group: string; member: string } {
  const [, group, member] = key.split('.');
  return { group: unescapeToken(group!), member: unescapeToken(member!) };
}

/** An offset entry; a plain number (`NatsEventLog.commit`) has no owner. */
export function parsePartitionEntry(text: string): PartitionEntry {
  if (text.startsWith('{')) {
    const v = JSON.parse(text) as { offset?: unknown; owner?: unknown };
    return { offset: Number(v.offset ?? 0), owner: typeof v.owner === 'string' ? v.owner : null };
  }
  return { offset: Number(text), owner: null };
}

export function partitionEntryText(entry: PartitionEntry): string {
  return JSON.stringify({ offset: entry.offset, owner: entry.owner });
}
