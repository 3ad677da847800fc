import { LogError } from '../core/errors.ts';
import { formatLsn, type Lsn, parseLsn } from '../core/lsn.ts';
import type { SnapshotProgress } from './snapshot-tracker.ts';

/**
 * What the capture stores with every append. `lsn` is the end of the last transaction whose
 * records are all in the log, or the LSN of the last non-transactional message in the log
 * (the end of its WAL record), whichever came later; `tx`, when set, is a transaction only partly in the log: its
 * first `events` change events are stored (large transactions are written in pieces so that
 * memory stays bounded).
 */
export interface CapturePosition {
  readonly lsn: Lsn;
  readonly tx: { readonly finalLsn: Lsn; readonly events: number } | null;
  /** Unfinished snapshots as of `lsn` (absent in positions written before snapshots existed). */
  readonly snapshot?: SnapshotProgress | undefined;
}

export function encodePosition(position: CapturePosition): string {
  return JSON.stringify({
    lsn: formatLsn(position.lsn),
    tx: position.tx ? { finalLsn: formatLsn(position.tx.finalLsn), events: position.tx.events } : null,
    ...(position.snapshot ? { snapshot: position.snapshot } : {}),
  });
}

export function decodePosition(text: string): CapturePosition {
  try {
    const raw = JSON.parse(text) as {
      lsn: string;
      tx: { finalLsn: string; events: number } | null;
      snapshot?: SnapshotProgress;
    };
    return {
      lsn: parseLsn(raw.lsn),
      tx: raw.tx ? { finalLsn: parseLsn(raw.tx.finalLsn), events: raw.tx.events } : null,
      ...(raw.snapshot ? { snapshot: raw.snapshot } : {}),
    };
  } catch (cause) {
    throw new LogError('LOG_CHECKPOINT_INVALID', `the stored capture position is unreadable: ${text}`, {
      cause,
    });
  }
}
