/**
 * Records as row changes, whatever the capture's format: the Debezium envelope (`c`, `u`, `r`
 * upsert the `after` row, `d` deletes by the `before` row, `t` truncates the table) or the
 * unwrapped row (`__op`, `__deleted`). Snapshot records (`r`) are upserts, so a sink backfills
 * from the snapshot with no special case. Tombstones and logical messages are not row changes
 * (`undefined`).
 *
 * Values keep every digit: an integer beyond 2^53 (`int8`) becomes a `bigint`, read from the
 * record's JSON text (`JSON.parse` would round it). Other values are as in docs/types.md.
 */
import type { ConsumerRecord } from '../consumers/define-consumer.ts';
import { recordValueText } from '../consumers/worker/lazy-record.ts';
import { readEnvelope, readExactJson } from './exact-json-reader.ts';

export type Row = { [column: string]: unknown };

/**
 * `table` is `schema.table` (from the record's source); `key` the record key's columns (`{}` for
 * a table without key columns: the sink decides what that means).
 *
 * `lsn`: the change's position in the source's WAL (`null` when the record has none). A truncate
 * is one record in one partition while the table's rows spread over all of them, so a sink that
 * reads partitions independently may see a row's later change before the truncate, or an earlier
 * one after it. PostgreSQL orders them for us: TRUNCATE takes an exclusive lock, so every change
 * of the table before it has a lower LSN and every change after it a higher one. A sink keeps
 * each row's LSN, and on a truncate at L removes the rows below L and ignores changes below L
 * (`TruncateFence` in truncate-fence.ts).
 */
export type RowChange =
  | {
      readonly op: 'upsert';
      readonly table: string;
      readonly key: Row;
      readonly row: Row;
      readonly lsn: number | null;
    }
  | {
      readonly op: 'delete';
      readonly table: string;
      readonly key: Row;
      /** The old row; `null` when the record has none (then only `key` names the row). */
      readonly row: Row | null;
      readonly lsn: number | null;
    }
  | { readonly op: 'truncate'; readonly table: string; readonly lsn: number | null };

/** Debezium's placeholder for a TOASTed value the database did not send (kept as it was). */
export const UNAVAILABLE = '__debezium_unavailable_value';

const UNWRAP_FIELDS = ['__op', '__table', '__schema', '__lsn', '__source_ts_ms', '__deleted'];

/**
 * The change `record` carries, or `undefined` for a record that is not a row change. A record read
 * from the log is read from its JSON text by `readEnvelope`, which builds only the envelope's
 * parts used here.
 */
export function rowChange(record: ConsumerRecord<unknown>): RowChange | undefined {
  const text = recordValueText(record);
  if (typeof text !== 'string') return valueChange(record, text === undefined ? record.value : null);
  const parts = readEnvelope(text);
  if (parts.whole !== undefined) return valueChange(record, parts.whole);
  if (!parts.table) return undefined;
  return envelopeChange(
    record,
    parts.op,
    `${parts.schema}.${parts.table}`,
    parts.lsn,
    parts.before,
    parts.after,
  );
}

function keyOf(record: ConsumerRecord<unknown>): Row {
  return record.key === null ? {} : (readExactJson(record.key) as Row);
}

/** The change of an already parsed value (either format). */
function valueChange(record: ConsumerRecord<unknown>, value: unknown): RowChange | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const v = value as Row;
  if ('__op' in v) {
    const key = keyOf(record);
    const table = `${String(v.__schema)}.${String(v.__table)}`;
    const lsn = lsnOf(v.__lsn);
    const row: Row = {};
    for (const [k, c] of Object.entries(v)) if (!UNWRAP_FIELDS.includes(k)) row[k] = c;
    if (v.__deleted === 'true' || v.__op === 'd') return { op: 'delete', table, key, row, lsn };
    return { op: 'upsert', table, key, row, lsn };
  }
  const source = v.source as { schema?: string; table?: string; lsn?: unknown } | undefined;
  if (!source?.table) return undefined;
  return envelopeChange(record, v.op, `${source.schema}.${source.table}`, source.lsn, v.before, v.after);
}

