import type { ChunkCursor } from '../source/postgres/snapshot-reader.ts';
import { parseTableName, type TableName } from '../source/postgres/table-name.ts';

/**
 * One table to snapshot, as stored in the capture position: `cursor` is where the chunk after
 * the last one in the log starts (null: nothing emitted yet), `rows` how many rows are in the log.
 */
export interface SnapshotJobState {
  readonly id: string;
  readonly schema: string;
  readonly table: string;
  /** `initial` (the start-up snapshot, also `always` and a re-snapshot) or `backfill` (on request). */
  readonly kind: 'initial' | 'backfill';
  readonly condition: string | null;
  readonly cursor: ChunkCursor | null;
  readonly rows: number;
}

/**
 * Jobs from the `data` of an `execute-snapshot` signal, as Debezium writes it:
 * `{"data-collections": ["public.orders"], "additional-condition": "status = 'new'"}`, or
 * per table `"additional-conditions": [{"data-collection": "public.orders", "filter": "..."}]`.
 * Invalid data gives no job (the signal is ignored; the CLI validates before inserting).
 */
export function parseSnapshotSignal(id: string, data: string | null): SnapshotJobState[] {
  let parsed: {
    'data-collections'?: unknown;
    'additional-condition'?: unknown;
    'additional-conditions'?: unknown;
  };
  try {
    parsed = JSON.parse(data ?? 'null') ?? {};
  } catch {
    return [];
  }
  const tables = Array.isArray(parsed['data-collections']) ? parsed['data-collections'] : [];
  const perTable = new Map<string, string>();
  if (Array.isArray(parsed['additional-conditions'])) {
    for (const c of parsed['additional-conditions'] as { 'data-collection'?: unknown; filter?: unknown }[]) {
      if (typeof c?.['data-collection'] === 'string' && typeof c.filter === 'string')
        perTable.set(c['data-collection'], c.filter);
    }
  }
  const shared = typeof parsed['additional-condition'] === 'string' ? parsed['additional-condition'] : null;
  const jobs: SnapshotJobState[] = [];
  tables.forEach((text, i) => {
    if (typeof text !== 'string') return;
    let name: TableName;
    try {
      name = parseTableName(text);
    } catch {
      return;
    }
    const condition = perTable.get(text) ?? shared;
    jobs.push({
      id: `${id}/${i}`,
      schema: name.schema,
      table: name.table,
      kind: 'backfill',
      condition: condition && condition.trim() !== '' ? condition : null,
      cursor: null,
      rows: 0,
    });
  });
  return jobs;
}
