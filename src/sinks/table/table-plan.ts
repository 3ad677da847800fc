/**
 * A batch as the least work for the target: per target table, whether it was truncated and the
 * last change of each key after that (an upsert with the row, or a delete). Applied in the order
 * truncate → deletes → upserts, which gives the same table as applying every record in log order:
 * a truncate discards the changes before it, and a key's last change is the only one that counts.
 *
 * Each change keeps its source LSN, and a truncate its own: the writers store a row's LSN in the
 * hidden column `LSN_COLUMN`, apply a truncate at L as "delete the rows below L" and skip changes
 * below the last truncate applied (the fence), since another partition may be read ahead of or
 * behind this one (see `RowChange` in sink-records.ts).
 */
import type { ConsumerRecord } from '../../consumers/define-consumer.ts';
import { SinkRecordError } from '../sink.ts';
import { type Row, rowChange, UNAVAILABLE } from '../sink-records.ts';
import type { ResolvedMapping } from './table-options.ts';

/** The hidden target column holding each row's source LSN (for truncates across partitions). */
export const LSN_COLUMN = '_tributary_lsn';

export interface KeyChange {
  readonly op: 'upsert' | 'delete';
  /** The change's source LSN (`null`: unknown, never stale). */
  readonly lsn: number | null;
  /** Key values by target column. */
  readonly key: Row;
  /** Target column → value (upserts); a value may be `UNAVAILABLE` (keep the stored one). */
  readonly row: Row | null;
}

export interface TablePlan {
  readonly mapping: ResolvedMapping;
  truncate: boolean;
  /** The LSN of the batch's last truncate (`null`: unknown, the truncate removes every row). */
  truncateLsn: number | null;
  /** Target key column names, in the record key's order. */
  keyColumns: readonly string[];
  /**
   * Target column → source column, for the renamed columns seen (types are given by source
   * name; a column missing here has its source's name).
   */
  readonly sourceColumn: Map<string, string>;
  /** The last change of each key: by the key's value (one key column), else by `keyId`. */
  readonly changes: Map<unknown, KeyChange>;
}

/**
 * Plans `batch`; `mappingOf` says where a source table goes (undefined: not written). The rows
 * and keys of the changes are the records' parsed objects when the mapping neither renames nor
 * selects columns (no copy per record), and are never modified.
 */
export function planBatch(
  batch: readonly ConsumerRecord<unknown>[],
  mappingOf: (sourceTable: string) => ResolvedMapping | undefined,
): Map<string, TablePlan> {
  const plans = new Map<string, TablePlan>();
  let lastTable: string | undefined;
  let lastMapping: ResolvedMapping | undefined;
  for (const record of batch) {
    const change = rowChange(record);
    if (!change) continue;
    if (change.table !== lastTable) {
      lastTable = change.table;
      lastMapping = mappingOf(change.table);
    }
    const mapping = lastMapping;
    if (!mapping) continue;
    let plan = plans.get(mapping.target);
    if (!plan) {
      plan = {
        mapping,
        truncate: false,
        truncateLsn: null,
        keyColumns: [],
        sourceColumn: new Map(),
        changes: new Map(),
      };
      plans.set(mapping.target, plan);
    }
    if (change.op === 'truncate') {
      plan.truncate = true;
      plan.truncateLsn = change.lsn;
      plan.changes.clear();
      continue;
    }
    const plain = mapping.columns === undefined && !hasAny(mapping.rename);
    const key = plain ? change.key : renamed(plan, change.key, undefined, undefined);
    if (!hasAny(key)) {
      throw new SinkRecordError(
        `table ${change.table} has no key columns: the table sink upserts by key (offset ${record.offset})`,
        { hint: 'give the source table a primary key or a REPLICA IDENTITY USING INDEX' },
      );
    }
    if (plan.keyColumns.length === 0) plan.keyColumns = Object.keys(key);
    const id = keyId(key, plan.keyColumns);
    if (change.op === 'delete') {
      plan.changes.set(id, { op: 'delete', lsn: change.lsn, key, row: null });
      continue;
    }
    let row = plain ? change.row : renamed(plan, change.row, mapping.columns, change.key);
    const previous = plan.changes.get(id);
    if (previous?.op === 'upsert' && previous.row) row = withToastOf(row, previous.row);
    plan.changes.set(id, { op: 'upsert', lsn: change.lsn, key, row });
  }
  return plans;
}

function hasAny(o: object): boolean {
  for (const _ in o) return true;
  return false;
}

/** `source` under target names, without the columns `columns` leaves out (key columns stay). */
function renamed(
  plan: TablePlan,
  source: Row,
  columns: ReadonlySet<string> | undefined,
  key: Row | undefined,
): Row {
  const row: Row = {};
  for (const column in source) {
    if (columns && !columns.has(column) && !(key && column in key)) continue;
    const target = plan.mapping.rename[column] ?? column;
    if (target !== column) plan.sourceColumn.set(target, column);
    row[target] = source[column];
  }
  return row;
}

/** `row`, with a TOASTed value the database did not resend taken from the key's earlier change. */
function withToastOf(row: Row, previous: Row): Row {
  let merged: Row | undefined;
  for (const column in row) {
    if (row[column] === UNAVAILABLE && column in previous) {
      merged ??= { ...row };
      merged[column] = previous[column];
    }
  }
  return merged ?? row;
}

/** The key's value itself for one key column of a primitive value, else a string of the values. */
function keyId(key: Row, columns: readonly string[]): unknown {
  if (columns.length === 1) {
    const v = key[columns[0]!];
    if (typeof v === 'number' || typeof v === 'string' || typeof v === 'bigint') return v;
  }
  let id = '';
  for (const c of columns) {
    const v = key[c];
    id += `${typeof v === 'string' ? 's' : 'o'}${String(v)}\u0000`;
  }
  return id;
}

/** The upserts of `plan` grouped by the columns they must not overwrite (unsent TOAST values). */
export function upsertGroups(
  plan: TablePlan,
): Map<string, { keep: string[]; rows: Row[]; lsns: (number | null)[] }> {
  const groups = new Map<string, { keep: string[]; rows: Row[]; lsns: (number | null)[] }>();
  for (const change of plan.changes.values()) {
    if (change.op !== 'upsert' || !change.row) continue;
    let keep = NONE;
    for (const c in change.row) if (change.row[c] === UNAVAILABLE) keep = keep === NONE ? [c] : [...keep, c];
    const id = keep === NONE ? '' : keep.join('\u0000');
    let group = groups.get(id);
    if (!group) {
      group = { keep, rows: [], lsns: [] };
      groups.set(id, group);
    }
    group.rows.push(change.row);
    group.lsns.push(change.lsn);
  }
  return groups;
}

const NONE: string[] = [];

/** Every target column the upserts of `plan` carry, with a first non-null value (for its type). */
export function columnsOf(plan: TablePlan): Map<string, unknown> {
  const columns = new Map<string, unknown>();
  for (const c of plan.keyColumns) columns.set(c, null);
  for (const change of plan.changes.values()) {
    const row = change.row ?? change.key;
    for (const c in row) {
      const v = row[c];
      const known = columns.get(c);
      if (v === UNAVAILABLE) {
        if (known === undefined) columns.set(c, null);
      } else if ((known === null || known === undefined) && v !== known) columns.set(c, v);
    }
  }
  return columns;
}
