/**
 * Applies table plans to PostgreSQL inside the batch's transaction: per table one statement for
 * the deletes and upserts (`postgres-plan-statement.ts`), and for a truncate at LSN L a delete of
 * the rows below L with the fence raised to L (`tributary_truncates`, see table-plan.ts). Missing
 * tables and columns are created in the same transaction (DDL is transactional in PostgreSQL),
 * with the hidden column `_tributary_lsn`.
 *
 * The catalog of each target table is cached once it is seen committed (columns this transaction
 * adds are not: the other lanes' transactions cannot see them until it commits); a failed
 * transaction clears the cache (`forget`).
 */
import pg from 'pg';
import { SinkRecordError } from '../sink.ts';
import { type Column, PlanStatement, quoteIdent, TRUNCATES_TABLE } from './postgres-plan-statement.ts';
import type { TablePlan } from './table-plan.ts';
import { columnsOf, LSN_COLUMN } from './table-plan.ts';
import { inferPostgresType, postgresValueKind } from './table-values.ts';

export { quoteIdent };

/** One table's change statement, built on `columns` (a catalog entry, compared by identity). */
export interface BuiltStatement {
  readonly columns: Map<string, Column>;
  readonly sql: string;
  readonly params: unknown[];
}

/** Statement shapes prepared per connection at most (see `#statementName`). */
const MAX_STATEMENTS = 64;
/** Writers made in this process: their statement names differ even on a shared connection. */
let writers = 0;

export class PostgresTableWriter {
  readonly #schema: string;
  readonly #create: boolean;
  readonly #catalog = new Map<string, Map<string, Column>>();
  /** Tables whose fence row exists (committed). */
  readonly #fenced = new Set<string>();
  readonly #url: string;
  /** Statement text → prepared statement name (see `#statementName`). */
  readonly #statements = new Map<string, string>();
  readonly #id = ++writers;
  #pool: pg.Pool | undefined;
  #ready: Promise<void> | undefined;

  constructor(options: { url: string; schema: string; createTables: boolean }) {
    this.#url = options.url;
    this.#schema = options.schema;
    this.#create = options.createTables;
  }

  forget(): void {
    this.#catalog.clear();
  }

  /** Ends the connection of `#committed` (when the replica's target session closes). */
  async close(): Promise<void> {
    const pool = this.#pool;
    this.#pool = undefined;
    this.#ready = undefined;
    await pool?.end();
  }

