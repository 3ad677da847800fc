/**
 * Record values (docs/types.md) as target values, by the target column's type:
 * - `timestamp` from epoch microseconds, `date` from epoch days, `time` from microseconds since
 *   midnight: PostgreSQL's own text form (`2024-01-02 03:04:05.123456`, `0044-03-15 BC`), exact;
 * - `bytea` from base64; `boolean`; arrays as PostgreSQL array literals;
 * - everything else as its text (numeric strings, `bigint` digits, JSON text) or, for SQLite, the
 *   number itself. A value the type cannot take throws a `SinkRecordError` naming the column.
 */
import { SinkRecordError } from '../sink.ts';

/** How a target column's values are written (from its type). */
export type ValueKind = 'timestamp' | 'date' | 'time' | 'bytea' | 'bool' | 'array' | 'json' | 'plain';

/** The kind of a PostgreSQL type by its `pg_type.typname` and `typcategory`. */
export function postgresValueKind(typname: string, category: string): ValueKind {
  if (category === 'A') return 'array';
  switch (typname) {
    case 'timestamp':
      return 'timestamp';
    case 'date':
      return 'date';
    case 'time':
      return 'time';
    case 'bytea':
      return 'bytea';
    case 'bool':
      return 'bool';
    case 'json':
    case 'jsonb':
      return 'json';
    default:
      return 'plain';
  }
}

