/**
 * The deletes and upserts of one table's plan as ONE PostgreSQL statement (a round trip costs
 * more than the statement's work on a busy machine): data-modifying CTEs over `unnest` of one
 * text array per column (cast to the column's type in the statement), one DELETE for the deleted
 * keys and one INSERT … ON CONFLICT per group of upserts that keep the same unsent TOAST columns.
 * Each key appears in one CTE only (the plan coalesced them), so they never touch the same row.
 *
 * The truncate fence: the first CTE locks the table's row of `tributary_truncates` FOR SHARE
 * (lanes writing the same table run side by side; a truncate, which updates the row, waits for
 * them and they for it) and reads its LSN; changes at or below it are skipped. Rows get their
 * change's LSN in `_tributary_lsn` when the table has that column.
 */
import { SinkRecordError } from '../sink.ts';
import type { Row } from '../sink-records.ts';
import { LSN_COLUMN, type TablePlan, upsertGroups } from './table-plan.ts';
import { toPostgresText, type ValueKind } from './table-values.ts';

/** The last truncate applied per target table (`schema.table`), by source LSN; -1 before any. */
export const TRUNCATES_TABLE = 'tributary_truncates';

export interface Column {
  /** The type without its modifier (the INSERT's own assignment applies the modifier). */
  readonly type: string;
  readonly kind: ValueKind;
  /**
   * The values' array parameters are of the column's own array type (`type[]`: the server parses
   * each element once, ~20 % of its time per row against text and a cast), except for array
   * columns (unnest would flatten them) and types whose array elements are not separated by
   * commas (`box`): those go as `text[]` cast per element.
   */
  readonly typedArray: boolean;
  /** What separates the elements of this column's array literals (`typdelim`: `;` for `box[]`). */
  readonly delimiter: string;
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function column(columns: Map<string, Column>, name: string, table: string): Column {
  const c = columns.get(name);
  if (!c) throw new SinkRecordError(`target table ${table} has no column ${quoteIdent(name)}`);
  return c;
}

export class PlanStatement {
  readonly params: unknown[] = [];
  readonly #ctes: string[] = [];
  readonly #plan: TablePlan;
  readonly #table: string;
  readonly #columns: Map<string, Column>;

  constructor(fence: string, plan: TablePlan, table: string, columns: Map<string, Column>) {
    this.#plan = plan;
    this.#table = table;
    this.#columns = columns;
    this.#ctes.push(
      `f as (select lsn from ${TRUNCATES_TABLE} where table_name = ${this.#param(fence)} for share)`,
    );
  }

  sql(qualified: string): string {
    this.#deletes(qualified);
    this.#upserts(qualified);
    return `with ${this.#ctes.join(',\n')} select 1`;
  }

  #param(value: unknown): string {
    this.params.push(value);
    return `$${this.params.length}`;
  }

  /** `u.<name>` as a value of the column's type. */
  #value(name: string): string {
    const c = column(this.#columns, name, this.#table);
    return c.typedArray ? `u.${quoteIdent(name)}` : `u.${quoteIdent(name)}::${c.type}`;
  }

  /**
   * `unnest(...) as u(...)` of these columns' values and the changes' LSNs, each column one array
   * parameter written here as an array literal (`pg`'s own conversion escapes each element with
   * two regular expressions).
   */
  #unnest(names: readonly string[], rows: readonly Row[], lsns: readonly (number | null)[]): string {
    const arrays = names.map((name) => {
      const c = column(this.#columns, name, this.#table);
      const elements = new Array<string>(rows.length);
      for (let i = 0; i < rows.length; i++) elements[i] = arrayElement(rows[i]![name], c, name);
      return `${this.#param(`{${elements.join(',')}}`)}::${c.typedArray ? `${c.type}[]` : 'text[]'}`;
    });
    const elements = lsns.map((lsn) => (lsn === null ? 'NULL' : String(Math.trunc(lsn))));
    arrays.push(`${this.#param(`{${elements.join(',')}}`)}::bigint[]`);
    return `unnest(${arrays.join(', ')}) as u(${[...names, LSN_COLUMN].map(quoteIdent).join(', ')})`;
  }

  #fresh(): string {
    const lsn = `u.${quoteIdent(LSN_COLUMN)}`;
    return `(${lsn} is null or ${lsn} > (select lsn from f))`;
  }

  #deletes(qualified: string): void {
    const deletes = [...this.#plan.changes.values()].filter((c) => c.op === 'delete');
    if (deletes.length === 0) return;
    const keys = this.#plan.keyColumns;
    const using = this.#unnest(
      keys,
      deletes.map((d) => d.key),
      deletes.map((d) => d.lsn),
    );
    const where = keys.map((k) => `t.${quoteIdent(k)} = ${this.#value(k)}`).join(' and ');
    this.#ctes.push(`d as (delete from ${qualified} t using ${using} where ${where} and ${this.#fresh()})`);
  }

  #upserts(qualified: string): void {
    const plan = this.#plan;
    const withLsn = this.#columns.has(LSN_COLUMN);
    let n = 0;
    for (const { keep, rows, lsns } of upsertGroups(plan).values()) {
      const names = new Set<string>(plan.keyColumns);
      for (const row of rows) for (const c in row) if (!names.has(c) && !keep.includes(c)) names.add(c);
      names.delete(LSN_COLUMN);
      const list = [...names];
      const from = this.#unnest(list, rows, lsns);
      const target = withLsn ? [...list, LSN_COLUMN] : list;
      const select = list.map((c) => this.#value(c));
      if (withLsn) select.push(`u.${quoteIdent(LSN_COLUMN)}`);
      const update = target.filter((c) => !plan.keyColumns.includes(c));
      const conflict = plan.keyColumns.map(quoteIdent).join(', ');
      this.#ctes.push(
        `i${n++} as (insert into ${qualified} (${target.map(quoteIdent).join(', ')}) ` +
          `select ${select.join(', ')} from ${from} where ${this.#fresh()} ` +
          (update.length === 0
            ? `on conflict (${conflict}) do nothing)`
            : `on conflict (${conflict}) do update set ${update.map((c) => `${quoteIdent(c)} = excluded.${quoteIdent(c)}`).join(', ')})`),
      );
    }
  }
}

const ESCAPED = /["\\]/;

/** One element of a PostgreSQL array literal: the value's text, quoted, or `NULL`. */
function arrayElement(value: unknown, c: Column, name: string): string {
  if (c.kind === 'plain' && (typeof value === 'number' || typeof value === 'bigint')) return String(value);
  const text = toPostgresText(value, c.kind, name, c.delimiter);
  if (text === null) return 'NULL';
  return ESCAPED.test(text) ? `"${text.replace(/["\\]/g, '\\$&')}"` : `"${text}"`;
}
