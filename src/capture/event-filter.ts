/**
 * Filtering and privacy: drops tables and operations, removes columns, masks or hashes values,
 * between the decoded change event and the encoder. The encoders need no change: a rewritten
 * event carries a derived Relation (kept columns only; masked ones typed `text`) and tuples
 * aligned with it. Derived Relations are cached per Relation object, as the encoders' plans are,
 * so a schema change (a new Relation) gets a new derivation.
 */
import { createHash } from 'node:crypto';
import type { ChangeEvent, Column, ColumnType, Relation, Tuple, TupleValue } from '../core/change-event.ts';
import { ConfigError } from '../core/errors.ts';
import type { TableColumns } from '../source/postgres/filter-catalog.ts';
import {
  formatTableName,
  parseTableName,
  splitQualifiedName,
  type TableName,
} from '../source/postgres/table-name.ts';

/** Rewrites or drops an event before it is encoded. Pure: the same event gives the same result. */
export interface EventTransform {
  /** The event to encode (possibly the same object), or `null` to write nothing for it. */
  apply(event: ChangeEvent): ChangeEvent | null;
  /** Whether a logical message with this prefix is written; absent: all are. */
  keepMessage?(prefix: string): boolean;
  /** Whether anything of this table is written (its schema history too); absent: all are. */
  keepTable?(table: TableName): boolean;
}

export interface FilterSettings {
  readonly source: { readonly tables: readonly string[] };
  readonly filter: {
    readonly excludeTables: readonly string[];
    readonly includeColumns: readonly string[];
    readonly excludeColumns: readonly string[];
    readonly skipOperations: readonly ('c' | 'u' | 'd' | 't')[];
    readonly excludeMessagePrefixes?: readonly string[];
  };
  readonly mask: {
    readonly columns: readonly string[];
    readonly with: string;
    readonly hashColumns: readonly string[];
    readonly hashSalt?: string | undefined;
  };
}

export interface ColumnName extends TableName {
  readonly column: string;
}

/** `schema.table.column`, or `table.column` in schema `public`; quoting as in `parseTableName`. */
export function parseColumnName(text: string, setting = 'column'): ColumnName {
  const invalid = (why: string) =>
    new ConfigError(`invalid column name ${JSON.stringify(text)} in ${setting}: ${why}`, {
      hint: 'write schema.table.column, e.g. public.customers.email, or "Shop"."Order"."Total" for mixed case',
    });
  const parts = splitQualifiedName(text, invalid);
  if (parts.length === 2) return { schema: 'public', table: parts[0]!, column: parts[1]! };
  if (parts.length === 3) return { schema: parts[0]!, table: parts[1]!, column: parts[2]! };
  throw invalid('expected schema.table.column');
}

export function formatColumnName(name: ColumnName): string {
  const column = /^[a-z_][a-z0-9_$]*$/.test(name.column)
    ? name.column
    : `"${name.column.replaceAll('"', '""')}"`;
  return `${formatTableName(name)}.${column}`;
}

const TEXT: ColumnType = { kind: 'base', oid: 25, name: 'text' };

/** `mask`: the fixed string; `hash`: salted SHA-256. */
type ValueRule = 'mask' | 'hash';

/** The rules of one table; columns by name. */
interface TableRules {
  /** When set, the only columns kept. */
  include: Set<string> | undefined;
  readonly exclude: Set<string>;
  readonly values: Map<string, ValueRule>;
}

/** How a Relation is rewritten: `null` drops its events, `undefined` leaves them unchanged. */
interface RelationPlan {
  readonly relation: Relation;
  /** Source positions of the kept columns, in order. */
  readonly keep: readonly number[];
  /** Per kept column: how its value is replaced, or undefined to copy it. */
  readonly rewrite: readonly (((text: string) => string) | undefined)[];
}

const tableKey = (name: TableName) => `${name.schema}\0${name.table}`;

export class EventFilter implements EventTransform {
  readonly #skip: ReadonlySet<string>;
  readonly #excluded = new Set<string>();
  readonly #tables = new Map<string, TableRules>();
  readonly #named: { readonly name: ColumnName; readonly setting: string }[] = [];
  readonly #excludedTables: TableName[] = [];
  readonly #plans = new WeakMap<Relation, RelationPlan | null | undefined>();
  readonly #maskWith: string;
  readonly #salt: string;
  readonly #messagePrefixes: ReadonlySet<string>;
  readonly #messagePrefixStarts: readonly string[];

  /**
   * Checks the settings against each other (no database needed) and builds the filter;
   * `undefined` when nothing is filtered, so the capture pays nothing.
   */
  static fromConfig(settings: FilterSettings): EventFilter | undefined {
    const { filter, mask } = settings;
    const lists = [
      filter.excludeTables,
      filter.includeColumns,
      filter.excludeColumns,
      filter.skipOperations,
      filter.excludeMessagePrefixes ?? [],
      mask.columns,
      mask.hashColumns,
    ];
    if (lists.every((list) => list.length === 0)) return undefined;
    return new EventFilter(settings);
  }

