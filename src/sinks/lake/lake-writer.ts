/**
 * Writes one batch of change events as Parquet files: per table, one bronze file per commit day
 * (every event) and one silver file (the batch's last change of each key, deletes as tombstone
 * rows: the merge-on-read delta). The batch is in DuckDB's stage table (lake-stage.ts); `COPY … TO`
 * writes each file; every file and its directory are fsynced before `write` returns, so the
 * catalog may name them.
 *
 * Guarantees: `write` either returns the entries of files that are complete and durable, or
 * throws (files it wrote are then orphans: unnamed by the catalog, removed at the next open).
 * File names start with the writer's pid, so orphan removal never touches a live writer's files.
 */
import { randomUUID } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { Columns, FileEntry } from './lake-catalog.ts';
import { convert, decimalOf, ident, literal, mayFailConvert, rawType, storedType } from './lake-columns.ts';
import type { StagedBatch } from './lake-stage.ts';

const DAY_US = 86_400_000_000;
/** A silver row's key: the record key, else its place in the log (a table without key). */
const KEY_OF = `coalesce(k, 'row:' || part || ':' || off)`;

/** The data-quality checks each silver row carries in `_dq_flags` (empty list: clean). */
export const DQ_CHECKS = {
  no_key: 'the table has no primary key or replica identity: rows cannot be merged by key',
  toast_unavailable: 'an unchanged TOASTed value was not sent by the database (__debezium_unavailable_value)',
  non_finite: 'a NaN or Infinity value in a numeric or float column',
  unconvertible:
    'a value the lake type cannot hold, stored as NULL (a timestamptz before year 1, a numeric NaN or Infinity in DECIMAL)',
} as const;

/**
 * The `_dq_flags` expression; `failed` are conditions of values that did not convert, `nonFinite`
 * of a NaN or infinity in a numeric or float column.
 */
function dqSql(failed: readonly string[], nonFinite: readonly string[]): string {
  const when = (conditions: readonly string[], flag: string) =>
    conditions.length ? `CASE WHEN ${conditions.join(' OR ')} THEN '${flag}' END` : 'NULL';
  return `list_filter([
  CASE WHEN k IS NULL THEN 'no_key' END,
  CASE WHEN contains(after, '"__debezium_unavailable_value"') THEN 'toast_unavailable' END,
  ${when(nonFinite, 'non_finite')}, ${when(failed, 'unconvertible')}], x -> x IS NOT NULL)`;
}

/** The silver columns besides the table's own, in order. */
export const SILVER_META = ['_key', '_lsn', '_off', '_op', '_commit_ts'] as const;

/** A new file path (relative to the lake) for `layer/name[/sub]`. */
export function newFilePath(layer: string, name: string, sub?: string): string {
  return join(layer, name, ...(sub ? [sub] : []), `${process.pid}-${randomUUID()}.parquet`);
}

/**
 * Bronze files' Parquet options: ZSTD (level 1) and no dictionary. Bronze holds each change's key
 * and row images as JSON text, unique per row, where a dictionary never pays and trying one costs
 * time; ZSTD makes the files about 4x smaller than Snappy (DuckDB's default, kept for silver and
 * gold, the layers read most) in the same writing time (docs/lake.md, "Measured").
 */
export const BRONZE_PARQUET = 'COMPRESSION zstd, COMPRESSION_LEVEL 1, DICTIONARY_SIZE_LIMIT 1';

/**
 * Writes `select`'s rows to the Parquet file `full` (its folder made), with DuckDB's Parquet
 * `options` besides the defaults; returns how many.
 */
export async function copyParquet(
  connection: DuckDBConnection,
  select: string,
  full: string,
  options?: string,
): Promise<number> {
  mkdirSync(dirname(full), { recursive: true });
  const result = await connection.runAndReadAll(
    `COPY (${select}) TO ${literal(full)} (FORMAT parquet${options ? `, ${options}` : ''})`,
  );
  return Number(result.getRows()[0]?.[0]);
}