function envelopeChange(
  record: ConsumerRecord<unknown>,
  op: unknown,
  table: string,
  sourceLsn: unknown,
  before: unknown,
  after: unknown,
): RowChange | undefined {
  const lsn = lsnOf(sourceLsn);
  switch (op) {
    case 'c':
    case 'u':
    case 'r':
      return after ? { op: 'upsert', table, key: keyOf(record), row: after as Row, lsn } : undefined;
    case 'd':
      return { op: 'delete', table, key: keyOf(record), row: (before as Row | null) ?? null, lsn };
    case 't':
      return { op: 'truncate', table, lsn };
    default:
      return undefined;
  }
}

/**
 * The columns a delete names its row by: the old row, else the key's columns, else `undefined`
 * (a record with neither cannot say which row went).
 */
export function deletedRow(change: RowChange & { op: 'delete' }): Row | undefined {
  if (change.row) return change.row;
  return Object.keys(change.key).length > 0 ? change.key : undefined;
}

/** An LSN as a number (one beyond 2^53, 8 PiB of WAL, parses as a `bigint`). */
function lsnOf(value: unknown): number | null {
  const n = typeof value === 'string' || typeof value === 'bigint' ? Number(value) : value;
  return typeof n === 'number' && Number.isFinite(n) ? n : null;
}

/** `schema.table` from a topic `<prefix>.<schema>.<table>` (for errors before any record). */
export function tableOfTopic(topic: string, topicPrefix: string): string {
  return topic.startsWith(`${topicPrefix}.`) ? topic.slice(topicPrefix.length + 1) : topic;
}

/** `orders` → `public.orders`; quotes dropped (topics and records carry the bare names). */
export function qualifiedTable(table: string): string {
  const parts = table.split('.').map((p) => p.replace(/^"(.*)"$/, '$1'));
  return parts.length === 1 ? `public.${parts[0]}` : parts.join('.');
}

const LONG_DIGITS = /\d{16}/;
/**
 * An integer of 16 digits or more: not the fraction or exponent of a number (`0.30000000000000004`
 * is a double, not an integer to keep).
 */
const LONG_INTEGER = /(?<![\d.eE+-])-?\d{16,}(?![.eE\d])/g;

/**
 * `JSON.parse`, except that integers outside the safe range become `bigint`s. The fast path (no
 * run of 16 digits anywhere, or only safe ones) is `JSON.parse` itself. The slow path quotes each
 * long integer outside a string with a NUL mark first: PostgreSQL text and JSON never hold NUL, so
 * no real string can look like one. Whether a run is inside a string is found by walking the
 * quotes before it with `indexOf` (a regex matching every string cost twice the parse).
 */
export function parseExactJson(text: string): unknown {
  if (!LONG_DIGITS.test(text)) return JSON.parse(text);
  const marked = markLongIntegers(text);
  if (marked === undefined) return JSON.parse(text);
  return unmark(JSON.parse(marked) as unknown);
}

function markLongIntegers(text: string): string | undefined {
  let out = '';
  let copied = 0;
  let scanned = 0;
  let inString = false;
  LONG_INTEGER.lastIndex = 0;
  for (let m = LONG_INTEGER.exec(text); m !== null; m = LONG_INTEGER.exec(text)) {
    const at = m.index;
    for (let q = text.indexOf('"', scanned); q !== -1 && q < at; q = text.indexOf('"', scanned)) {
      let backslashes = 0;
      while (text.charCodeAt(q - 1 - backslashes) === 92) backslashes++;
      if (backslashes % 2 === 0) inString = !inString;
      scanned = q + 1;
    }
    if (inString || Number.isSafeInteger(Number(m[0]))) continue;
    out += `${text.slice(copied, at)}"\\u0000${m[0]}"`;
    copied = at + m[0].length;
  }
  return copied === 0 ? undefined : out + text.slice(copied);
}

function unmark(value: unknown): unknown {
  if (typeof value === 'string') return value.charCodeAt(0) === 0 ? BigInt(value.slice(1)) : value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = unmark(value[i]);
  } else if (value !== null && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    for (const k in o) {
      const v = o[k];
      if (typeof v === 'string' ? v.charCodeAt(0) === 0 : typeof v === 'object' && v !== null)
        o[k] = unmark(v);
    }
  }
  return value;
}

/** JSON with `bigint`s written as numbers with all their digits (the inverse of `parseExactJson`). */
export function exactJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? `\u0000${v}` : v)).replace(
    /"\\u0000(-?\d+)"/g,
    '$1',
  );
}
