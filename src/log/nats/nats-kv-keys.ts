import type { JetStreamManager } from '@nats-io/jetstream';
import type { KV, KvEntry } from '@nats-io/kv';

/** What `@nats-io/kv`'s bucket object holds besides the `KV` interface (its stream and manager). */
interface BucketInternals {
  readonly jsm: JetStreamManager;
  readonly stream: string;
  readonly prefix: string;
}

/** Entries read at once (each a direct get). */
const CONCURRENT_GETS = 32;

/**
 * The live entries (last operation a put) of the keys that match `filter`, each once, by key.
 *
 * The keys come from one request, the stream's subjects as the server holds them at that moment
 * (`STREAM.INFO` with `subjects_filter`), then each entry is read. `KV.keys()` of @nats-io/kv was
 * used before: it reads the keys with a consumer that delivers until nothing is pending, so a key
 * rewritten during the listing came out twice (156 repeats over 50 listings of 200 keys under a
 * writer), and under steady offset commits and heartbeats a listing took up to 32 s (the group's
 * lag with it: the supervisor benchmark's NATS runs of 36 s instead of 6).
 */
export async function listEntries(kv: KV, filter: string): Promise<KvEntry[]> {
  const keys = await listKeys(kv, filter);
  const entries: KvEntry[] = [];
  for (let i = 0; i < keys.length; i += CONCURRENT_GETS) {
    const read = await Promise.all(keys.slice(i, i + CONCURRENT_GETS).map((key) => kv.get(key)));
    for (const entry of read) if (entry !== null && entry.operation === 'PUT') entries.push(entry);
  }
  return entries;
}

/**
 * The keys that match `filter`, by key, from the same one request as `listEntries` but without
 * reading them: a deleted key (its delete marker is its last message) is listed too. For keys that
 * are never deleted (offsets, dead letters), where reading each would only cost time (a partition
 * with many dead letters is listed at each assignment).
 */
export async function listKeys(kv: KV, filter: string): Promise<string[]> {
  const bucket = kv as unknown as BucketInternals;
  const info = await bucket.jsm.streams.info(bucket.stream, {
    subjects_filter: `${bucket.prefix}.${filter}`,
  });
  return Object.keys(info.state.subjects ?? {})
    .map((subject) => subject.slice(bucket.prefix.length + 1))
    .sort();
}
