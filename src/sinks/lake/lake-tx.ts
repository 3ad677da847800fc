/**
 * One batch being applied to the lake: its staged changes, and its tables' columns widened by
 * their row images (lake-columns.ts), decided before any file is written.
 *
 * The typing reads the JSON types DuckDB gives each column of the staged row images
 * (`StagedBatch.kinds`): a column's type depends only on the kinds of value it carries, in the
 * order they first occur (lake-row-types.ts). Where `json_type` does not tell apart kinds the
 * type depends on (a number in a column typed by its values: is `1.0` whole, is `2^63` beyond
 * BIGINT; a string where the column's type sends numbers: a mask, or a float's NaN), DuckDB is
 * asked value by value for that column. A table whose shape changes within the batch is typed
 * row by row in JavaScript from its images (`RowTypes`). All give the columns observing every
 * row gives (lake-tx.test.ts).
 */
import type { SchemaHistoryEntry } from '../../capture/schema-history.ts';
import type { ConsumerRecord } from '../../consumers/define-consumer.ts';
import { LakeBatch } from './lake-batch.ts';
import type { LakeCatalog } from './lake-catalog.ts';
import { ColumnSet, NOT_STRING, type ShapeTypes } from './lake-columns.ts';
import { RowTypes } from './lake-row-types.ts';
import { type LakeScan, scanLake } from './lake-scan.ts';
import { lakeTypeOf, pgTypeText, type ShapeHistory } from './lake-shapes.ts';
import type { LakeStage, StagedBatch } from './lake-stage.ts';

/**
 * A value of each kind, as `ColumnSet.observe` decides by it: `json_type`'s, and where that does
 * not tell them apart, `LakeStage.valueKinds`' (lake-envelope.ts's `Kind`).
 */
const SAMPLE: Readonly<Record<string, unknown>> = {
  NULL: null,
  BOOLEAN: true,
  VARCHAR: '',
  OBJECT: {},
  ARRAY: [],
  // Only for a column typed by PostgreSQL type, where any number gives that type.
  BIGINT: 0,
  UBIGINT: 0,
  DOUBLE: 0,
  integer: 0,
  hugeInteger: 2 ** 63,
  fraction: 0.5,
  string: '',
  nonFinite: 'NaN',
};

/** `json_type`'s types of numbers. */
const NUMBER_TYPES: ReadonlySet<string> = new Set(['BIGINT', 'UBIGINT', 'DOUBLE']);

export class LakeTx {
  batch = new LakeBatch();
  /**
   * Run while the batch is staged and written (the sink scans its next batch meanwhile, once:
   * the target calls it at more than one step, as the next batch may be complete only later).
   */
  whileWriting: (() => void) | undefined;
  /** Starts staging a batch read ahead (set by the target; see `LakeStage.preload`). */
  preload: (batch: LakeBatch) => void = () => {};
  readonly columns = new Map<string, ColumnSet>();
  /** Per schema history entry met in this batch: the columns it types. */
  readonly #typed = new Map<SchemaHistoryEntry, ShapeTypes>();

  constructor(
    private readonly catalog: LakeCatalog,
    private readonly shapes?: ShapeHistory,
  ) {}

  /** Takes the batch's change events (see lake-scan.ts). */
  add(records: readonly ConsumerRecord<unknown>[]): void {
    this.adopt(scanLake(records));
  }

  /** As `add`, for the batch's records scanned already (once per transaction). */
  adopt(scan: LakeScan): void {
    if (this.batch.length > 0) throw new Error('lake: a transaction takes one batch');
    this.batch = scan.batch;
  }

  /** Widens the columns of the staged batch's tables by its row images. Throws `LakeSchemaError`. */
  async type(stage: LakeStage, staged: StagedBatch): Promise<void> {
    for (const { name: table } of staged.tables) {
      const cols = new ColumnSet(table, this.catalog.columns(table));
      this.columns.set(table, cols);
      const kinds = staged.kinds.get(table);
      if (!kinds || kinds.groups.length === 0) continue;
      if (await this.#byKinds(stage, staged, table, cols)) continue;
      let rows: RowTypes | undefined;
      let entry: SchemaHistoryEntry | undefined;
      for (const image of await stage.images(staged, table)) {
        const at = this.shapes?.at(table, image.lsn);
        if (!rows || at !== entry) {
          entry = at;
          rows = new RowTypes(cols, at ? this.#typesOf(at) : undefined);
        }
        rows.observe(image.after, 0);
      }
    }
  }

  /**
   * Types `table` from its kinds when one shape holds for the whole batch (see the module
   * comment); false, having changed nothing, when it does not. A kind of value `json_type` does
   * not tell apart where the column's type depends on it is asked of DuckDB value by value
   * (`valueKinds`). Kinds are observed in the order of the rows they first occur in.
   */
  async #byKinds(stage: LakeStage, staged: StagedBatch, table: string, cols: ColumnSet): Promise<boolean> {
    const kinds = staged.kinds.get(table)!;
    const entry = this.shapes?.at(table, kinds.groups[0]!.lsns[0]);
    for (const g of kinds.groups) {
      if (this.shapes?.at(table, g.lsns[0]) !== entry || this.shapes?.at(table, g.lsns[1]) !== entry)
        return false;
    }
    const shape = entry ? this.#typesOf(entry) : undefined;
    // Per column, its JSON types and the first row of each.
    const found = new Map<number, Map<string, number>>();
    for (const g of kinds.groups) {
      g.types.forEach((type, c) => {
        if (type === null || type === undefined) return;
        const types = found.get(c) ?? new Map<string, number>();
        found.set(c, types);
        if (!types.has(type)) types.set(type, g.first);
      });
    }
    const seen: { column: number; kind: string; first: number }[] = [];
    for (const [c, types] of found) {
      const name = kinds.columns[c]!;
      const typed = shape?.get(name);
      const current = cols.typeOf(name);
      const numbers = [...types.keys()].some((t) => NUMBER_TYPES.has(t));
      // Where the column's type depends on a number's value or a string's being NaN.
      const ask = [...types.keys()].filter((t) =>
        typed
          ? t === 'VARCHAR' && NOT_STRING.has(typed.type)
          : NUMBER_TYPES.has(t) ||
            (t === 'VARCHAR' && (numbers || current === 'FLOAT' || current === 'DOUBLE')),
      );
      for (const [type, first] of types) if (!ask.includes(type)) seen.push({ column: c, kind: type, first });
      if (ask.length > 0) {
        for (const v of await stage.valueKinds(staged, table, name, ask)) seen.push({ column: c, ...v });
      }
    }
    seen.sort((a, b) => a.first - b.first || a.column - b.column);
    for (const { column, kind } of seen) cols.observe({ [kinds.columns[column]!]: SAMPLE[kind] }, shape);
    return true;
  }

  /** The lake types of `entry`'s columns, by their PostgreSQL types (once per entry). */
  #typesOf(entry: SchemaHistoryEntry): ShapeTypes {
    const known = this.#typed.get(entry);
    if (known) return known;
    const types = new Map<string, ShapeTypes extends ReadonlyMap<string, infer T> ? T : never>();
    for (const column of entry.table.columns) {
      const type = lakeTypeOf(column);
      if (type === undefined) continue;
      const change = entry.changes?.typeChanged.find((c) => c.column === column.name);
      types.set(column.name, {
        type,
        describe: (from, to) => [change ? `${change.from} (${from})` : from, `${pgTypeText(column)} (${to})`],
      });
    }
    this.#typed.set(entry, types);
    return types;
  }
}
