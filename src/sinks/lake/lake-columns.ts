/**
 * Column types of lake tables. Where the capture's schema history knows the column (see
 * lake-shapes.ts), its PostgreSQL type decides (`lakeTypeOf`); otherwise (a type the map does not
 * know, a log the sink cannot read) the type is taken from the record's values:
 * - JSON numbers that are integers → BIGINT; other numbers → DOUBLE;
 * - strings → VARCHAR; booleans → BOOLEAN; arrays and objects → JSON (their JSON text);
 * - only nulls seen so far → NULL type, replaced by the first real type seen.
 *
 * Values are read by DuckDB from the record's own JSON text, never through a JavaScript number,
 * so an int8 beyond 2^53 keeps every digit.
 *
 * Evolution: a new column is appended (old files read it as NULL); a column no longer sent stays
 * (NULL in new rows). Widening keeps going: int2/int4 → int8 (all BIGINT), float4 → float8 (FLOAT → DOUBLE),
 * varchar(n) → text (VARCHAR), numeric(p,s) to a numeric that holds every old value. Any other
 * change (int → text, numeric → double...) is incompatible: `LakeSchemaError` names the column
 * and both types, nothing of the batch is written and the sink stops (consumer state `failed`).
 * Value-typed columns keep the one lenient widening BIGINT → DOUBLE (a float column whose first
 * values were whole). A rename reads as a new column plus a column that is no longer sent.
 */
import { ConsumerStopError } from '../../core/errors.ts';
import type { Columns } from './lake-catalog.ts';

/** NULL, BIGINT, FLOAT, DOUBLE, VARCHAR, BOOLEAN, JSON, DATE, TIMESTAMP, TIMESTAMPTZ or DECIMAL(p,s). */
export type LakeType = string;

/** An incompatible change of a column's type: the sink stops rather than convert. */
export class LakeSchemaError extends ConsumerStopError {
  constructor(table: string, column: string, from: string, to: string) {
    super(
      'LAKE_SCHEMA_INCOMPATIBLE',
      `lake table ${table}: column ${column} changed type from ${from} to ${to}, which the lake cannot widen`,
      {
        retryable: false,
        hint: `old files hold ${from}; add a new column in the source instead (the lake keeps both), or start a new lake path`,
      },
    );
  }
}

/** Lake types of a table's columns from its PostgreSQL shape, with how to name a change's types. */
export type ShapeTypes = ReadonlyMap<
  string,
  { readonly type: LakeType; readonly describe: (from: LakeType, to: LakeType) => [string, string] }
>;

/** Types whose values arrive as JSON numbers or booleans: a string there is a masked value. */
export const NOT_STRING: ReadonlySet<string> = new Set([
  'BIGINT',
  'FLOAT',
  'DOUBLE',
  'BOOLEAN',
  'DATE',
  'TIMESTAMP',
]);
/** How floats' NaN and infinities arrive (strings in a number column, not masks). */
const NON_FINITE = new Set(['NaN', 'Infinity', '-Infinity']);

/**
 * Whether `value` is how a column of lake type `current` arrives (a DATE as epoch days, a
 * TIMESTAMPTZ or DECIMAL as text, a float's NaN as a string): a column typed by the schema history
 * stays so when a later batch has no shape for it (the history's records gone with log retention).
 */
function fitsRaw(current: LakeType | undefined, value: unknown): boolean {
  if (current === undefined || value === null) return false;
  switch (current) {
    case 'DATE':
    case 'TIMESTAMP':
      return typeof value === 'number' && Number.isInteger(value);
    case 'FLOAT':
    case 'DOUBLE':
      return typeof value === 'number' || (typeof value === 'string' && NON_FINITE.has(value));
    case 'TIMESTAMPTZ':
      return typeof value === 'string';
    default:
      return typeof value === 'string' && decimalOf(current) !== undefined;
  }
}

/** The lake table name of a captured table: `orders`, or `<schema>_<table>` outside public. */
export function lakeTableName(schema: string, table: string): string {
  const name = schema === 'public' ? table : `${schema}_${table}`;
  return name.toLowerCase().replace(/[^a-z0-9_]/g, '_');
}

export function typeOfValue(value: unknown): LakeType {
  switch (typeof value) {
    case 'number':
      // Whole numbers beyond int64 (a float column's 1e+100) are DOUBLE, never a failed cast.
      return Number.isInteger(value) && Math.abs(value as number) < 2 ** 63 ? 'BIGINT' : 'DOUBLE';
    case 'string':
      return 'VARCHAR';
    case 'boolean':
      return 'BOOLEAN';
    case 'object':
      return value === null ? 'NULL' : 'JSON';
    default:
      return 'VARCHAR';
  }
}

/** The type that holds both, or undefined when none does without loss. */
export function widen(a: LakeType, b: LakeType, lenient = true): LakeType | undefined {
  if (a === b || b === 'NULL') return a;
  if (a === 'NULL') return b;
  if (lenient && ((a === 'BIGINT' && b === 'DOUBLE') || (a === 'DOUBLE' && b === 'BIGINT'))) return 'DOUBLE';
  if (a === 'FLOAT' && b === 'DOUBLE') return 'DOUBLE';
  const da = decimalOf(a);
  const db = decimalOf(b);
  if (da && db) {
    const scale = Math.max(da.scale, db.scale);
    const precision = Math.max(da.precision - da.scale, db.precision - db.scale) + scale;
    return precision <= 38 ? `DECIMAL(${precision},${scale})` : undefined;
  }
  return undefined;
}

export function decimalOf(type: LakeType): { precision: number; scale: number } | undefined {
  const m = /^DECIMAL\((\d+),(\d+)\)$/.exec(type);
  return m ? { precision: Number(m[1]), scale: Number(m[2]) } : undefined;
}

