/**
 * Kafka's default partitioner, so that a key lands in the same partition whichever engine holds the
 * log (moving from the embedded log to Kafka keeps per-key order and co-partitioning).
 */

const SEED = 0x9747b28c;
const M = 0x5bd1e995;
const encoder = new TextEncoder();
// Reused for every key: partitioning runs once per appended record, so avoid an allocation each time.
let scratch = new Uint8Array(256);

/** MurmurHash2 (32-bit) with Kafka's seed, as `org.apache.kafka.common.utils.Utils.murmur2`. */
export function murmur2(data: Uint8Array, length = data.length): number {
  let h = SEED ^ length;
  const whole = length & ~3;
  for (let i = 0; i < whole; i += 4) {
    let k = data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24);
    k = Math.imul(k, M);
    k ^= k >>> 24;
    k = Math.imul(k, M);
    h = Math.imul(h, M) ^ k;
  }
  const tail = length & 3;
  if (tail > 0) {
    if (tail === 3) h ^= data[whole + 2]! << 16;
    if (tail >= 2) h ^= data[whole + 1]! << 8;
    h ^= data[whole]!;
    h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

/** Kafka's `Utils.toPositive`: clears the sign bit (not `Math.abs`, which differs for MIN_VALUE). */
export function toPositive(n: number): number {
  return n & 0x7fffffff;
}

/** The partition Kafka's default partitioner gives a non-null key. */
export function partitionForKey(key: string, partitions: number): number {
  if (partitions <= 1) return 0;
  // UTF-8 needs at most 3 bytes per UTF-16 code unit.
  if (key.length * 3 > scratch.length) scratch = new Uint8Array(key.length * 3);
  const { written } = encoder.encodeInto(key, scratch);
  return toPositive(murmur2(scratch, written)) % partitions;
}
