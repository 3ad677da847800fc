import { ConfigError } from '../core/errors.ts';
import type { PartitionInfo } from '../core/event-log.ts';

/**
 * Where `tributary read` starts in each partition (`--from`): an offset (`0`, `1200`), `earliest`,
 * `latest` (the end: nothing yet, what comes next with `--follow`), or `-N` (the last N records
 * of each partition, a tail).
 */
export type ReadStart =
  | { readonly kind: 'offset'; readonly offset: number }
  | { readonly kind: 'latest' }
  | { readonly kind: 'tail'; readonly count: number };

export function parseReadStart(text: string): ReadStart {
  const value = text.trim();
  if (value === 'earliest') return { kind: 'offset', offset: 0 };
  if (value === 'latest' || value === 'end') return { kind: 'latest' };
  const n = Number(value);
  if (value !== '' && Number.isInteger(n)) {
    if (value.startsWith('-')) return n === 0 ? { kind: 'latest' } : { kind: 'tail', count: -n };
    return { kind: 'offset', offset: n };
  }
  throw new ConfigError(`--from must be an offset, earliest, latest or -N, not ${JSON.stringify(text)}`, {
    hint: '--from 0 reads from the start, --from latest only what comes next (with --follow), --from -10 the last 10 records of each partition',
  });
}

/**
 * The first offset to print in a partition. `present` says whether the partition existed when
 * the read began: a partition that appears later (under `--follow`) holds only new records, read
 * from its start whatever `--from` says.
 */
export function firstOffset(start: ReadStart, partition: PartitionInfo, present: boolean): number {
  const { startOffset, endOffset } = partition;
  if (!present) return startOffset;
  if (start.kind === 'offset') return Math.max(start.offset, startOffset);
  if (start.kind === 'latest') return endOffset;
  return Math.max(startOffset, endOffset - start.count);
}
