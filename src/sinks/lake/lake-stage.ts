/**
 * A batch staged in DuckDB: its lines (lake-batch.ts) written to a file of the lake's stage
 * folder and parsed by `read_json` into a table (`<stage>_lines`), one row per change event, with
 * its lake table, commit time, LSN, op, transaction, key and row images (JSON text as DuckDB
 * writes it: the same JSON, minified, every digit of a number kept). The file is removed once
 * read. The stage is a view over that table adding each row's line number `n` (its row id) and
 * its record's place in the log (`q`, `part`, `off`), from the batch's runs of offsets.
 *
 * What the column typing asks of it (its kinds, lake-kinds.ts; `images`) and what the writer
 * copies into Parquet (lake-writer.ts) are read from the stage: the envelope is parsed once,
 * natively.
 *
 * Guarantees: `load` either stages every change event of the batch or throws (naming the record
 * DuckDB could not read); the table names are `lakeTableName`'s exactly.
 */
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { type LakeBatch, placedLines, STAGED_JSON_COLUMNS, stageFailure } from './lake-batch.ts';
import { lakeTableName, literal } from './lake-columns.ts';
import { type KindsOfTable, stagedKinds, valueKinds } from './lake-kinds.ts';

/** Where a writer stages a batch for DuckDB (`<pid>-stage-<n>.ndjson`, removed once read). */
export const STAGE_DIR = '.stage';

/** A staged batch: its stage table and, per lake table, what the writer decides with. */
export interface StagedBatch {
  /** The stage: a view over its table of lines (both dropped by `release`). */
  readonly stage: string;
  readonly tables: readonly StagedTable[];
  /** Per table, the kinds of value of its row images' columns (lake-kinds.ts). */
  readonly kinds: ReadonlyMap<string, KindsOfTable>;
}

export interface StagedTable {
  readonly name: string;
  /** Change events per commit day (days since the epoch, UTC), in day order. */
  readonly days: readonly { readonly day: number; readonly rows: number }[];
  readonly lsns: readonly [number, number];
  readonly truncates: number;
}

const DAY_US = 86_400_000_000;
/** Batches staged ahead and not yet taken by their transaction, at most (older ones dropped). */
const AHEAD = 2;

export class LakeStage {
  #seq = 0;
  /** The early connection's work so far (its statements run one after the other). */
  #early: Promise<void> = Promise.resolve();
  /** Batches staged ahead (`preload`), oldest first. */
  readonly #ahead: { batch: LakeBatch; staged: Promise<StagedBatch> }[] = [];

  constructor(
    /** Loads the stage of the batch being applied. */
    private readonly connection: DuckDBConnection,
    /** Reads row images back for the typing (while the writer writes bronze on `connection`). */
    private readonly other: DuckDBConnection,
    /** Loads the stage of a batch ahead of its transaction. */
    private readonly early: DuckDBConnection,
    private readonly root: string,
  ) {}

  /** Stages `batch` (or takes the stage `preload` made of it). */
  async load(batch: LakeBatch): Promise<StagedBatch> {
    const at = this.#ahead.findIndex((a) => a.batch === batch);
    const staged =
      at >= 0 ? await this.#ahead.splice(at, 1)[0]!.staged : await this.#load(this.connection, batch);
    // The batch's bytes are DuckDB's now (a stage dropped ahead, past `AHEAD`, still has them).
    batch.dropBytes();
    return staged;
  }