/** The kind of a `types` entry for SQLite (its logical type name). */
export function sqliteValueKind(type: string | undefined): ValueKind {
  const t = type?.toLowerCase().replace(/\(.*$/, '').trim();
  if (t === 'timestamp' || t === 'timestamp without time zone') return 'timestamp';
  if (t === 'date' || t === 'time' || t === 'bytea') return t;
  if (t === 'boolean' || t === 'bool') return 'bool';
  if (t === 'json' || t === 'jsonb') return 'json';
  return 'plain';
}

/** SQLite declared type for a `types` entry, chosen so that the affinity never rewrites a value. */
export function sqliteDeclaredType(type: string): string {
  const t = type.toLowerCase().replace(/\(.*$/, '').trim();
  if (['integer', 'int', 'int2', 'int4', 'int8', 'bigint', 'smallint', 'boolean', 'bool'].includes(t))
    return 'INTEGER';
  if (['real', 'float4', 'float8', 'double precision', 'double'].includes(t)) return 'REAL';
  if (t === 'blob' || t === 'bytea') return 'BLOB';
  return 'TEXT';
}

/**
 * Text for a PostgreSQL parameter (cast to the column's type in the statement). `delimiter`
 * separates the elements of an array column's literal: the element type's (`;` for `box[]`).
 */
export function toPostgresText(
  value: unknown,
  kind: ValueKind,
  column: string,
  delimiter = ',',
): string | null {
  if (value === null || value === undefined) return null;
  switch (kind) {
    case 'timestamp':
      if (typeof value === 'string') return value;
      return Number.isSafeInteger(value)
        ? safeMicrosToTimestamp(value as number)
        : microsToTimestamp(integer(value, column), column);
    case 'date':
      return typeof value === 'string' ? value : daysToDate(integer(value, column), column);
    case 'time':
      return typeof value === 'string' ? value : microsToTime(integer(value, column));
    case 'bytea':
      return typeof value === 'string' ? `\\x${Buffer.from(value, 'base64').toString('hex')}` : String(value);
    case 'array':
      return Array.isArray(value) ? arrayLiteral(value, delimiter) : String(value);
    case 'json':
      return typeof value === 'string' ? value : JSON.stringify(value, bigintJson);
    default:
      return typeof value === 'object' ? JSON.stringify(value, bigintJson) : String(value);
  }
}

/** A value for a better-sqlite3 parameter. */
export function toSqliteValue(value: unknown, kind: ValueKind, column: string): unknown {
  if (value === null || value === undefined) return null;
  switch (kind) {
    case 'timestamp':
    case 'date':
    case 'time':
      return toPostgresText(value, kind, column);
    case 'bytea':
      return typeof value === 'string' ? Buffer.from(value, 'base64') : value;
    default:
      if (typeof value === 'boolean') return value ? 1 : 0;
      if (typeof value === 'object') return JSON.stringify(value, bigintJson);
      return value;
  }
}

function bigintJson(_key: string, v: unknown): unknown {
  return typeof v === 'bigint' ? Number(v) : v;
}

function integer(value: unknown, column: string): bigint {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number' && Number.isInteger(value)) return BigInt(value);
  throw new SinkRecordError(
    `column ${column}: ${JSON.stringify(value)} is not an integer count of time units`,
  );
}

const TS_INFINITY = 9223372036854775807n;
const DATE_INFINITY = 2146033979n;
const DATE_MINUS_INFINITY = -2147472691n;
const MAX_DATE_MS = 8_640_000_000_000_000n;

/** Epoch microseconds → `YYYY-MM-DD HH:MM:SS[.ffffff]` (PostgreSQL's output, `BC` for year ≤ 0). */
export function microsToTimestamp(us: bigint, column: string): string {
  if (us === TS_INFINITY) return 'infinity';
  if (us === -TS_INFINITY - 1n) return '-infinity';
  let ms = us / 1000n;
  let rest = us % 1000n;
  if (rest < 0n) {
    rest += 1000n;
    ms -= 1n;
  }
  if (ms > MAX_DATE_MS || ms < -MAX_DATE_MS) {
    throw new SinkRecordError(`column ${column}: timestamp ${us} µs is beyond the years the sink can write`);
  }
  const d = new Date(Number(ms));
  const micros = d.getUTCMilliseconds() * 1000 + Number(rest);
  return `${ymd(d)} ${hms(d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds(), micros)}${bc(d)}`;
}

const MS_PER_DAY = 86_400_000;
/** The last day written by `safeMicrosToTimestamp`: rows of a batch mostly share their day. */
let lastDay = Number.NaN;
let lastDate = '';
let lastEra = '';

/**
 * `microsToTimestamp` of a safe integer (every such instant is within the years it writes), in
 * exact integer steps of float arithmetic, with one `Date` per day.
 */
function safeMicrosToTimestamp(us: number): string {
  let rest = us % 1000;
  if (rest < 0) rest += 1000;
  const ms = (us - rest) / 1000;
  const day = Math.floor(ms / MS_PER_DAY);
  if (day !== lastDay) {
    const d = new Date(day * MS_PER_DAY);
    lastDay = day;
    lastDate = ymd(d);
    lastEra = bc(d);
  }
  const inDay = ms - day * MS_PER_DAY;
  const secs = Math.floor(inDay / 1000);
  const micros = (inDay - secs * 1000) * 1000 + rest;
  return `${lastDate} ${hms(Math.floor(secs / 3600), Math.floor(secs / 60) % 60, secs % 60, micros)}${lastEra}`;
}

/** Epoch days → `YYYY-MM-DD` (`BC` for year ≤ 0; Debezium's infinity days → `infinity`). */
export function daysToDate(days: bigint, column: string): string {
  if (days === DATE_INFINITY) return 'infinity';
  if (days === DATE_MINUS_INFINITY) return '-infinity';
  const ms = days * 86_400_000n;
  if (ms > MAX_DATE_MS || ms < -MAX_DATE_MS) {
    throw new SinkRecordError(`column ${column}: date ${days} days is beyond the years the sink can write`);
  }
  const d = new Date(Number(ms));
  return `${ymd(d)}${bc(d)}`;
}

/** Microseconds since midnight → `HH:MM:SS[.ffffff]` (`24:00:00` allowed). */
export function microsToTime(us: bigint): string {
  const total = Number(us);
  const secs = Math.floor(total / 1_000_000);
  return hms(Math.floor(secs / 3600), Math.floor(secs / 60) % 60, secs % 60, total % 1_000_000);
}

function ymd(d: Date): string {
  const y = d.getUTCFullYear();
  const year = y <= 0 ? 1 - y : y;
  return `${String(year).padStart(4, '0')}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
}

function bc(d: Date): string {
  return d.getUTCFullYear() <= 0 ? ' BC' : '';
}

function hms(h: number, m: number, s: number, micros: number): string {
  return `${pad(h)}:${pad(m)}:${pad(s)}${fraction(micros)}`;
}

/** `.ffffff` without its trailing zeros; empty for 0. */
function fraction(micros: number): string {
  if (micros === 0) return '';
  let width = 6;
  let digits = micros;
  while (digits % 10 === 0) {
    digits /= 10;
    width--;
  }
  return `.${String(digits).padStart(width, '0')}`;
}

function pad(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/**
 * A PostgreSQL array literal: every element quoted (or NULL), nested arrays as sub-arrays, the
 * elements separated by `delimiter` (the element type's `typdelim`: `;` for `box`, else `,`).
 */
export function arrayLiteral(values: readonly unknown[], delimiter = ','): string {
  const parts = values.map((v) => {
    if (v === null || v === undefined) return 'NULL';
    if (Array.isArray(v)) return arrayLiteral(v, delimiter);
    const text = typeof v === 'object' ? JSON.stringify(v, bigintJson) : String(v);
    return `"${text.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
  });
  return `{${parts.join(delimiter)}}`;
}

/** The PostgreSQL type of a new column from its first value (numbers exact as `numeric`). */
export function inferPostgresType(value: unknown, isKey: boolean): string {
  if (typeof value === 'bigint') return isKey ? 'bigint' : 'numeric';
  if (typeof value === 'number') return isKey && Number.isInteger(value) ? 'bigint' : 'numeric';
  if (typeof value === 'boolean') return 'boolean';
  if (value !== null && typeof value === 'object') return 'jsonb';
  return 'text';
}

/** The SQLite declared type of a new column from its first value. */
export function inferSqliteType(value: unknown): string {
  if (typeof value === 'bigint' || typeof value === 'boolean') return 'INTEGER';
  if (typeof value === 'number') return Number.isInteger(value) ? 'INTEGER' : 'REAL';
  if (value === null || value === undefined) return '';
  return 'TEXT';
}
