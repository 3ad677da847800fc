/**
 * Writes one batch of change events as Parquet files: per table, one bronze file per commit day
 * (every event, as received) and one silver file (the batch's last change of each key, deletes as
 * tombstone rows: the merge-on-read delta). Rows go through a DuckDB appender into a staging table,
 * then `COPY … TO` writes each file; every file and its directory are fsynced before `write`
 * returns, so the catalog may name them.
 *
 * Guarantees: `write` either returns the entries of files that are complete and durable, or
 * throws (files it wrote are then orphans: unnamed by the catalog, removed at the next open).
 * File names start with the writer's pid, so orphan removal never touches a live writer's files.
 */
import { randomUUID } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { type LakeBatch, STAGE_COLUMNS } from './lake-batch.ts';
import type { Columns, FileEntry } from './lake-catalog.ts';
import { convert, ident, literal, mayFailConvert, rawType, storedType } from './lake-columns.ts';

const STAGE = 'lake_stage';
const RAW = 'lake_raw';
const DAY_US = 86_400_000_000;

/** The data-quality checks each silver row carries in `_dq_flags` (empty list: clean). */
export const DQ_CHECKS = {
  no_key: 'the table has no primary key or replica identity: rows cannot be merged by key',
  toast_unavailable: 'an unchanged TOASTed value was not sent by the database (__debezium_unavailable_value)',
  non_finite: 'a NaN or Infinity value in a numeric or float column',
  unconvertible:
    'a value the lake type cannot hold, stored as NULL (a timestamptz before year 1, a numeric NaN or Infinity in DECIMAL)',
} as const;

/** The `_dq_flags` expression; `failed` are conditions of values that did not convert. */
function dqSql(failed: readonly string[]): string {
  const unconvertible = failed.length ? `CASE WHEN ${failed.join(' OR ')} THEN 'unconvertible' END` : 'NULL';
  return `list_filter([
  CASE WHEN k IS NULL THEN 'no_key' END,
  CASE WHEN contains(after, '"__debezium_unavailable_value"') THEN 'toast_unavailable' END,
  CASE WHEN regexp_matches(after, '":"(-?Infinity|NaN)"') THEN 'non_finite' END, ${unconvertible}], x -> x IS NOT NULL)`;
}

/** The silver columns besides the table's own, in order. */
export const SILVER_META = ['_key', '_lsn', '_off', '_op', '_commit_ts'] as const;

let lastDay = { index: Number.NaN, text: '' };

/** The UTC day (YYYY-MM-DD) of a commit time; the last one is kept (a batch is mostly one day). */
export function dayOf(commitUs: number): string {
  const index = Math.floor(commitUs / DAY_US);
  if (index !== lastDay.index) {
    lastDay = { index, text: new Date(index * 86_400_000).toISOString().slice(0, 10) };
  }
  return lastDay.text;
}

/** A new file path (relative to the lake) for `layer/name[/sub]`. */
export function newFilePath(layer: string, name: string, sub?: string): string {
  return join(layer, name, ...(sub ? [sub] : []), `${process.pid}-${randomUUID()}.parquet`);
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
  const own = columns.map(([name, type]) => {
    const field = `struct_extract(__j, ${literal(name)})`;
    const value = convert(field, type);
    if (mayFailConvert(type)) failed.push(`(${field} IS NOT NULL AND ${value} IS NULL)`);
    return `${value} AS ${ident(name)}`;
  });
  return [
    `coalesce(${keyExpr}, 'row:' || part || ':' || off::BIGINT) AS _key`,
    'lsn::BIGINT AS _lsn',
    'off::BIGINT AS _off',
    'op AS _op',
    'make_timestamp(ts_us::BIGINT) AS _commit_ts',
    ...own,
    `${dqSql(failed)} AS _dq_flags`,
  ].join(', ');
}

/** `from_json(after, <structure>) AS __j` for `columns` (an empty struct when there are none). */
export function silverJson(columns: Columns): string {
  if (columns.length === 0) return 'NULL AS __j';
  const structure = Object.fromEntries(columns.map(([n, t]) => [n, rawType(t)]));
  return `from_json(after, ${literal(JSON.stringify(structure))}) AS __j`;
}

export class LakeWriter {
  #ready = false;

  constructor(
    private readonly connection: DuckDBConnection,
    private readonly root: string,
  ) {}

