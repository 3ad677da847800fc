import type pg from 'pg';
import type { ColumnDetails, Relation } from '../../core/change-event.ts';

/**
 * What a Relation message leaves out (attnum, nullability, the full type expression), read from
 * pg_attribute. The catalog is the current one, possibly newer than the message when capture
 * lags behind DDL: a column is described only when the catalog still has it with the same name
 * and type, otherwise its entry is undefined.
 */
export async function readColumnDetails(
  client: pg.Client,
  relation: Relation,
): Promise<(ColumnDetails | undefined)[]> {
  const result = await client.query<{
    name: string;
    attnum: number;
    nullable: boolean;
    oid: number;
    mod: number;
    type: string;
  }>(
    `select attname as name, attnum, not attnotnull as nullable, atttypid::int as oid,
            atttypmod as mod, format_type(atttypid, atttypmod) as type
     from pg_attribute where attrelid = $1 and attnum > 0 and not attisdropped`,
    [relation.id],
  );
  const byName = new Map(result.rows.map((row) => [row.name, row]));
  return relation.columns.map((column) => {
    const row = byName.get(column.name);
    if (!row || row.oid !== column.typeOid || row.mod !== column.typeMod) return undefined;
    return { attnum: row.attnum, nullable: row.nullable, typeExpression: row.type };
  });
}
