/**
 * The dead letters of `consumers run` processes in the NATS log's bucket (`d.*` keys, written by
 * nats-consumer-state.ts), for `tributary dlq show|replay|discard --log nats://...` run on any
 * machine. Resolving one (replayed, discarded) or recording a failed replay is a compare-and-set on
 * the revision read, so two operators acting on the same dead letter at once cannot both resolve it:
 * the second sees `false` (it changed meanwhile) and reports it.
 */
import type { KV } from '@nats-io/kv';
import { listEntries } from '../../log/nats/nats-kv-keys.ts';
import { unavailable } from '../../log/nats/nats-setup.ts';
import type { DeadLetter, DeadLetterStatus } from '../consumer-store.ts';
import { groupKeys } from './group-keys.ts';

/** A dead letter as read from the bucket: its key and the revision to compare-and-set against. */
export interface NatsDeadLetter {
  readonly letter: DeadLetter;
  readonly key: string;
  readonly revision: number;
}

/** The dead letters of `consumer` (every group it wrote under), in id order. */
export async function natsDeadLetters(
  kv: KV,
  consumer: string,
  filter: { status?: DeadLetterStatus; ids?: readonly number[] } = {},
): Promise<NatsDeadLetter[]> {
  const out: NatsDeadLetter[] = [];
  try {
    for (const entry of await listEntries(kv, groupKeys.allDeadLetters)) {
      const key = entry.key;
      const value = entry.json() as DeadLetter & { id?: number };
      // The id is the revision that created the entry (added by a second write, which may be lost).
      const letter = { ...value, id: value.id ?? entry.revision };
      if (letter.consumer !== consumer) continue;
      if (filter.status && letter.status !== filter.status) continue;
      if (filter.ids && !filter.ids.includes(letter.id)) continue;
      out.push({ letter, key, revision: entry.revision });
    }
  } catch (error) {
    throw unavailable(`read the dead letters of ${consumer}`, error);
  }
  return out.sort((a, b) => a.letter.id - b.letter.id);
}

/** How long a replay's claim on a dead letter holds (a replay that died leaves it behind). */
export const REPLAY_CLAIM_MS = 10 * 60_000;

/** A dead letter as stored in NATS: a replay running its handler claims it first. */
type Claimed = DeadLetter & { readonly replaying?: { readonly by: string; readonly at: number } };

/**
 * Claims a pending dead letter for one replay, by compare-and-set, so that two replays (two
 * operators, the dashboard and the CLI) never run the handler on it both: returns it with its new
 * revision, or the reason it is not for this replay (resolved or claimed meanwhile, or claimed by
 * another replay less than `REPLAY_CLAIM_MS` ago).
 */
export async function claimNatsDeadLetter(
  kv: KV,
  d: NatsDeadLetter,
  by: string,
  now = Date.now(),
): Promise<NatsDeadLetter | string> {
  if (d.letter.status !== 'pending') return `it is ${d.letter.status}`;
  const claim = (d.letter as Claimed).replaying;
  if (claim && now - claim.at < REPLAY_CLAIM_MS)
    return `another replay (by ${claim.by}) runs it since ${new Date(claim.at).toISOString()}`;
  const letter: Claimed = { ...d.letter, replaying: { by, at: now } };
  try {
    const revision = await kv.update(d.key, JSON.stringify(letter), d.revision);
    return { ...d, letter, revision };
  } catch (error) {
    const entry = await kv.get(d.key).catch((e: unknown) => {
      throw unavailable(`read ${d.key}`, e);
    });
    if (entry && entry.revision !== d.revision) return 'it changed meanwhile (another replay or discard)';
    throw unavailable(`claim the dead letter ${d.letter.id}`, error);
  }
}

/** The letter without a replay's claim (written when the replay ends either way). */
function unclaimed(letter: DeadLetter): DeadLetter {
  const { replaying: _claim, ...rest } = letter as Claimed;
  return rest;
}

/** Marks a pending dead letter replayed or discarded; false when it changed since it was read. */
export async function resolveNatsDeadLetter(
  kv: KV,
  d: NatsDeadLetter,
  status: 'replayed' | 'discarded',
  by: string,
  note?: string,
  now = Date.now(),
): Promise<boolean> {
  if (d.letter.status !== 'pending') return false;
  const letter: DeadLetter = {
    ...unclaimed(d.letter),
    status,
    resolvedBy: by,
    resolvedAt: now,
    note: note ?? d.letter.note,
  };
  return update(kv, d, letter);
}

/** A replay failed again: the dead letter stays pending with the new error, one attempt more. */
export async function recordNatsFailure(
  kv: KV,
  d: NatsDeadLetter,
  error: string,
  stack: string | undefined,
  now = Date.now(),
): Promise<boolean> {
  const letter: DeadLetter = {
    ...unclaimed(d.letter),
    error,
    stack: stack ?? null,
    attempts: d.letter.attempts + 1,
    failedAt: now,
  };
  return update(kv, d, letter);
}

async function update(kv: KV, d: NatsDeadLetter, letter: DeadLetter): Promise<boolean> {
  try {
    await kv.update(d.key, JSON.stringify(letter), d.revision);
    return true;
  } catch (error) {
    const entry = await kv.get(d.key).catch((e: unknown) => {
      throw unavailable(`read ${d.key}`, e);
    });
    if (entry && entry.revision !== d.revision) return false;
    throw unavailable(`update the dead letter ${d.letter.id}`, error);
  }
}