  /**
   * Writes the files of `changes` (one batch, any tables) given each table's columns after the
   * batch; returns their entries. Truncates keep only later changes in the silver file.
   */
  async write(batch: LakeBatch, columnsOf: (table: string) => Columns): Promise<FileEntry[]> {
    const n = batch.length;
    if (n === 0) return [];
    await this.#stage(batch);
    const { tables, lsns, offsets, ops, commitUs } = batch;
    const byTable = new Map<
      string,
      {
        days: Map<string, { rows: number; index: number }>;
        lsns: [number, number];
        /** Changes for silver (after the batch's last truncate of the table). */
        rows: number;
      }
    >();
    // The batch's last truncate of each table: [lsn, offset].
    const lastTruncate = new Map<string, [number, number]>();
    for (let i = 0; i < n; i++) {
      const table = tables[i]!;
      const lsn = lsns[i]!;
      let t = byTable.get(table);
      if (!t) {
        t = { days: new Map(), lsns: [lsn, lsn], rows: 0 };
        byTable.set(table, t);
      }
      const day = dayOf(commitUs[i]!);
      const d = t.days.get(day);
      if (d) d.rows++;
      else t.days.set(day, { rows: 1, index: Math.floor(commitUs[i]! / DAY_US) });
      if (lsn < t.lsns[0]) t.lsns[0] = lsn;
      if (lsn > t.lsns[1]) t.lsns[1] = lsn;
      if (ops[i] === 't') lastTruncate.set(table, [lsn, offsets[i]!]);
    }
    // Silver rows: the last change per key after the batch's last truncate of the table.
    for (let i = 0; i < n; i++) {
      if (ops[i] === 't') continue;
      const t = lastTruncate.get(tables[i]!);
      if (t && (lsns[i]! < t[0] || (lsns[i] === t[0] && offsets[i]! < t[1]))) continue;
      byTable.get(tables[i]!)!.rows++;
    }
    const entries: FileEntry[] = [];
    for (const [table, t] of byTable) {
      for (const [day, { rows, index }] of t.days) {
        // The day's rows by their commit time (the stage holds its integer microseconds).
        const ofDay =
          t.days.size === 1 ? '' : `AND ts_us >= ${index * DAY_US} AND ts_us < ${(index + 1) * DAY_US}`;
        const path = newFilePath('bronze', table, `day=${day}`);
        await this.#copy(
          `SELECT lsn::BIGINT AS _lsn, part AS _partition, off::BIGINT AS _offset, op,
             make_timestamp(ts_us::BIGINT) AS commit_ts, txid::BIGINT AS tx_id, tx_order::BIGINT AS tx_order,
             k AS "key", before, after
           FROM ${STAGE} WHERE tbl = ${literal(table)} ${ofDay}`,
          path,
        );
        entries.push(this.#entry('bronze', table, path, rows, t.lsns, false, day));
      }
      if (t.rows === 0) continue;
      const trunc = lastTruncate.get(table);
      const after = trunc ? `AND (lsn > ${trunc[0]} OR (lsn = ${trunc[0]} AND off > ${trunc[1]}))` : '';
      const rows = `SELECT * FROM ${STAGE} WHERE tbl = ${literal(table)} AND op <> 't' ${after}`;
      const keyOf = `coalesce(k, 'row:' || part || ':' || off::BIGINT)`;
      const counted = await this.connection.runAndReadAll(
        `SELECT count(DISTINCT ${keyOf})::INTEGER FROM (${rows})`,
      );
      const keys = Number(counted.getRows()[0]?.[0]);
      const path = newFilePath('silver', table);
      const columns = columnsOf(table);
      // Each key's last change (no window when every key of the batch is changed once), then
      // its row image parsed once.
      const last =
        keys === t.rows
          ? ''
          : `QUALIFY row_number() OVER (PARTITION BY ${keyOf} ORDER BY lsn DESC, off DESC) = 1`;
      await this.#copy(
        `SELECT ${silverSelect(columns)} FROM (SELECT *, ${silverJson(columns)} FROM (${rows} ${last}))`,
        path,
      );
      entries.push(this.#entry('silver', table, path, keys, t.lsns, false, null));
    }
    makeDurable(
      this.root,
      entries.map((e) => e.path),
    );
    return entries;
  }

  async #stage(batch: LakeBatch): Promise<void> {
    if (!this.#ready) {
      await this.connection.run(`CREATE OR REPLACE TEMP TABLE ${RAW} (lines VARCHAR)`);
      this.#ready = true;
    } else {
      await this.connection.run(`DELETE FROM ${RAW}`);
    }
    const a = await this.connection.createAppender(RAW);
    try {
      for (const value of batch.values()) {
        a.appendVarchar(value);
        a.endRow();
      }
      a.flushSync();
    } finally {
      a.closeSync();
    }
    await this.connection.run(
      `CREATE OR REPLACE TEMP TABLE ${STAGE} AS SELECT ${STAGE_COLUMNS}
       FROM (SELECT string_split(unnest(string_split(lines, chr(10))), chr(31)) AS l FROM ${RAW})`,
    );
    const staged = await this.connection.runAndReadAll(`SELECT count(*)::INTEGER FROM ${STAGE}`);
    if (staged.getRows()[0]?.[0] !== batch.length) {
      throw new Error(`lake: ${batch.length} changes staged as ${String(staged.getRows()[0]?.[0])} rows`);
    }
  }

  async #copy(select: string, path: string): Promise<void> {
    const full = join(this.root, path);
    mkdirSync(dirname(full), { recursive: true });
    await this.connection.run(`COPY (${select}) TO ${literal(full)} (FORMAT parquet)`);
  }

  #entry(
    layer: 'bronze' | 'silver',
    name: string,
    path: string,
    rows: number,
    lsns: [number, number],
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