  /**
   * Runs `sql` on a connection of its own, committed at once: what every lane's transaction must
   * see before it writes (the target schema, the fences' table, a table's fence row), not only
   * the transaction that made it. Two replicas creating the same at once: one may fail with a
   * unique violation, and tries again.
   */
  async #committed(sql: string, params: unknown[] = []): Promise<void> {
    this.#pool ??= new pg.Pool({ connectionString: this.#url, max: 1, allowExitOnIdle: true });
    this.#pool.on('error', () => {});
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#pool.query(sql, params);
        return;
      } catch (error) {
        if ((error as { code?: string }).code !== '23505' || attempt === 3) throw error;
      }
    }
  }

  /** The target schema and the truncate fences' table (once per replica). */
  #prepare(): Promise<void> {
    this.#ready ??= (async () => {
      if (this.#create) await this.#committed(`create schema if not exists ${quoteIdent(this.#schema)}`);
      await this.#committed(
        `create table if not exists ${TRUNCATES_TABLE} (table_name text primary key, lsn bigint not null)`,
      );
    })().catch((error: unknown) => {
      this.#ready = undefined;
      throw error;
    });
    return this.#ready;
  }

  /**
   * The change statements of `plans` built now, on the catalog as cached (tables not cached yet,
   * or lacking a column of the plan, are left out): for a batch planned ahead (see `apply`).
   */
  build(plans: Map<string, TablePlan>): Map<string, BuiltStatement> {
    const built = new Map<string, BuiltStatement>();
    for (const [table, plan] of plans) {
      const columns = this.#catalog.get(table);
      if (columns === undefined || plan.changes.size === 0) continue;
      if ([...this.#wanted(plan).keys()].some((c) => !columns.has(c))) continue;
      built.set(table, this.#statement(table, plan, columns));
    }
    return built;
  }

  /**
   * Writes `plans` through `client`. `built` holds statements built ahead (`build`): each is used
   * only if its table's columns are still the very catalog it was built on, else built again.
   * `whileWaiting` runs once, right after the first change statement is sent (the server works
   * on it meanwhile): where the sink plans its next batch.
   */
  async apply(
    client: pg.ClientBase,
    plans: Map<string, TablePlan>,
    built?: Map<string, BuiltStatement>,
    whileWaiting?: () => void,
  ): Promise<void> {
    let idle = whileWaiting;
    // In table order: the fence rows of two tables are locked in the same order by every lane.
    for (const table of [...plans.keys()].sort()) {
      try {
        await this.#applyTable(client, table, plans.get(table)!, built?.get(table), idle);
        idle = undefined;
      } catch (error) {
        throw classify(error, table);
      }
    }
    idle?.();
  }

  async #applyTable(
    client: pg.ClientBase,
    table: string,
    plan: TablePlan,
    built: BuiltStatement | undefined,
    whileWaiting: (() => void) | undefined,
  ): Promise<void> {
    const qualified = `${quoteIdent(this.#schema)}.${quoteIdent(table)}`;
    const fence = `${this.#schema}.${table}`;
    await this.#prepare();
    if (!this.#fenced.has(fence)) {
      await this.#committed(`insert into ${TRUNCATES_TABLE} values ($1, -1) on conflict do nothing`, [fence]);
      this.#fenced.add(fence);
    }
    const columns = await this.#ensure(client, table, qualified, plan);
    const lsn = columns.has(LSN_COLUMN);
    if (plan.truncate) {
      // Rows written before the truncate go; rows of changes after it (read ahead from another
      // partition) stay. The fence row's lock orders this with the lanes writing the table, and
      // is raised even before the table exists (changes below it may come later).
      if (plan.truncateLsn !== null) {
        await client.query(
          `insert into ${TRUNCATES_TABLE} values ($1, $2) on conflict (table_name)
           do update set lsn = greatest(${TRUNCATES_TABLE}.lsn, excluded.lsn)`,
          [fence, plan.truncateLsn],
        );
      }
      if (columns.size === 0) {
        // No table yet: nothing to remove.
      } else if (plan.truncateLsn !== null && lsn) {
        await client.query(
          `delete from ${qualified} where ${quoteIdent(LSN_COLUMN)} is null or ${quoteIdent(LSN_COLUMN)} < $1`,
          [plan.truncateLsn],
        );
      } else await client.query(`delete from ${qualified}`);
    }
    if (plan.changes.size === 0) {
      whileWaiting?.();
      return;
    }
    const { sql, params } = built?.columns === columns ? built : this.#statement(table, plan, columns);
    const sent = client.query({ name: this.#statementName(sql), text: sql, values: params });
    whileWaiting?.();
    await sent;
  }

  #statement(table: string, plan: TablePlan, columns: Map<string, Column>): BuiltStatement {
    const statement = new PlanStatement(`${this.#schema}.${table}`, plan, table, columns);
    const sql = statement.sql(`${quoteIdent(this.#schema)}.${quoteIdent(table)}`);
    return { columns, sql, params: statement.params };
  }

  /** The columns `plan` writes (with the hidden LSN column when creating), with a first value. */
  #wanted(plan: TablePlan): Map<string, unknown> {
    const wanted = columnsOf(plan);
    if (this.#create && wanted.size > 0) wanted.set(LSN_COLUMN, null);
    return wanted;
  }

  /**
   * A name for `sql` as a prepared statement, so that a connection parses (and, after five runs,
   * plans) each statement shape once (the shapes vary only with the columns and the kinds of
   * changes of a batch); `undefined` (unnamed, parsed each time) beyond `MAX_STATEMENTS` shapes,
   * which bounds what each connection keeps on the server.
   */
  #statementName(sql: string): string | undefined {
    let name = this.#statements.get(sql);
    if (name === undefined && this.#statements.size < MAX_STATEMENTS) {
      name = `tributary_table_${this.#id}_${this.#statements.size}`;
      this.#statements.set(sql, name);
    }
    return name;
  }

  /** The table's columns, after creating the table or the columns the plan brings when allowed. */
  async #ensure(
    client: pg.ClientBase,
    table: string,
    qualified: string,
    plan: TablePlan,
    again = false,
  ): Promise<Map<string, Column>> {
    const columns = (!again && this.#catalog.get(table)) || (await this.#load(client, table, qualified));
    const wanted = this.#wanted(plan);
    const missing = [...wanted.keys()].filter((c) => !columns.has(c));
    if (missing.length === 0) return columns;
    if (!this.#create) {
      throw new SinkRecordError(
        columns.size === 0
          ? `target table ${qualified} does not exist`
          : `target table ${qualified} has no column ${missing.map(quoteIdent).join(', ')}`,
        { hint: 'create it, or set createTables: true on the sink' },
      );
    }
    const typeOf = (c: string) =>
      c === LSN_COLUMN
        ? 'bigint'
        : (plan.mapping.types[plan.sourceColumn.get(c) ?? c] ??
          inferPostgresType(wanted.get(c), plan.keyColumns.includes(c)));
    if (columns.size === 0) {
      const defs = [...wanted.keys()].map((c) => `${quoteIdent(c)} ${typeOf(c)}`);
      // Another lane creating it at once: its commit makes ours fail with a unique violation or
      // "relation already exists" (by timing), after which the table is there (a savepoint keeps
      // the batch's transaction usable).
      await client.query('savepoint tributary_create');
      try {
        await client.query(
          `create table if not exists ${qualified} (${defs.join(', ')}, primary key (${plan.keyColumns.map(quoteIdent).join(', ')}))`,
        );
        await client.query('release savepoint tributary_create');
      } catch (error) {
        const code = (error as { code?: string }).code;
        if ((code !== '23505' && code !== '42P07') || again) throw error;
        await client.query('rollback to savepoint tributary_create');
        return this.#ensure(client, table, qualified, plan, true);
      }
    } else {
      for (const c of missing) {
        await client.query(`alter table ${qualified} add column if not exists ${quoteIdent(c)} ${typeOf(c)}`);
      }
    }
    // Not cached: until this transaction commits, other lanes' transactions do not see the DDL
    // (they would write to a table they cannot see). The next batch loads it again, committed.
    return this.#load(client, table, qualified, false);
  }

  async #load(
    client: pg.ClientBase,
    table: string,
    qualified: string,
    cache = true,
  ): Promise<Map<string, Column>> {
    const result = await client.query<{
      attname: string;
      type: string;
      typname: string;
      typcategory: string;
      typdelim: string;
    }>(
      // Cast to the type without its modifier: the INSERT's own assignment then checks it (an
      // explicit cast to varchar(5) would silently cut a longer value). `character` and `bit`
      // without a modifier mean char(1) and bit(1): their unbounded forms are bpchar and varbit.
      `select a.attname, t.typname, t.typcategory, t.typdelim,
         case t.typname when 'bpchar' then 'bpchar' when '_bpchar' then 'bpchar[]' when 'bit' then 'varbit'
           when '_bit' then 'varbit[]' else format_type(a.atttypid, null) end as type
       from pg_attribute a join pg_type t on t.oid = a.atttypid
       where a.attrelid = to_regclass($1) and a.attnum > 0 and not a.attisdropped`,
      [qualified],
    );
    const columns = new Map<string, Column>();
    for (const r of result.rows) {
      const kind = postgresValueKind(r.typname, r.typcategory);
      columns.set(r.attname, {
        type: r.type,
        kind,
        typedArray: kind !== 'array' && r.typdelim === ',',
        delimiter: r.typdelim,
      });
    }
    if (cache && columns.size > 0) this.#catalog.set(table, columns);
    return columns;
  }
}

/** A value the target refuses (data exception, constraint) is the record's fault: a dead letter. */
function classify(error: unknown, table: string): unknown {
  const e = error as { code?: string; message?: string; column?: string };
  if (
    typeof e.code === 'string' &&
    (e.code.startsWith('22') || (e.code.startsWith('23') && e.code !== '23505'))
  ) {
    return new SinkRecordError(
      `target table ${table}${e.column ? ` column ${e.column}` : ''} cannot hold a value of this batch: ${e.message}`,
      { cause: error },
    );
  }
  return error;
}
