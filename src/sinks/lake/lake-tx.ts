/**
 * One batch being applied to the lake: its staged changes, and its tables' columns widened by
 * their row images (lake-columns.ts), decided before any file is written.
 *
 * The typing reads the JSON types DuckDB gives each column of the staged row images (`kinds`):
 * a column's type depends only on the kinds of value it carries, in the order they first occur
 * (lake-row-types.ts), and `json_type` tells those kinds apart wherever the decision needs it.
 * Where it does not, a table is typed row by row in JavaScript from its images (`RowTypes`): a
 * column typed by its values that holds numbers (`json_type` does not say whether 2^63 or 1.0 is
 * whole), a string where the column's type expects a number (a mask, or a float's NaN), and a
 * table whose shape changes within the batch. Both give the same columns.
 */
import type { SchemaHistoryEntry } from '../../capture/schema-history.ts';
import type { ConsumerRecord } from '../../consumers/define-consumer.ts';
import { LakeBatch } from './lake-batch.ts';
import type { LakeCatalog } from './lake-catalog.ts';
import { ColumnSet, NOT_STRING, type ShapeTypes } from './lake-columns.ts';
import { RowTypes } from './lake-row-types.ts';
import { type LakeScan, scanLake } from './lake-scan.ts';
import { lakeTypeOf, pgTypeText, type ShapeHistory } from './lake-shapes.ts';
import type { KindsOfTable, LakeStage, StagedBatch } from './lake-stage.ts';

/** A value of each `json_type` kind, as `ColumnSet.observe` decides by it (see `fastPath`). */
const SAMPLE: Readonly<Record<string, unknown>> = {
  NULL: null,
  BOOLEAN: true,
  BIGINT: -1,
  VARCHAR: '',
  OBJECT: {},
  ARRAY: [],
  UBIGINT: 0,
  DOUBLE: 0.5,
};

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
      if (this.#fastPath(table, cols, kinds)) continue;
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
   * Types `table` from its kinds when they decide it (see the module comment); false, having
   * changed nothing, when they do not.
   */
  #fastPath(table: string, cols: ColumnSet, kinds: KindsOfTable): boolean {
    const entry = this.shapes?.at(table, kinds.groups[0]!.lsns[0]);
    for (const g of kinds.groups) {
      if (this.shapes?.at(table, g.lsns[0]) !== entry || this.shapes?.at(table, g.lsns[1]) !== entry)
        return false;
    }
    const shape = entry ? this.#typesOf(entry) : undefined;
    const seen = new Set<string>();
    const order: [string, string][] = [];
    for (const g of kinds.groups) {
      for (let c = 0; c < kinds.columns.length; c++) {
        const kind = g.types[c];
        if (kind === null || kind === undefined) continue;
        const name = kinds.columns[c]!;
        const key = `${kind}\u0000${name}`;
        if (seen.has(key)) continue;
        seen.add(key);
        const typed = shape?.get(name);
        if (typed) {
          if (kind === 'VARCHAR' && NOT_STRING.has(typed.type)) return false;
        } else if (kind === 'UBIGINT' || kind === 'DOUBLE') {
          return false;
        } else if (kind === 'VARCHAR' && (cols.typeOf(name) === 'FLOAT' || cols.typeOf(name) === 'DOUBLE')) {
          return false;
        }
        order.push([name, kind]);
      }
    }
    for (const [name, kind] of order) cols.observe({ [name]: SAMPLE[kind] }, shape);
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