/** fsyncs each file and then each directory holding them. */
export function makeDurable(root: string, paths: readonly string[]): void {
  const dirs = new Set<string>();
  for (const p of paths) {
    const fd = openSync(join(root, p), 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    dirs.add(dirname(join(root, p)));
  }
  for (const d of dirs) {
    const fd = openSync(d, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
}

/**
 * The SELECT list of a silver row of `columns` over a staged row that carries `__j`, its `after`
 * image parsed once by `from_json` (`silverJson`): one JSON parse per row, not one per column.
 */
export function silverSelect(columns: Columns, keyExpr = 'k'): string {
  const failed: string[] = [];
  const nonFinite: string[] = [];
  const own = columns.map(([name, type]) => {
    const field = `struct_extract(__j, ${literal(name)})`;
    const value = convert(field, type);
    if (mayFailConvert(type)) failed.push(`(${field} IS NOT NULL AND ${value} IS NULL)`);
    if (type === 'FLOAT' || type === 'DOUBLE') nonFinite.push(`(isnan(${field}) OR isinf(${field}))`);
    else if (decimalOf(type)) nonFinite.push(`${field} IN ('NaN', 'Infinity', '-Infinity')`);
    return `${value} AS ${ident(name)}`;
  });
  return [
    `coalesce(${keyExpr}, 'row:' || part || ':' || off) AS _key`,
    'lsn AS _lsn',
    'off AS _off',
    'op AS _op',
    'make_timestamp(ts_us) AS _commit_ts',
    ...own,
    `${dqSql(failed, nonFinite)} AS _dq_flags`,
  ].join(', ');
}

/** `from_json(after, <structure>) AS __j` for `columns` (an empty struct when there are none). */
export function silverJson(columns: Columns): string {
  if (columns.length === 0) return 'NULL AS __j';
  const structure = Object.fromEntries(columns.map(([n, t]) => [n, rawType(t)]));
  return `from_json(after, ${literal(JSON.stringify(structure))}) AS __j`;
}

/** What one batch wrote: its files, its truncates, and how many changes it held. */
export interface LakeWritten {
  readonly files: FileEntry[];
  readonly truncates: { name: string; lsn: number; off: number }[];
  readonly changes: number;
}

export class LakeWriter {
  constructor(
    /** Writes bronze; silver is written on `other` meanwhile (two DuckDB queries at once). */
    private readonly connection: DuckDBConnection,
    private readonly other: DuckDBConnection,
    private readonly root: string,
  ) {}

  /**
   * Writes the files of the staged batch (lake-stage.ts; any tables) given each table's columns
   * after the batch; returns their entries, fsynced. Truncates keep only later changes in silver.
   * Bronze is written (on the first connection) while `typing` runs; silver (on the other) once
   * it has. When `typing` throws, the bronze files are removed and the error thrown.
   */
  async write(
    staged: StagedBatch,
    typing: Promise<void>,
    columnsOf: (table: string) => Columns,
  ): Promise<LakeWritten> {
    const bronze = this.#bronze(staged);
    const plan = bronze.then((b) => this.#plan(staged, b.truncates));
    plan.catch(() => {});
    try {
      await typing;
    } catch (error) {
      const written = await bronze.catch(() => undefined);
      await plan.catch(() => undefined);
      for (const f of written?.files ?? []) rmSync(join(this.root, f.path), { force: true });
      throw error;
    }
    const silver = await this.#silver(staged, await plan, columnsOf);
    const b = await bronze;
    const files = [...b.files, ...silver];
    makeDurable(
      this.root,
      files.map((e) => e.path),
    );
    return { ...b, files };
  }

  /** Bronze: per table, a file per commit day of every change event. */
  async #bronze(staged: StagedBatch): Promise<LakeWritten> {
    const files: FileEntry[] = [];
    for (const t of staged.tables) {
      for (const { day, rows } of t.days) {
        // The day's rows by their commit time (the stage holds its integer microseconds).
        const ofDay =
          t.days.length === 1 ? '' : `AND ts_us >= ${day * DAY_US} AND ts_us < ${(day + 1) * DAY_US}`;
        const text = new Date(day * 86_400_000).toISOString().slice(0, 10);
        const path = newFilePath('bronze', t.name, `day=${text}`);
        await this.#copy(
          this.connection,
          `SELECT lsn AS _lsn, part AS _partition, off AS _offset, op, make_timestamp(ts_us) AS commit_ts,
             txid AS tx_id, tx_order, k AS "key", before, after
           FROM ${staged.stage} WHERE tbl = ${literal(t.name)} ${ofDay}`,
          path,
          BRONZE_PARQUET,
        );
        files.push(this.#entry('bronze', t.name, path, rows, t.lsns, false, text));
      }
    }
    const truncates = await this.#truncates(staged);
    return {
      files,
      truncates,
      changes: staged.tables.reduce((n, t) => n + t.days.reduce((m, d) => m + d.rows, 0), 0),
    };
  }

  /**
   * Per table, silver's rows (the changes after its last truncate) and how many keys they change:
   * each key once (no window needed) or not.
   */
  async #plan(
    staged: StagedBatch,
    truncates: LakeWritten['truncates'],
  ): Promise<Map<string, { rows: string; keys: number; once: boolean }>> {
    const lastTruncate = new Map<string, string>();
    for (const r of truncates) {
      lastTruncate.set(r.name, `AND (lsn > ${r.lsn} OR (lsn = ${r.lsn} AND off > ${r.off}))`);
    }
    const plan = new Map<string, { rows: string; keys: number; once: boolean }>();
    for (const t of staged.tables) {
      const rows = `SELECT * FROM ${staged.stage} WHERE tbl = ${literal(t.name)} AND op <> 't' ${lastTruncate.get(t.name) ?? ''}`;
      const [counted] = await this.#rows(
        this.connection,
        `SELECT count(*)::INTEGER AS changes, count(DISTINCT ${KEY_OF})::INTEGER AS keys FROM (${rows})`,
      );
      const keys = Number(counted!.keys);
      plan.set(t.name, { rows, keys, once: keys === Number(counted!.changes) });
    }
    return plan;
  }

  /** Silver: per table, the batch's last change of each key after its last truncate. */
  async #silver(
    staged: StagedBatch,
    plan: Map<string, { rows: string; keys: number; once: boolean }>,
    columnsOf: (table: string) => Columns,
  ): Promise<FileEntry[]> {
    const files: FileEntry[] = [];
    for (const t of staged.tables) {
      const { rows, keys, once } = plan.get(t.name)!;
      if (keys === 0) continue;
      const path = newFilePath('silver', t.name);
      const columns = columnsOf(t.name);
      // Each key's last change (no window when every key of the batch is changed once), then
      // its row image parsed once.
      const last = once
        ? ''
        : `QUALIFY row_number() OVER (PARTITION BY ${KEY_OF} ORDER BY lsn DESC, off DESC) = 1`;
      await this.#copy(
        this.other,
        `SELECT ${silverSelect(columns)} FROM (SELECT *, ${silverJson(columns)} FROM (${rows} ${last}))`,
        path,
      );
      files.push(this.#entry('silver', t.name, path, keys, t.lsns, false, null));
    }
    return files;
  }

  /** The batch's truncates, in order (a table's last one counts). */
  async #truncates(staged: StagedBatch): Promise<LakeWritten['truncates']> {
    if (!staged.tables.some((t) => t.truncates > 0)) return [];
    const rows = await this.#rows(
      this.connection,
      `SELECT tbl, lsn, off FROM ${staged.stage} WHERE op = 't' ORDER BY tbl, lsn, off`,
    );
    return rows.map((r) => ({ name: r.tbl as string, lsn: Number(r.lsn), off: Number(r.off) }));
  }

  async #rows(connection: DuckDBConnection, sql: string): Promise<Record<string, unknown>[]> {
    return (await connection.runAndReadAll(sql)).getRowObjects();
  }

  async #copy(connection: DuckDBConnection, select: string, path: string, options?: string): Promise<void> {
    await copyParquet(connection, select, join(this.root, path), options);
  }

  #entry(
    layer: 'bronze' | 'silver',
    name: string,
    path: string,
    rows: number,
    lsns: readonly [number, number],
    compacted: boolean,
    day: string | null,
  ): FileEntry {
    const bytes = statSync(join(this.root, path)).size;
    return { layer, name, path, rows, bytes, minLsn: lsns[0], maxLsn: lsns[1], compacted, day };
  }
}

/** Silver column types as stored (for casts in views). */
export function silverTypes(columns: Columns): Columns {
  return columns.map(([n, t]) => [n, storedType(t)]);
}
