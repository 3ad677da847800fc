/**
 * The `table` sink: a replica (or a projection: selected, renamed columns) of captured tables in
 * PostgreSQL or SQLite.
 *
 * Guarantees:
 * - Exactly-once effect: the batch's changes and the partition offsets commit in one transaction
 *   of the target (`tributary_consumer_offsets` in the target database), so after kill -9 at any
 *   instant the target holds each change once, and a retried batch rewrites the same values.
 * - Each target row equals the source row after the last change of its key (upsert by key;
 *   deletes remove it; a truncate empties the table). Within a batch changes are coalesced by key
 *   (the last one wins), and a truncate discards the changes before it.
 * - Truncates with several partitions: rows keep their change's source LSN (`_tributary_lsn`); a
 *   truncate at L deletes the rows below L and raises the table's fence to L, and changes at or
 *   below the fence are skipped, whichever partition is read first (table-plan.ts).
 * - A column the source gains appears with the first record that carries it (ALTER TABLE ADD
 *   COLUMN in the batch's transaction), no restart. Its type is the `types` entry, else inferred
 *   from the value (numbers → numeric, key integers → bigint, booleans → boolean, strings → text,
 *   objects → jsonb; SQLite: INTEGER, REAL, TEXT). An existing target column keeps its type:
 *   values are converted to it (timestamps from epoch microseconds, dates from epoch days...).
 * - Exact values: integers beyond 2^53 are read from the record's JSON text, numerics are
 *   written from their decimal text, timestamps to the microsecond.
 * - A value the target refuses (out of range, too long, a constraint) fails the batch; the worker
 *   retries its records one by one and dead-letters the bad one with the target's reason; nothing
 *   of a failed batch is applied.
 * - Not kept: a source `ALTER TABLE ... ADD COLUMN ... DEFAULT` fills existing rows without
 *   changes in the WAL, so rows not changed since keep NULL in the target; dropped or renamed
 *   source columns stay in the target (NULL for new rows).
 */
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import type Database from 'better-sqlite3';
import pg from 'pg';
import type { ConsumerRecord } from '../../consumers/define-consumer.ts';
import { postgresTarget, sqliteTarget, type TransactionalTarget } from '../../consumers/transactional.ts';
import { ConfigError } from '../../core/errors.ts';
import { Lookahead } from '../lookahead.ts';
import type { Sink, SinkCheckContext, SinkEnvironment, SinkKind } from '../sink.ts';
import { type BuiltStatement, PostgresTableWriter } from './postgres-table-writer.ts';
import { SqliteTableWriter } from './sqlite-table-writer.ts';
import { parseTarget, resolveMapping, TABLE_OPTIONS, type TableOptions } from './table-options.ts';
import { planBatch, type TablePlan } from './table-plan.ts';

export const tableSinkKind: SinkKind<TableOptions> = {
  kind: 'table',
  description: 'a replica of captured tables in PostgreSQL or SQLite (upsert by key, exactly once)',
  options: TABLE_OPTIONS,
  // Fewer, larger transactions: in bench/sinks.ts 2,000 records per batch wrote 15-30 % more
  // changes/s into PostgreSQL than 500 (round trips and per-statement work per batch).
  defaultBatch: { maxRecords: 2000 },
  check: checkTableSink,
  create(options) {
    const target = parseTarget(options.target);
    const mappingOf = (source: string) => resolveMapping(options, source);
    const createTables = options.createTables ?? true;
    if (target.kind === 'postgres') {
      const writer = new PostgresTableWriter({
        url: target.url,
        schema: options.schema ?? 'public',
        createTables,
      });
      // The next batch is planned, and its statements built, while the server runs this one's.
      const ahead = new Lookahead<{ plans: Map<string, TablePlan>; built: Map<string, BuiltStatement> }>();
      const planAhead = (records: readonly ConsumerRecord<unknown>[]) => {
        const plans = planBatch(records, mappingOf);
        return { plans, built: writer.build(plans) };
      };
      const sink: Sink<pg.PoolClient> = {
        target: forgetOnFailure(postgresTarget(target.url), () => writer.forget()),
        async write(batch, tx, context) {
          const planned = ahead.take(batch);
          await writer.apply(tx, planned?.plans ?? planBatch(batch, mappingOf), planned?.built, () =>
            ahead.prepare(context.upcoming?.(), planAhead),
          );
        },
        close: () => writer.close(),
      };
      return sink as Sink<unknown>;
    }
    const writer = new SqliteTableWriter({ createTables });
    const sink: Sink<Database.Database> = {
      target: forgetOnFailure(sqliteTarget(target.file), () => writer.forget()),
      async write(batch, tx) {
        writer.apply(tx, planBatch(batch, mappingOf));
      },
    };
    return sink as Sink<unknown>;
  },
};

