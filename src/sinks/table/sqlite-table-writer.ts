/**
 * Applies table plans to SQLite inside the batch's transaction, with prepared statements (one per
 * table and column list, reused across batches): per table, for a truncate at LSN L a delete of
 * the rows below L (the fence raised to L, `sink_truncates`; see table-plan.ts), then one DELETE
 * per deleted key and one INSERT … ON CONFLICT DO UPDATE per upserted row, skipping the changes at
 * or below the fence. Missing tables and columns are created in the same transaction, with the
 * hidden column `_tributary_lsn`.
 *
 * Column types: `types` entries (declared with an affinity that never rewrites a value, e.g.
 * `numeric` as TEXT so `12.50` stays `12.50`), else from the first value (INTEGER, REAL, TEXT).
 * Integers beyond 2^53 are bound as 64-bit integers, exactly.
 */
import type Database from 'better-sqlite3';
import { SinkRecordError } from '../sink.ts';
import { TruncateFence } from '../truncate-fence.ts';
import { quoteIdent } from './postgres-table-writer.ts';
import type { TablePlan } from './table-plan.ts';
import { columnsOf, LSN_COLUMN, upsertGroups } from './table-plan.ts';
import { inferSqliteType, sqliteDeclaredType, sqliteValueKind, toSqliteValue } from './table-values.ts';

export class SqliteTableWriter {
  readonly #create: boolean;
  readonly #columns = new Map<string, Set<string>>();
  readonly #statements = new Map<string, Database.Statement>();
  #fence: { db: Database.Database; fence: TruncateFence } | undefined;

  constructor(options: { createTables: boolean }) {
    this.#create = options.createTables;
  }

  forget(): void {
    this.#columns.clear();
    this.#statements.clear();
    this.#fence = undefined;
  }

  apply(db: Database.Database, plans: Map<string, TablePlan>): void {
    for (const [table, plan] of plans) {
      try {
        this.#applyTable(db, table, plan);
      } catch (error) {
        throw classify(error, table);
      }
    }
  }

  #applyTable(db: Database.Database, table: string, plan: TablePlan): void {
    const known = this.#ensure(db, table, plan);
    const withLsn = known.has(LSN_COLUMN);
    const fence = this.#fenceOf(db);
    const q = quoteIdent(table);
    if (plan.truncate && known.size > 0) {
      // Rows written before the truncate go; rows of changes after it (read ahead from another
      // partition) stay.
      const cut = fence.truncate(table, plan.truncateLsn);
      if (withLsn && plan.truncateLsn !== null) {
        db.prepare(
          `delete from ${q} where ${quoteIdent(LSN_COLUMN)} is null or ${quoteIdent(LSN_COLUMN)} < ?`,
        ).run(cut);
      } else db.prepare(`delete from ${q}`).run();
    } else if (plan.truncate) fence.truncate(table, plan.truncateLsn);
    const keys = plan.keyColumns;
    const kindOf = (c: string) => sqliteValueKind(plan.mapping.types[plan.sourceColumn.get(c) ?? c]);
    const deleteSql = `delete from ${q} where ${keys.map((k) => `${quoteIdent(k)} = ?`).join(' and ')}`;
    for (const change of plan.changes.values()) {
      if (change.op !== 'delete' || fence.stale(table, change.lsn)) continue;
      this.#statement(db, deleteSql).run(keys.map((k) => toSqliteValue(change.key[k], kindOf(k), k)));
    }
    for (const { keep, rows, lsns } of upsertGroups(plan).values()) {
      const names = new Set<string>(keys);
      for (const row of rows) for (const c of Object.keys(row)) if (!keep.includes(c)) names.add(c);
      names.delete(LSN_COLUMN);
      if (withLsn) names.add(LSN_COLUMN);
      const list = [...names];
      const kinds = list.map(kindOf);
      const update = list.filter((c) => !keys.includes(c));
      const sql =
        `insert into ${q} (${list.map(quoteIdent).join(', ')}) values (${list.map(() => '?').join(', ')}) ` +
        (update.length === 0
          ? `on conflict (${keys.map(quoteIdent).join(', ')}) do nothing`
          : `on conflict (${keys.map(quoteIdent).join(', ')}) do update set ${update.map((c) => `${quoteIdent(c)} = excluded.${quoteIdent(c)}`).join(', ')}`);
      const statement = this.#statement(db, sql);
      rows.forEach((row, r) => {
        const lsn = lsns[r] ?? null;
        if (fence.stale(table, lsn)) return;
        statement.run(list.map((c, i) => (c === LSN_COLUMN ? lsn : toSqliteValue(row[c], kinds[i]!, c))));
      });
    }
  }

  #statement(db: Database.Database, sql: string): Database.Statement {
    let statement = this.#statements.get(sql);
    if (!statement) {
      statement = db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  #fenceOf(db: Database.Database): TruncateFence {
    if (this.#fence?.db !== db) this.#fence = { db, fence: new TruncateFence(db) };
    return this.#fence.fence;
  }

  #ensure(db: Database.Database, table: string, plan: TablePlan): Set<string> {
    let known = this.#columns.get(table);
    if (!known) {
      const info = db.prepare(`pragma table_info(${quoteIdent(table)})`).all() as { name: string }[];
      known = new Set(info.map((c) => c.name));
    }
    const wanted = columnsOf(plan);
    if (this.#create && wanted.size > 0) wanted.set(LSN_COLUMN, null);
    const missing = [...wanted.keys()].filter((c) => !known.has(c));
    if (missing.length > 0) {
      if (!this.#create) {
        throw new SinkRecordError(
          known.size === 0
            ? `target table ${table} does not exist`
            : `target table ${table} has no column ${missing.map(quoteIdent).join(', ')}`,
          { hint: 'create it, or set createTables: true on the sink' },
        );
      }
      const typeOf = (c: string) => {
        if (c === LSN_COLUMN) return 'INTEGER';
        const declared = plan.mapping.types[plan.sourceColumn.get(c) ?? c];
        return declared ? sqliteDeclaredType(declared) : inferSqliteType(wanted.get(c));
      };
      if (known.size === 0) {
        const defs = [...wanted.keys()].map((c) => `${quoteIdent(c)} ${typeOf(c)}`.trim());
        db.exec(
          `create table if not exists ${quoteIdent(table)} (${defs.join(', ')}, primary key (${plan.keyColumns.map(quoteIdent).join(', ')}))`,
        );
      } else {
        for (const c of missing)
          db.exec(`alter table ${quoteIdent(table)} add column ${quoteIdent(c)} ${typeOf(c)}`);
      }
      for (const c of wanted.keys()) known.add(c);
    }
    this.#columns.set(table, known);
    return known;
  }
}

function classify(error: unknown, table: string): unknown {
  if (error instanceof SinkRecordError) return error;
  const e = error as { code?: string; message?: string };
  if (
    error instanceof RangeError ||
    error instanceof TypeError ||
    (typeof e.code === 'string' && /^SQLITE_(CONSTRAINT|TOOBIG|MISMATCH)/.test(e.code))
  ) {
    return new SinkRecordError(`target table ${table} cannot hold a value of this batch: ${e.message}`, {
      cause: error,
    });
  }
  return error;
}