  private constructor(settings: FilterSettings) {
    const { filter, mask } = settings;
    this.#skip = new Set(filter.skipOperations);
    const prefixes = filter.excludeMessagePrefixes ?? [];
    this.#messagePrefixes = new Set(prefixes.filter((p) => !p.endsWith('*')));
    this.#messagePrefixStarts = prefixes.filter((p) => p.endsWith('*')).map((p) => p.slice(0, -1));
    this.#maskWith = mask.with;
    if (mask.hashColumns.length > 0 && !mask.hashSalt) {
      throw new ConfigError('mask.hashColumns is set but no salt is given', {
        hint: 'set the environment variable TRIBUTARY_MASK_SALT (or mask.hashSalt in the config file) to a long random secret',
      });
    }
    this.#salt = mask.hashSalt ?? '';

    const included = new Set(settings.source.tables.map((t) => tableKey(parseTableName(t))));
    for (const text of filter.excludeTables) {
      const name = parseTableName(text);
      if (included.has(tableKey(name))) {
        throw new ConfigError(
          `table ${formatTableName(name)} is both in source.tables and in filter.excludeTables`,
          {
            hint: 'source.tables is the list of captured tables: remove it from one of the two',
          },
        );
      }
      this.#excluded.add(tableKey(name));
      this.#excludedTables.push(name);
    }

    const rules = (name: ColumnName, setting: string): TableRules => {
      if (this.#excluded.has(tableKey(name))) {
        throw new ConfigError(
          `${setting} names ${formatColumnName(name)}, but filter.excludeTables leaves its table out`,
        );
      }
      this.#named.push({ name, setting });
      let table = this.#tables.get(tableKey(name));
      if (!table) {
        table = { include: undefined, exclude: new Set(), values: new Map() };
        this.#tables.set(tableKey(name), table);
      }
      return table;
    };
    for (const text of filter.includeColumns) {
      const name = parseColumnName(text, 'filter.includeColumns');
      const table = rules(name, 'filter.includeColumns');
      table.include ??= new Set();
      table.include.add(name.column);
    }
    for (const text of filter.excludeColumns) {
      const name = parseColumnName(text, 'filter.excludeColumns');
      rules(name, 'filter.excludeColumns').exclude.add(name.column);
    }
    const masked: [string, string][] = [
      ...mask.columns.map((c): [string, string] => [c, 'mask.columns']),
      ...mask.hashColumns.map((c): [string, string] => [c, 'mask.hashColumns']),
    ];
    for (const [text, setting] of masked) {
      const name = parseColumnName(text, setting);
      const table = rules(name, setting);
      if (table.values.has(name.column)) {
        throw new ConfigError(`column ${formatColumnName(name)} is named twice in mask.columns/hashColumns`, {
          hint: 'mask a column with the fixed string or with the hash, not both',
        });
      }
      table.values.set(name.column, setting === 'mask.columns' ? 'mask' : 'hash');
    }
    for (const [key, table] of this.#tables) {
      for (const column of table.values.keys()) {
        if (table.exclude.has(column) || (table.include && !table.include.has(column))) {
          const [schema, name] = key.split('\0') as [string, string];
          throw new ConfigError(
            `column ${formatColumnName({ schema, table: name, column })} is both masked and excluded`,
            { hint: 'an excluded column is not written at all: remove it from the mask settings' },
          );
        }
      }
    }
  }

