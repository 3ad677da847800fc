/**
 * Rows as JSON objects, built by concatenation from per-relation parts: field names are escaped
 * once per Relation and each column keeps its converter, so encoding a row is one pass of string
 * appends. Cached per Relation object: a schema change brings a new Relation, hence a new plan.
 */
import type { ChangeEvent, Relation, Tuple } from '../core/change-event.ts';
import { TributaryError } from '../core/errors.ts';
import { type JsonConverter, jsonConverter, UNAVAILABLE_VALUE_JSON } from './json-values.ts';

export interface RowPlan {
  readonly relation: Relation;
  /** `<topicPrefix>.<schema>.<table>`, names as they are. */
  readonly topic: string;
  /** `"schema"`/`"table"` as JSON strings. */
  readonly schemaJson: string;
  readonly tableJson: string;
  /**
   * Writes the columns as the inside of a JSON object (`"id":1,"name":"x"`, no braces) so callers
   * can add fields. Positions beyond the tuple's length count as SQL NULL.
   */
  fields(tuple: Tuple): string;
  /** The key object (`{"id":1}`) from the key columns, or `null` when the table has none. */
  key(tuple: Tuple): string | null;
}

/** An event whose shape contradicts its op (e.g. an insert without a new row). */
export class EncodeError extends TributaryError {
  constructor(message: string) {
    super('ENCODE_FAILED', message);
  }
}

/** The row an insert, read or update must carry. */
export function requireAfter(event: ChangeEvent): Tuple {
  if (event.after === null) {
    throw new EncodeError(
      `op ${event.op} on ${event.relation.schema}.${event.relation.table} has no new row`,
    );
  }
  return event.after;
}

function value(convert: JsonConverter, text: string | null | undefined): string {
  if (text === null) return 'null';
  if (text === undefined) return UNAVAILABLE_VALUE_JSON;
  return convert(text);
}

export function buildRowPlan(relation: Relation, topicPrefix: string): RowPlan {
  const converters = relation.columns.map((column) => jsonConverter(column.type));
  const prefixes = relation.columns.map(
    (column, i) => `${i === 0 ? '' : ','}${JSON.stringify(column.name)}:`,
  );
  const keyIndexes = [...relation.keyIndexes];
  const keyPrefixes = keyIndexes.map((index, i) => {
    const column = relation.columns[index];
    if (column === undefined)
      throw new RangeError(`key index ${index} outside the columns of ${relation.table}`);
    return `${i === 0 ? '{' : ','}${JSON.stringify(column.name)}:`;
  });
  const count = converters.length;
  return {
    relation,
    topic: topicFor(topicPrefix, relation.schema, relation.table),
    schemaJson: JSON.stringify(relation.schema),
    tableJson: JSON.stringify(relation.table),
    fields(tuple) {
      let out = '';
      const present = Math.min(count, tuple.length);
      // Both arrays have `count` entries; the casts spare a check per value on the hot path.
      for (let i = 0; i < present; i++) {
        out += (prefixes[i] as string) + value(converters[i] as JsonConverter, tuple[i]);
      }
      for (let i = present; i < count; i++) out += `${prefixes[i]}null`;
      return out;
    },
    key(tuple) {
      if (keyIndexes.length === 0) return null;
      let out = '';
      for (let i = 0; i < keyIndexes.length; i++) {
        const index = keyIndexes[i] as number;
        const text = index < tuple.length ? tuple[index] : null;
        out += (keyPrefixes[i] as string) + value(converters[index] as JsonConverter, text);
      }
      return `${out}}`;
    },
  };
}

/** The record header naming the columns whose unchanged TOASTed value the database did not send. */
export const UNCHANGED_TOAST_HEADER = 'tributary.unchanged_toast';

/**
 * The `tributary.unchanged_toast` header value for a tuple: the names of its unsent (unchanged
 * TOAST) columns as JSON strings, comma-separated (`"body","notes"`; `JSON.parse` of it wrapped in
 * `[...]` gives the names), or `null` when every value was sent.
 */
export function unchangedToastColumns(relation: Relation, tuple: Tuple | null): string | null {
  if (tuple === null) return null;
  let names: string | null = null;
  for (let i = 0; i < tuple.length; i++) {
    if (tuple[i] !== undefined) continue;
    const name = JSON.stringify(relation.columns[i]?.name ?? String(i));
    names = names === null ? name : `${names},${name}`;
  }
  return names;
}

/**
 * The record header naming the columns whose unchanged TOASTed value was read from the table
 * after the change (`toast.fetch`): their value is the one at fetch time. Same format as
 * `tributary.unchanged_toast`.
 */
export const FETCHED_TOAST_HEADER = 'tributary.fetched_toast';

/**
 * Headers for a record carrying `tuple`: empty, the unchanged TOAST columns still unsent, and
 * those whose value was fetched (`fetched`, names; those a filter removed are left out).
 */
export function rowHeaders(
  relation: Relation,
  tuple: Tuple | null,
  fetched?: readonly string[],
): Readonly<{ [name: string]: string }> {
  const names = unchangedToastColumns(relation, tuple);
  if (fetched === undefined) return names === null ? NO_ROW_HEADERS : { [UNCHANGED_TOAST_HEADER]: names };
  const headers: { [name: string]: string } = names === null ? {} : { [UNCHANGED_TOAST_HEADER]: names };
  const kept = fetched.filter((name) => relation.columns.some((c) => c.name === name));
  if (kept.length > 0) headers[FETCHED_TOAST_HEADER] = kept.map((name) => JSON.stringify(name)).join(',');
  return headers;
}

const NO_ROW_HEADERS: Readonly<{ [name: string]: string }> = Object.freeze({});

/**
 * Whether an update moved the row to another key: the old image (sent with the key columns when
 * the key changed, or whole under REPLICA IDENTITY FULL) differs from the new row in a key column.
 * A keyless table never changes key. An unsent (unchanged TOAST) new value counts as unchanged.
 */
export function keyChanged(event: ChangeEvent): boolean {
  const before = event.before;
  const after = event.after;
  if (event.op !== 'u' || before === null || after === null) return false;
  for (const index of event.relation.keyIndexes) {
    const next = after[index];
    const previous = before[index];
    if (next !== undefined && previous !== undefined && next !== previous) return true;
  }
  return false;
}

export function topicFor(topicPrefix: string, schema: string, table: string): string {
  return `${topicPrefix}.${schema}.${table}`;
}

/** Plans keyed by Relation object, dropped with it. */
export class RowPlanCache {
  readonly #plans = new WeakMap<Relation, RowPlan>();
  readonly #topicPrefix: string;

  constructor(topicPrefix: string) {
    this.#topicPrefix = topicPrefix;
  }

  get(relation: Relation): RowPlan {
    let plan = this.#plans.get(relation);
    if (plan === undefined) {
      plan = buildRowPlan(relation, this.#topicPrefix);
      this.#plans.set(relation, plan);
    }
    return plan;
  }
}