  /**
   * Starts staging `batch` ahead of its transaction (it depends only on the records); `load`
   * takes it. A failure surfaces there. Stages not taken are dropped past `AHEAD`.
   */
  preload(batch: LakeBatch): void {
    // One statement at a time on the early connection: stages, and drops of those not taken.
    const staged = this.#early.then(() => this.#load(this.early, batch));
    this.#ahead.push({ batch, staged });
    let next = staged.then(
      () => {},
      () => {},
    );
    while (this.#ahead.length > AHEAD) {
      const dropped = this.#ahead.shift()!.staged;
      next = next.then(() => dropped.then((s) => this.#drop(this.early, s))).catch(() => {});
    }
    this.#early = next;
  }

  /** Waits for the stages started ahead (before the connections close). */
  async settle(): Promise<void> {
    await Promise.allSettled(this.#ahead.map((a) => a.staged));
    await this.#early;
  }

  /** Drops a staged batch's table (once its transaction is done with it). */
  async release(staged: StagedBatch): Promise<void> {
    await this.#drop(this.connection, staged);
  }

  async #drop(connection: DuckDBConnection, staged: StagedBatch): Promise<void> {
    await connection.run(`DROP VIEW IF EXISTS ${staged.stage}`);
    await connection.run(`DROP TABLE IF EXISTS ${staged.stage}_lines`);
  }

  async #load(connection: DuckDBConnection, batch: LakeBatch): Promise<StagedBatch> {
    const stage = `lake_stage_${++this.#seq}`;
    const file = join(this.root, STAGE_DIR, `${process.pid}-stage-${this.#seq}.ndjson`);
    mkdirSync(dirname(file), { recursive: true });
    const fd = openSync(file, 'w');
    try {
      for (const chunk of batch.bytes()) writeSync(fd, chunk);
    } finally {
      closeSync(fd);
    }
    const lines = `${stage}_lines`;
    try {
      // The table name is lakeTableName's but for characters outside [a-z0-9_] (`#names`); for
      // a change whose source names no table, its topic's last part's (`placedLines`).
      await connection.run(
        `CREATE OR REPLACE TABLE ${lines} AS SELECT
           lower(CASE WHEN coalesce(v.source."schema", 'public') = 'public' THEN v.source."table"
             ELSE v.source."schema" || '_' || v.source."table" END) AS tbl,
           v.source."schema" AS src_schema, v.source."table" AS src_table,
           coalesce(v.source.ts_us, v.source.ts_ms * 1000) AS ts_us,
           coalesce(v.source.lsn, 0) AS lsn, v.op AS op, v.source.txId AS txid, v."transaction".total_order AS tx_order,
           k, nullif(v.before::VARCHAR, 'null') AS before, nullif(v.after::VARCHAR, 'null') AS after
         FROM read_json(${literal(file)}, format = 'newline_delimited', records = true,
           maximum_object_size = ${Math.max(16 << 20, batch.longest + 1024)}, columns = ${STAGED_JSON_COLUMNS})`,
      );
    } catch (error) {
      throw stageFailure(error, batch);
    } finally {
      rmSync(file, { force: true });
    }
    await connection.run(`CREATE OR REPLACE VIEW ${stage} AS ${placedLines(batch, lines)}`);
    let summary = await this.#summary(connection, stage);
    if (summary.some((r) => r.day === null && Number(r.rows) > 0)) {
      await this.#timestamps(connection, stage, batch);
      summary = await this.#summary(connection, stage);
    }
    const staged = summary.reduce((sum, r) => sum + Number(r.n), 0);
    if (staged !== batch.length) throw new Error(`lake: ${batch.length} changes staged as ${staged} rows`);
    // Values that are JSON objects but not change events (no op) are skipped, as tombstones are.
    if (summary.some((r) => Number(r.rows) < Number(r.n))) {
      await connection.run(`DELETE FROM ${stage}_lines WHERE op IS NULL`);
    }
    const tables = await this.#names(connection, stage, batch, summary);
    return { stage, tables, kinds: await stagedKinds(connection, stage) };
  }

  async #summary(connection: DuckDBConnection, stage: string): Promise<Record<string, unknown>[]> {
    return this.rows(
      connection,
      `SELECT tbl, src_schema, src_table, q, ts_us // ${DAY_US} AS day, count(*)::INTEGER AS n,
         count(op)::INTEGER AS rows, min(lsn) FILTER (WHERE op IS NOT NULL) AS lo,
         max(lsn) FILTER (WHERE op IS NOT NULL) AS hi, count(*) FILTER (WHERE op = 't')::INTEGER AS truncates
       FROM ${stage} GROUP BY ALL ORDER BY day`,
    );
  }