/** `target` whose failed transactions call `forget` (the catalog cached during them is void). */
function forgetOnFailure<Tx>(target: TransactionalTarget<Tx>, forget: () => void): TransactionalTarget<Tx> {
  return {
    kind: target.kind,
    description: target.description,
    async open(options) {
      const session = await target.open(options);
      return {
        offsets: (group, partitions) => session.offsets(group, partitions),
        async transaction(group, offsets, work) {
          try {
            await session.transaction(group, offsets, work);
          } catch (error) {
            forget();
            throw error;
          }
        },
        close: () => session.close(),
      };
    },
  };
}

/** Before start: the target is reachable, and the named source tables and columns exist. */
async function checkTableSink(
  options: TableOptions,
  env: SinkEnvironment,
  context: SinkCheckContext = {},
): Promise<void> {
  const where = `sinks.${env.name}`;
  const target = parseTarget(options.target);
  if (target.kind === 'postgres') {
    const client = new pg.Client({ connectionString: target.url, connectionTimeoutMillis: 5000 });
    try {
      await client.connect();
      await client.query('select 1');
    } catch (error) {
      throw new ConfigError(
        `${where}.target: cannot connect to ${postgresTarget(target.url).description}: ${(error as Error).message}`,
        {
          hint: 'check the URL, that the server runs and accepts this user',
          cause: error,
        },
      );
    } finally {
      await client.end().catch(() => {});
    }
  } else if (!target.file || !existsSync(dirname(target.file))) {
    throw new ConfigError(`${where}.target: the folder of ${JSON.stringify(target.file)} does not exist`, {
      hint: 'give sqlite:<path of the database file> in an existing folder',
    });
  }
  const mapped = Object.keys(options.mapping ?? {});
  if (context.tables) {
    const unknown = mapped.find((t) => !context.tables?.includes(t));
    if (unknown) {
      throw new ConfigError(`${where}.mapping.${unknown}: not one of the sink's tables`, {
        hint: `tables: ${context.tables.join(', ')}`,
      });
    }
  }
  if (context.sourceUrl) await checkSource(options, where, context.sourceUrl, context.tables ?? mapped);
}

/** The sink's tables and the columns its mapping names exist in the source database. */
async function checkSource(
  options: TableOptions,
  where: string,
  url: string,
  tables: readonly string[],
): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
  } catch {
    return; // The source's own check reports an unreachable source.
  }
  try {
    for (const table of tables) {
      const [schema, name] = table.split('.') as [string, string];
      const result = await client.query<{ column_name: string }>(
        'select column_name from information_schema.columns where table_schema = $1 and table_name = $2',
        [schema, name],
      );
      if (result.rows.length === 0) {
        throw new ConfigError(`${where}.tables: no table ${table} in the source database`, {
          hint: 'name captured tables as schema.table',
        });
      }
      const have = new Set(result.rows.map((r) => r.column_name));
      const m = options.mapping?.[table];
      const named: [string, string[]][] = [
        ['columns', m?.columns ?? []],
        ['rename', Object.keys(m?.rename ?? {})],
        ['types', Object.keys(m?.types ?? {})],
      ];
      for (const [field, columns] of named) {
        const missing = columns.find((c) => !have.has(c));
        if (missing) {
          throw new ConfigError(
            `${where}.mapping.${table}.${field}: no column ${JSON.stringify(missing)} in ${table}`,
            {
              hint: `its columns: ${[...have].join(', ')}`,
            },
          );
        }
      }
    }
  } finally {
    await client.end().catch(() => {});
  }
}
