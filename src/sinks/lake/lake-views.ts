/**
 * DuckDB views over a snapshot's files: `bronze.<table>`, `silver.<table>`, `gold.<model>`.
 *
 * - bronze: every change event of the table (union of its bronze files, union by column name).
 * - silver (merge-on-read): each key's newest row (by LSN, then log offset) over all of the
 *   table's silver files, newer than the table's last truncate, tombstones (deletes) dropped.
 *   Columns are cast to the catalog's current types, so files written under older schema
 *   versions read under the current one (missing columns as NULL, BIGINT widened to DOUBLE).
 * - `--as-of <lsn>`: bronze rows up to that LSN, and silver rebuilt from them (bronze keeps the
 *   whole history; silver files may have been compacted).
 * - gold: the model's file in the snapshot.
 */
import { join } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { Columns, FileEntry, LakeCatalog } from './lake-catalog.ts';
import { extract, ident, literal, storedType } from './lake-columns.ts';

export interface ViewTarget {
  readonly snapshot: number;
  /** Bronze rows up to this LSN only (silver rebuilt from them). */
  readonly lsn?: number;
}

const BRONZE_EMPTY =
  'SELECT NULL::BIGINT AS _lsn, NULL::INTEGER AS _partition, NULL::BIGINT AS _offset, NULL::VARCHAR AS op, ' +
  'NULL::TIMESTAMP AS commit_ts, NULL::BIGINT AS tx_id, NULL::BIGINT AS tx_order, NULL::VARCHAR AS "key", ' +
  'NULL::VARCHAR AS before, NULL::VARCHAR AS after WHERE false';

function readFiles(root: string, paths: readonly string[]): string {
  return `read_parquet([${paths.map((p) => literal(join(root, p))).join(', ')}], union_by_name = true)`;
}

function ownColumns(columns: Columns): string {
  return columns.map(([n, t]) => `CAST(${ident(n)} AS ${storedType(t)}) AS ${ident(n)}`).join(', ');
}

/** Creates (replaces) the views of every table and model at `target` on `connection`. */
export async function createLakeViews(
  connection: DuckDBConnection,
  catalog: LakeCatalog,
  root: string,
  target: ViewTarget,
): Promise<void> {
  const s = target.snapshot;
  for (const schema of ['bronze', 'silver', 'gold'])
    await connection.run(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
  const files = catalog.files(s);
  const by = (layer: string, name: string) =>
    files.filter((f) => f.layer === layer && f.name === name).map((f) => f.path);
  for (const table of catalog.tables(s)) {
    const columns = catalog.columns(table, s) ?? [];
    const bronzeFiles = by('bronze', table);
    const lsnFilter = target.lsn === undefined ? '' : `WHERE _lsn <= ${target.lsn}`;
    const bronze = bronzeFiles.length
      ? `SELECT * FROM ${readFiles(root, bronzeFiles)} ${lsnFilter}`
      : BRONZE_EMPTY;
    await connection.run(`CREATE OR REPLACE VIEW bronze.${ident(table)} AS ${bronze}`);
    const silver =
      target.lsn === undefined
        ? silverFromFiles(
            root,
            files.filter((f) => f.layer === 'silver' && f.name === table),
            columns,
            catalog.truncatedAt(table, s),
          )
        : silverFromBronze(`bronze.${ident(table)}`, columns);
    await connection.run(`CREATE OR REPLACE VIEW silver.${ident(table)} AS ${silver}`);
  }
  const models = new Set(files.filter((f) => f.layer === 'gold').map((f) => f.name));
  for (const model of models) {
    await connection.run(
      `CREATE OR REPLACE VIEW gold.${ident(model)} AS SELECT * FROM ${readFiles(root, by('gold', model))}`,
    );
  }
}

/**
 * Silver over `files`: each key's newest row. Every silver file holds each key once (a batch's
 * delta its last change per key, a merged file each key's newest row among the files it merged;
 * tombstones kept unless it merged them all), so the largest file is read as it is for the keys
 * no other file holds and only the other files' keys go through the window (at 1,000,000 rows
 * the window over every row was most of a query's time).
 */
function silverFromFiles(
  root: string,
  files: readonly FileEntry[],
  columns: Columns,
  truncate: { lsn: number; off: number } | undefined,
): string {
  const select = `${ownColumns(columns)}${columns.length ? ', ' : ''}_lsn, _commit_ts, _dq_flags`;
  if (files.length === 0) {
    const nulls = columns.map(([n, t]) => `NULL::${storedType(t)} AS ${ident(n)}`);
    return `SELECT ${[...nulls, 'NULL::BIGINT AS _lsn', 'NULL::TIMESTAMP AS _commit_ts', 'NULL::VARCHAR[] AS _dq_flags'].join(', ')} WHERE false`;
  }
  const after = truncate
    ? `WHERE _lsn > ${truncate.lsn} OR (_lsn = ${truncate.lsn} AND _off > ${truncate.off})`
    : '';
  const rows = (of: readonly FileEntry[]) =>
    `(SELECT * FROM ${readFiles(
      root,
      of.map((f) => f.path),
    )} ${after})`;
  const newest = 'QUALIFY row_number() OVER (PARTITION BY _key ORDER BY _lsn DESC, _off DESC) = 1';
  let current: string;
  if (files.length === 1) {
    current = `SELECT * FROM ${rows(files)}`;
  } else {
    const largest = files.reduce((a, f) => (f.rows > a.rows ? f : a));
    const deltas = files.filter((f) => f !== largest);
    const b = rows([largest]);
    const d = rows(deltas);
    current = `SELECT * FROM ${b} AS b ANTI JOIN ${d} AS d USING (_key)
      UNION ALL BY NAME
      SELECT * FROM (SELECT b.* FROM ${b} AS b SEMI JOIN ${d} AS d USING (_key) UNION ALL BY NAME SELECT * FROM ${d})
      ${newest}`;
  }
  return `SELECT ${select} FROM (${current}) WHERE _op <> 'd'`;
}

/** Silver at an LSN, rebuilt from the (already LSN-filtered) bronze view. */
function silverFromBronze(bronze: string, columns: Columns): string {
  const own = columns.map(([n, t]) => `${extract('after', n, t)} AS ${ident(n)}`);
  const select = [...own.map((_, i) => ident(columns[i]![0])), '_lsn', 'commit_ts AS _commit_ts'];
  // After the last truncate in log order (LSN, then offset), as silver's files are read.
  const lsn = `(SELECT max(_lsn) FROM ${bronze} WHERE op = 't')`;
  const off = `(SELECT max(_offset) FROM ${bronze} WHERE op = 't' AND _lsn = ${lsn})`;
  return `SELECT ${select.join(', ')}, []::VARCHAR[] AS _dq_flags FROM (
    SELECT ${[...own, '_lsn', 'commit_ts', 'op'].join(', ')} FROM ${bronze}
    WHERE op <> 't' AND (${lsn} IS NULL OR _lsn > ${lsn} OR (_lsn = ${lsn} AND _offset > ${off}))
    QUALIFY row_number() OVER (PARTITION BY coalesce("key", 'row:' || _partition || ':' || _offset)
                               ORDER BY _lsn DESC, _offset DESC) = 1
  ) WHERE op <> 'd'`;
}