  /**
   * Gives the changes whose envelope has no commit time (neither `source.ts_us` nor `ts_ms`) their
   * record's timestamp (milliseconds) instead.
   */
  async #timestamps(connection: DuckDBConnection, stage: string, batch: LakeBatch): Promise<void> {
    const rows = await this.rows(connection, `SELECT n FROM ${stage} WHERE ts_us IS NULL AND op IS NOT NULL`);
    const values = rows.map((r) => {
      const ms = batch.timestampOf(Number(r.n));
      return `(${Number(r.n)}, ${Number.isFinite(ms) ? Math.round(ms * 1000) : 'NULL'})`;
    });
    await connection.run(
      `UPDATE ${stage}_lines SET ts_us = t.ts FROM (VALUES ${values.join(', ')}) t(n, ts)
       WHERE ${stage}_lines.rowid = t.n`,
    );
  }

  /**
   * Makes each row's table `lakeTableName`'s (the SQL expression is it for names of ASCII letters,
   * digits and `_`; another name is set here), and gathers the tables' summaries.
   */
  async #names(
    connection: DuckDBConnection,
    stage: string,
    batch: LakeBatch,
    summary: readonly Record<string, unknown>[],
  ): Promise<StagedTable[]> {
    const tables = new Map<
      string,
      { days: Map<number, number>; lsns: [number, number]; truncates: number }
    >();
    const renamed = new Set<string>();
    for (const r of summary) {
      if (Number(r.rows) === 0) continue;
      const topic = batch.topics[Number(r.q)]!;
      const name = lakeTableName(
        (r.src_schema as string | null) ?? 'public',
        (r.src_table as string | null) ?? topic.split('.').at(-1)!,
      );
      const t = tables.get(name) ?? { days: new Map(), lsns: [Number(r.lo), Number(r.hi)], truncates: 0 };
      tables.set(name, t);
      t.days.set(Number(r.day), (t.days.get(Number(r.day)) ?? 0) + Number(r.rows));
      t.lsns = [Math.min(t.lsns[0], Number(r.lo)), Math.max(t.lsns[1], Number(r.hi))];
      t.truncates += Number(r.truncates);
      const same = (column: string, value: unknown) =>
        value === null ? `${column} IS NULL` : `${column} = ${literal(String(value))}`;
      const where = `${same('src_schema', r.src_schema)} AND ${same('src_table', r.src_table)} AND q = ${Number(r.q)}`;
      if (name === r.tbl || renamed.has(where)) continue;
      renamed.add(where);
      await connection.run(
        `UPDATE ${stage}_lines SET tbl = ${literal(name)} WHERE rowid IN (SELECT n FROM ${stage} WHERE ${where})`,
      );
    }
    return [...tables].map(([name, t]) => ({
      name,
      days: [...t.days].map(([day, rows]) => ({ day, rows })),
      lsns: t.lsns,
      truncates: t.truncates,
    }));
  }

  /** See lake-kinds.ts (on the connection that reads for the typing). */
  valueKinds(
    staged: StagedBatch,
    table: string,
    column: string,
    types: readonly string[],
  ): Promise<{ kind: string; first: number }[]> {
    return valueKinds(this.other, staged.stage, table, column, types);
  }

  /** `table`'s row images (objects only) with their LSNs, in batch order. */
  async images(staged: StagedBatch, table: string): Promise<{ lsn: number; after: string }[]> {
    const rows = await this.rows(
      this.other,
      `SELECT lsn, after FROM ${staged.stage} WHERE tbl = ${literal(table)} AND starts_with(after, '{') ORDER BY n`,
    );
    return rows.map((r) => ({ lsn: Number(r.lsn), after: r.after as string }));
  }

  async rows(connection: DuckDBConnection, sql: string): Promise<Record<string, unknown>[]> {
    return (await connection.runAndReadAll(sql)).getRowObjects();
  }
}