/**
 * Tracks one table's columns while a batch's rows are seen; `changed` says whether they differ
 * from the catalog's version.
 */
export class ColumnSet {
  readonly #types = new Map<string, LakeType>();
  changed = false;

  constructor(
    readonly table: string,
    known: Columns | undefined,
  ) {
    for (const [name, type] of known ?? []) this.#types.set(name, type as LakeType);
  }

  /**
   * Widens the set with one row image: a column of `shape` takes its PostgreSQL type (but a masked
   * one, a string where the type sends numbers or booleans, is VARCHAR), another its value's type.
   * Throws `LakeSchemaError` on an incompatible change.
   */
  observe(row: Record<string, unknown>, shape?: ShapeTypes): void {
    for (const name in row) {
      const value = row[name];
      const typed = shape?.get(name);
      if (typed !== undefined) {
        if (value === null) {
          if (!this.#types.has(name)) this.observeType(name, typed.type, typed.describe);
        } else if (typeof value === 'string' && NOT_STRING.has(typed.type) && !NON_FINITE.has(value)) {
          this.observeType(name, 'VARCHAR', typed.describe);
        } else {
          this.observeType(name, typed.type, typed.describe);
        }
        continue;
      }
      if (fitsRaw(this.#types.get(name), value)) continue;
      const type = typeOfValue(value);
      const current = this.#types.get(name);
      if (current === undefined) {
        this.#types.set(name, type);
        this.changed = true;
      } else if (current !== type && type !== 'NULL') {
        const wider = widen(current, type);
        if (wider === undefined) throw new LakeSchemaError(this.table, name, current, type);
        if (wider !== current) {
          this.#types.set(name, wider);
          this.changed = true;
        }
      }
    }
  }

  /**
   * Sets column `name` to `type` (from the schema history), widening strictly; throws
   * `LakeSchemaError` (with `describe`'s names of the types, when given) when it cannot.
   */
  observeType(
    name: string,
    type: LakeType,
    describe?: (from: LakeType, to: LakeType) => [string, string],
  ): void {
    const current = this.#types.get(name);
    if (current === type) return;
    const wider = current === undefined ? type : widen(current, type, false);
    if (wider === undefined) {
      const [from, to] = describe?.(current!, type) ?? [current!, type];
      throw new LakeSchemaError(this.table, name, from, to);
    }
    if (wider !== current) {
      this.#types.set(name, wider);
      this.changed = true;
    }
  }

  has(name: string): boolean {
    return this.#types.has(name);
  }

  /** The column's type so far, or undefined. */
  typeOf(name: string): LakeType | undefined {
    return this.#types.get(name);
  }

  columns(): Columns {
    return [...this.#types];
  }
}

/** A DuckDB identifier, quoted. */
export function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A SQL string literal. */
export function literal(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

/** The type a column's JSON value is read as before `convert` (dates and times as their numbers or text). */
export function rawType(type: LakeType): string {
  if (type === 'DATE' || type === 'TIMESTAMP') return 'BIGINT';
  if (type === 'TIMESTAMPTZ' || type === 'NULL' || decimalOf(type)) return 'VARCHAR';
  return type;
}

/**
 * The stored value of a column of `type` from `raw`, its value read as `rawType(type)`: epoch
 * days → DATE, epoch microseconds → TIMESTAMP, ISO text → TIMESTAMPTZ (PostgreSQL's infinities
 * kept), decimal text → DECIMAL. A value DuckDB cannot hold (a BC timestamptz, a numeric NaN in
 * DECIMAL) is NULL, flagged `unconvertible` in silver's `_dq_flags`.
 */
export function convert(raw: string, type: LakeType): string {
  switch (type) {
    case 'DATE':
      return `CASE WHEN ${raw} >= 2146033979 THEN 'infinity'::DATE WHEN ${raw} <= -2147472691 THEN '-infinity'::DATE
        ELSE DATE '1970-01-01' + ${raw}::INTEGER END`;
    case 'TIMESTAMP':
      return `CASE WHEN ${raw} >= 9223372036854775807 THEN 'infinity'::TIMESTAMP
        WHEN ${raw} <= -9223372036854775807 THEN '-infinity'::TIMESTAMP ELSE make_timestamp(${raw}) END`;
    case 'TIMESTAMPTZ':
      return `TRY_CAST(${raw} AS TIMESTAMPTZ)`;
    case 'JSON':
      return `nullif(${raw}::VARCHAR, 'null')`;
    case 'NULL':
      return 'NULL::VARCHAR';
    default:
      return decimalOf(type) ? `TRY_CAST(${raw} AS ${type})` : `${raw}::${type}`;
  }
}

/** Whether a value of `type` may fail to convert (then NULL, flagged). */
export function mayFailConvert(type: LakeType): boolean {
  return type === 'TIMESTAMPTZ' || decimalOf(type) !== undefined;
}

/** The DuckDB expression reading column `name` of type `type` from the JSON text `source`. */
export function extract(source: string, name: string, type: string): string {
  const path = literal(`$.${JSON.stringify(name)}`);
  if (type === 'JSON') return `nullif(json_extract(${source}, ${path})::VARCHAR, 'null')`;
  if (type === 'NULL') return 'NULL::VARCHAR';
  return convert(`json_extract_string(${source}, ${path})::${rawType(type)}`, type);
}

/** The type a column is stored as in Parquet (JSON as its text, never-typed as VARCHAR). */
export function storedType(type: string): string {
  return type === 'JSON' || type === 'NULL' ? 'VARCHAR' : type;
}