  /** Every table the settings name, for the check against the catalog. */
  tables(): TableName[] {
    const seen = new Map<string, TableName>();
    for (const t of this.#excludedTables) seen.set(tableKey(t), t);
    for (const { name } of this.#named) seen.set(tableKey(name), { schema: name.schema, table: name.table });
    return [...seen.values()];
  }

  /**
   * Fails, naming the setting and the name, if a table or column the settings name does not
   * exist, if a column rule names a table that is not captured, or if a key column would be
   * excluded or masked with the fixed string.
   */
  check(catalog: readonly TableColumns[], capturedTables: readonly string[]): void {
    const found = new Map(catalog.map((t) => [tableKey(t), t]));
    const captured = new Set(capturedTables.map((t) => tableKey(parseTableName(t))));
    for (const table of this.#excludedTables) {
      if (!found.has(tableKey(table))) {
        throw new ConfigError(
          `filter.excludeTables names table ${formatTableName(table)}, which does not exist`,
        );
      }
    }
    for (const { name, setting } of this.#named) {
      const table = found.get(tableKey(name));
      if (!table) {
        throw new ConfigError(
          `${setting} names column ${formatColumnName(name)}, but table ${formatTableName(name)} does not exist`,
        );
      }
      if (captured.size > 0 && !captured.has(tableKey(name))) {
        throw new ConfigError(
          `${setting} names column ${formatColumnName(name)}, but its table is not in source.tables`,
        );
      }
      if (!table.columns.some((c) => c.name === name.column)) {
        throw new ConfigError(`${setting} names column ${formatColumnName(name)}, which does not exist`, {
          hint: `columns of ${formatTableName(name)}: ${table.columns.map((c) => c.name).join(', ')}`,
        });
      }
    }
    for (const table of found.values()) {
      const rules = this.#tables.get(tableKey(table));
      if (rules) this.#checkKeys(table, table.columns, rules);
    }
  }

  keepTable(table: TableName): boolean {
    return !this.#excluded.has(tableKey(table));
  }

  keepMessage(prefix: string): boolean {
    return !this.#messagePrefixes.has(prefix) && !this.#messagePrefixStarts.some((p) => prefix.startsWith(p));
  }

  apply(event: ChangeEvent): ChangeEvent | null {
    if (this.#skip.has(event.op)) return null;
    // Logical messages belong to no table.
    if (event.op === 'm') return event;
    let plan = this.#plans.get(event.relation);
    if (plan === undefined && !this.#plans.has(event.relation)) {
      plan = this.#plan(event.relation);
      this.#plans.set(event.relation, plan);
    }
    if (plan === null) return null;
    if (plan === undefined) return event;
    return {
      ...event,
      relation: plan.relation,
      before: event.before === null ? null : rewrite(plan, event.before),
      after: event.after === null ? null : rewrite(plan, event.after),
    };
  }

  #plan(relation: Relation): RelationPlan | null | undefined {
    if (this.#excluded.has(tableKey(relation))) return null;
    const rules = this.#tables.get(tableKey(relation));
    if (!rules) return undefined;
    // The key may have changed since start (a new primary key or identity index): check again.
    this.#checkKeys(relation, relation.columns, rules);
    const keep: number[] = [];
    const columns: Column[] = [];
    const rewriters: (((text: string) => string) | undefined)[] = [];
    const newIndex = new Map<number, number>();
    relation.columns.forEach((column, i) => {
      if (rules.exclude.has(column.name) || (rules.include && !rules.include.has(column.name))) return;
      const rule = rules.values.get(column.name);
      newIndex.set(i, keep.length);
      keep.push(i);
      columns.push(rule ? { ...column, typeOid: TEXT.oid, typeMod: -1, type: TEXT } : column);
      rewriters.push(rule ? this.#rewriter(rule) : undefined);
    });
    if (keep.length === relation.columns.length && rewriters.every((r) => r === undefined)) return undefined;
    return {
      relation: {
        ...relation,
        columns,
        keyIndexes: relation.keyIndexes.map((i) => newIndex.get(i)!),
      },
      keep,
      rewrite: rewriters,
    };
  }

  #rewriter(rule: ValueRule): (text: string) => string {
    if (rule === 'mask') {
      const fixed = this.#maskWith;
      return () => fixed;
    }
    const salt = this.#salt;
    return (text) => createHash('sha256').update(salt).update(text).digest('hex');
  }

  #checkKeys(
    table: TableName,
    columns: readonly { name: string; isKey: boolean }[],
    rules: TableRules,
  ): void {
    for (const column of columns) {
      if (!column.isKey) continue;
      const name = formatColumnName({ ...table, column: column.name });
      if (rules.exclude.has(column.name) || (rules.include && !rules.include.has(column.name))) {
        throw new ConfigError(`column ${name} is part of the record key and cannot be excluded`, {
          hint: rules.include
            ? `add it to filter.includeColumns`
            : 'remove it from filter.excludeColumns (to hide its values, hash it with mask.hashColumns)',
        });
      }
      if (rules.values.get(column.name) === 'mask') {
        throw new ConfigError(
          `column ${name} is part of the record key and cannot be masked with a fixed string (every key would be equal)`,
          { hint: 'hash it with mask.hashColumns instead' },
        );
      }
    }
  }
}

function rewrite(plan: RelationPlan, tuple: Tuple): Tuple {
  const { keep, rewrite: rewriters } = plan;
  const out = new Array<TupleValue>(keep.length);
  for (let j = 0; j < keep.length; j++) {
    const i = keep[j]!;
    // Positions beyond the tuple's length are SQL NULL, as the encoders read them.
    const value = i < tuple.length ? tuple[i] : null;
    const replace = rewriters[j];
    // NULL stays NULL and an unchanged TOASTed value stays unavailable: neither reveals a value.
    out[j] = replace !== undefined && typeof value === 'string' ? replace(value) : value;
  }
  return out;
}
