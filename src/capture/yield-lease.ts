import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The lease through which a capture asks the consumer replicas of its data directory to stop
 * reading while it catches up (see `ConsumerYield` in src/capture/consumer-yield.ts for when).
 *
 * The file holds one number: the time (ms since the epoch) until which replicas should not start
 * a read. The capture renews it while it needs the machine and writes 0 to let go; a capture that
 * dies without letting go is outlived by at most one lease. Replicas only read it, so a missing,
 * empty or garbled file means "read as usual": the lease can delay consumers, never stop them.
 */
export const YIELD_FILE = 'capture-yield';

/**
 * How long one renewal holds the replicas back. The capture renews it every 100 ms, but its event
 * loop, busy with the stream it drains, may come back to the timer only 200-300 ms later.
 */
export const YIELD_LEASE_MS = 2000;

/** Written atomically (rename), so a reader never sees a half-written number. */
export function writeYieldLease(dataDir: string, untilMs: number): void {
  const path = join(dataDir, YIELD_FILE);
  writeFileSync(`${path}.tmp`, String(Math.round(untilMs)));
  renameSync(`${path}.tmp`, path);
}

export function readYieldLease(dataDir: string): number {
  try {
    const until = Number(readFileSync(join(dataDir, YIELD_FILE), 'utf8'));
    return Number.isFinite(until) ? until : 0;
  } catch {
    return 0;
  }
}
