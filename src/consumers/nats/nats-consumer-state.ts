/**
 * The consumer state of a replica run by `tributary consumers run` against a NATS log: offsets and
 * dead letters in the log's KV bucket (group-keys.ts), so a process on any machine sees them.
 *
 * Fencing: a replica given a `member` id commits a partition's offset only while that partition's
 * entry names it as owner, with a compare-and-set on the entry's revision; a takeover by another
 * member (which changes the owner, also by compare-and-set) makes every later commit of the former
 * owner a no-op (logged). Offsets only move forward unless `force`.
 */
import type { KV, KvEntry } from '@nats-io/kv';
import type { Logger } from 'pino';
import type { PartitionOffset } from '../../core/record.ts';
import { listEntries, listKeys } from '../../log/nats/nats-kv-keys.ts';
import { unavailable } from '../../log/nats/nats-setup.ts';
import type { ConsumerState } from '../consumer-state.ts';
import type { DeadLetter, NewDeadLetter } from '../consumer-store.ts';
import { groupKeys, parseOffsetKey, parsePartitionEntry, partitionEntryText } from './group-keys.ts';

/** Compare-and-set attempts before a commit gives up (and is retried by the runner's next flush). */
const CAS_ATTEMPTS = 5;

export class NatsConsumerState implements ConsumerState {
  readonly #kv: KV;
  readonly #member: string | undefined;
  readonly #logger: Logger;
  readonly #clock: () => number;

  constructor(kv: KV, options: { member?: string; logger: Logger; clock?: () => number }) {
    this.#kv = kv;
    this.#member = options.member;
    this.#logger = options.logger;
    this.#clock = options.clock ?? Date.now;
  }

  async commit(
    group: string,
    positions: readonly PartitionOffset[],
    options: { force?: boolean } = {},
  ): Promise<void> {
    await Promise.all(positions.map((p) => this.#commitOne(group, p, options.force === true)));
  }

  async #commitOne(group: string, p: PartitionOffset, force: boolean): Promise<void> {
    const key = groupKeys.offset(group, p.topic, p.partition);
    for (let attempt = 1; ; attempt++) {
      const entry = await this.#get(key);
      const current = entry ? parsePartitionEntry(entry.string()) : { offset: 0, owner: null };
      if (this.#member !== undefined && current.owner !== this.#member) {
        // A read may come from a stream replica that has not seen this member's takeover yet:
        // ask again a few times before giving the offset up (a real takeover stays).
        if (attempt < CAS_ATTEMPTS) {
          await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
          continue;
        }
        this.#logger.warn(
          { topic: p.topic, partition: p.partition, offset: p.offset, owner: current.owner },
          'partition owned by another member now: offset not committed (its next owner handles these records again)',
        );
        return;
      }
      const offset = force ? p.offset : Math.max(current.offset, p.offset);
      if (entry && offset === current.offset) return;
      const text = partitionEntryText({ offset, owner: current.owner });
      try {
        if (entry) await this.#kv.update(key, text, entry.revision);
        else await this.#kv.create(key, text);
        return;
      } catch (error) {
        // Another writer moved the entry since we read it: read again (it may be a takeover).
        if (attempt >= CAS_ATTEMPTS)
          throw unavailable(`commit the offset of ${p.topic}/${p.partition}`, error);
      }
    }
  }

  async committed(group: string): Promise<readonly PartitionOffset[]> {
    const out: PartitionOffset[] = [];
    let entries: KvEntry[];
    try {
      entries = await listEntries(this.#kv, groupKeys.offsets(group));
    } catch (error) {
      throw unavailable(`list ${groupKeys.offsets(group)}`, error);
    }
    for (const entry of entries) {
      const { topic, partition } = parseOffsetKey(entry.key);
      out.push({ topic, partition, offset: parsePartitionEntry(entry.string()).offset });
    }
    return out;
  }

  async deadLetteredOffsets(
    group: string,
    topic: string,
    partition: number,
    from: number,
  ): Promise<Set<number>> {
    const offsets = new Set<number>();
    for (const key of await this.#keys(groupKeys.deadLettersOf(group, topic, partition))) {
      const offset = Number(key.slice(key.lastIndexOf('.') + 1));
      if (offset >= from) offsets.add(offset);
    }
    return offsets;
  }

  async addDeadLetter(letter: NewDeadLetter): Promise<number | undefined> {
    const r = letter.record;
    const key = groupKeys.deadLetter(letter.group, r.topic, r.partition, r.offset);
    const value: Omit<DeadLetter, 'id'> = {
      consumer: letter.consumer,
      group: letter.group,
      topic: r.topic,
      partition: r.partition,
      offset: r.offset,
      key: r.key,
      value: r.value,
      headers: r.headers,
      timestamp: r.timestamp,
      error: letter.error,
      stack: letter.stack ?? null,
      attempts: letter.attempts,
      firstFailedAt: letter.firstFailedAt,
      failedAt: letter.failedAt || this.#clock(),
      status: 'pending',
      resolvedBy: null,
      resolvedAt: null,
      note: null,
    };
    let revision: number;
    try {
      revision = await this.#kv.create(key, JSON.stringify(value));
    } catch (error) {
      // Already there: a previous owner dead-lettered this record.
      if (await this.#get(key)) return undefined;
      throw unavailable(`store a dead letter of ${r.topic}/${r.partition}@${r.offset}`, error);
    }
    // The id is the revision that created it: unique in the bucket, in creation order.
    await this.#kv.update(key, JSON.stringify({ ...value, id: revision }), revision).catch(() => undefined);
    return revision;
  }

  async #get(key: string): Promise<KvEntry | null> {
    const entry = await this.#kv.get(key).catch((error: unknown) => {
      throw unavailable(`read ${key}`, error);
    });
    return entry && entry.operation === 'PUT' ? entry : null;
  }

  async #keys(filter: string): Promise<string[]> {
    try {
      return await listKeys(this.#kv, filter);
    } catch (error) {
      throw unavailable(`list ${filter}`, error);
    }
  }
}

/** Every dead letter stored in the bucket (any group), for `tributary dlq list --log nats://`. */
export async function listNatsDeadLetters(kv: KV): Promise<DeadLetter[]> {
  const letters: DeadLetter[] = [];
  for (const entry of await listEntries(kv, groupKeys.allDeadLetters)) {
    const value = entry.json() as DeadLetter & { id?: number };
    letters.push({ ...value, id: value.id ?? entry.revision });
  }
  return letters.sort((a, b) => a.id - b.id);
}
