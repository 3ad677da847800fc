import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ConsumerYieldStats } from './consumer-yield.ts';
import type { SnapshotJobStatus } from './snapshot-tracker.ts';

/** What a running capture publishes in its data directory for `tributary status`. */
export interface CaptureStatus {
  readonly pid: number;
  readonly startedAt: string;
  readonly updatedAt: string;
  readonly source: string;
  readonly slot: string;
  readonly publication: string;
  readonly connected: boolean;
  readonly confirmedLsn: string;
  readonly durableLsn: string;
  readonly serverLsn: string | null;
  readonly lagBytes: number | null;
  readonly retainedWalBytes: number | null;
  readonly transactions: number;
  readonly events: number;
  readonly records: number;
  readonly recordsPerSecond: number;
  readonly reconnects: number;
  /** Set while the event log's disk is full (appending stopped until space returns). */
  readonly diskFull?: { since: string; freeBytes: number; neededBytes: number } | null;
  /** Snapshot and backfill jobs of this run, with their progress (absent before snapshots existed). */
  readonly snapshot?: readonly SnapshotJobStatus[];
  /** Whether the consumers are held back while the capture catches up, how often and how long they were. */
  readonly consumersHeld?: ConsumerYieldStats;
  /**
   * `active` while capturing; `standby` while `run --standby` waits for the slot (then most
   * counters are 0 and `leader` names the active capture, as its leadership term says).
   */
  readonly role?: 'active' | 'standby';
  /** NATS: the leadership term this capture holds (active), or the one it waits behind (standby). */
  readonly term?: number;
  readonly leader?: { readonly holder: string; readonly since: string } | null;
}

export const STATUS_FILE = 'capture-status.json';

/** Written atomically (rename), so a reader never sees half a file. */
export function writeStatus(dataDir: string, status: CaptureStatus): void {
  const path = join(dataDir, STATUS_FILE);
  writeFileSync(`${path}.tmp`, JSON.stringify(status, null, 2));
  renameSync(`${path}.tmp`, path);
}

export function readStatus(dataDir: string): CaptureStatus | null {
  try {
    return JSON.parse(readFileSync(join(dataDir, STATUS_FILE), 'utf8')) as CaptureStatus;
  } catch {
    return null;
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
