import pg from 'pg';
import { classifyPgError } from './postgres-errors.ts';
import type { TableName } from './table-name.ts';

/** What the catalog says of a table: its columns and which of them form the record key. */
export interface TableColumns extends TableName {
  readonly columns: readonly { readonly name: string; readonly isKey: boolean }[];
}

/**
 * The columns of the given tables (those that exist), each flagged if it is part of the record
 * key as the source computes it: the replica identity index's columns under REPLICA IDENTITY
 * USING INDEX, else the primary key's.
 */
export async function queryTableColumns(
  client: pg.Client,
  tables: readonly TableName[],
): Promise<TableColumns[]> {
  if (tables.length === 0) return [];
  const result = await client.query<{
    schema: string;
    table: string;
    column: string | null;
    is_key: boolean;
  }>(
    `select n.nspname as schema, c.relname as table, a.attname as column,
            exists (select 1 from pg_index i where i.indrelid = c.oid and a.attnum = any(i.indkey::int2[])
                    and case when c.relreplident = 'i' then i.indisreplident else i.indisprimary end) as is_key
     from pg_class c join pg_namespace n on n.oid = c.relnamespace
     left join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
     where c.relkind in ('r', 'p')
       and (n.nspname, c.relname) in (select * from unnest($1::text[], $2::text[]))
     order by 1, 2, a.attnum`,
    [tables.map((t) => t.schema), tables.map((t) => t.table)],
  );
  const byTable = new Map<string, TableColumns & { columns: { name: string; isKey: boolean }[] }>();
  for (const row of result.rows) {
    const key = `${row.schema}\0${row.table}`;
    let table = byTable.get(key);
    if (!table) {
      table = { schema: row.schema, table: row.table, columns: [] };
      byTable.set(key, table);
    }
    if (row.column !== null) table.columns.push({ name: row.column, isKey: row.is_key });
  }
  return [...byTable.values()];
}

/** `queryTableColumns` on a short-lived connection of its own. */
export async function readTableColumns(url: string, tables: readonly TableName[]): Promise<TableColumns[]> {
  const client = new pg.Client({ connectionString: url, application_name: 'tributary' });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await queryTableColumns(client, tables);
  } catch (error) {
    throw classifyPgError(error, url);
  } finally {
    await client.end().catch(() => undefined);
  }
}
