/**
 * What the lake's column typing (lake-tx.ts) asks of a staged batch (lake-stage.ts): the JSON
 * types of each table's row images, grouped by row shape (`stagedKinds`), and, for one column
 * where `json_type` does not tell apart the kinds the column's type depends on, the kind of each
 * value (`valueKinds`). Both are read by DuckDB from the staged row images: JavaScript never
 * parses an image here.
 *
 * Guarantees: groups are in the order of their first rows, a group's types follow the table's
 * `columns` (the keys in the order they first occur), and every object image of the batch is in
 * exactly one group.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { literal } from './lake-columns.ts';

/** A row image's columns as DuckDB's `json_type` gives them, from the row `first` on. */
export interface KindGroup {
  /** The JSON type of each column of `KindsOfTable.columns` (null or absent: no such key). */
  readonly types: readonly (string | null | undefined)[];
  /** The first row (in batch order) of the group, and its LSN range. */
  readonly first: number;
  readonly lsns: readonly [number, number];
}

export interface KindsOfTable {
  /** The keys of the table's row images, in the order they first occur. */
  readonly columns: readonly string[];
  /** The groups of rows with one list of types, by their first row. */
  readonly groups: readonly KindGroup[];
}

/**
 * The JSON types of each table's row images (objects only) in the stage `stage`, grouped by (a
 * hash of) their keys and types, in the order the groups first occur (`json_keys` and `json_type`
 * of `$.*` list a row's keys and its values' types in the same order).
 */
export async function stagedKinds(
  connection: DuckDBConnection,
  stage: string,
): Promise<Map<string, KindsOfTable>> {
  const result = await connection.runAndReadAll(
    `SELECT tbl, any_value(keys) AS keys, any_value(types) AS types, min(n) AS first,
       min(lsn) AS lo, max(lsn) AS hi
     FROM (SELECT tbl, n, lsn, json_keys(after) AS keys, json_type(after, '$.*') AS types
       FROM ${stage} WHERE starts_with(after, '{'))
     GROUP BY tbl, hash(keys, types) ORDER BY first`,
  );
  const byTable = new Map<string, { columns: string[]; index: Map<string, number>; groups: KindGroup[] }>();
  for (const r of result.getRowObjects()) {
    const table = r.tbl as string;
    let t = byTable.get(table);
    if (!t) {
      t = { columns: [], index: new Map(), groups: [] };
      byTable.set(table, t);
    }
    const keys = listItems(r.keys) as string[];
    const kinds = listItems(r.types) as string[];
    const types: (string | null)[] = [];
    keys.forEach((key, i) => {
      let c = t.index.get(key);
      if (c === undefined) {
        c = t.columns.push(key) - 1;
        t.index.set(key, c);
      }
      types[c] = kinds[i] ?? null;
    });
    t.groups.push({ types, first: Number(r.first), lsns: [Number(r.lo), Number(r.hi)] });
  }
  return new Map([...byTable].map(([table, t]) => [table, { columns: t.columns, groups: t.groups }]));
}

/**
 * The kinds of value (lake-envelope.ts's `Kind` names) that `column` of `table`'s row images in
 * the stage `stage` holds among those of JSON types `types`, each with the first row holding it: a
 * number is `integer` (whole, below 2^63 in magnitude), `hugeInteger` or `fraction` as JavaScript
 * reads it (its value as a double), a string `nonFinite` (NaN, Infinity, -Infinity) or `string`.
 */
export async function valueKinds(
  connection: DuckDBConnection,
  stage: string,
  table: string,
  column: string,
  types: readonly string[],
): Promise<{ kind: string; first: number }[]> {
  const path = literal(`$.${JSON.stringify(column)}`);
  const result = await connection.runAndReadAll(
    `SELECT CASE WHEN t = 'VARCHAR' THEN
         CASE WHEN v IN ('NaN', 'Infinity', '-Infinity') THEN 'nonFinite' ELSE 'string' END
       WHEN v::DOUBLE <> trunc(v::DOUBLE) THEN 'fraction'
       WHEN abs(v::DOUBLE) < 9223372036854775808.0 THEN 'integer' ELSE 'hugeInteger' END AS kind,
       min(n) AS first
     FROM (SELECT n, json_type(after, ${path}) AS t, json_extract_string(after, ${path}) AS v
       FROM ${stage} WHERE tbl = ${literal(table)} AND starts_with(after, '{'))
     WHERE t IN (${types.map(literal).join(', ')}) GROUP BY ALL`,
  );
  return result.getRowObjects().map((r) => ({ kind: r.kind as string, first: Number(r.first) }));
}

/** The items of a DuckDB LIST value as the node API returns it. */
function listItems(value: unknown): unknown[] {
  return (value as { items: unknown[] }).items;
}
