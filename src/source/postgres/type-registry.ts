import type { ColumnType } from '../../core/change-event.ts';
import { BUILTIN_TYPES } from './builtin-types.ts';

/**
 * Runs one SQL statement with positional parameters on a normal (non-replication) connection to
 * the source database. `pg`'s `Client#query` and `Pool#query` fit as they are.
 */
export type TypeQuery = (sql: string, params: unknown[]) => Promise<{ rows: Record<string, unknown>[] }>;

/** What a column of a type nobody could describe becomes: text, passed through as it came. */
export function unknownType(oid: number): ColumnType {
  return { kind: 'base', oid, name: 'unknown' };
}

/**
 * Fetches the requested types together with everything they reduce to: a domain's base type and
 * an array's element type, recursively. Arrays are recognised as PostgreSQL does (a varlena type
 * with an element type, and since 14 the array subscript handler, so that `point`-like
 * subscriptable types are not taken for arrays); `to_jsonb` reads `typsubscript` without failing
 * on servers older than 14 that lack the column.
 */
const TYPE_CLOSURE_SQL = `
WITH RECURSIVE closure(oid) AS (
  SELECT unnest($1::pg_catalog.oid[])
  UNION
  SELECT CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.typelem END
    FROM pg_catalog.pg_type t JOIN closure c ON t.oid = c.oid
   WHERE t.typtype = 'd' OR (t.typelem <> 0 AND t.typlen = -1)
)
SELECT t.oid, t.typname, t.typtype, t.typbasetype, t.typelem, t.typdelim,
       t.typtype = 'b' AND t.typelem <> 0 AND t.typlen = -1
         AND coalesce(to_jsonb(t) ->> 'typsubscript', 'array_subscript_handler') = 'array_subscript_handler'
         AS is_array
  FROM pg_catalog.pg_type t JOIN closure c ON t.oid = c.oid`;

interface TypeRow {
  readonly name: string;
  /** pg_type.typtype: b base, c composite, d domain, e enum, p pseudo, r range, m multirange. */
  readonly typtype: string;
  readonly baseOid: number;
  readonly elementOid: number;
  readonly delimiter: string;
  readonly isArray: boolean;
}

/**
 * Type OID → `ColumnType`, for converting the text values of the replication stream.
 *
 * Built-in types are known from the start. Other types (enums, domains, arrays of them,
 * composites, ranges, extension types) are learned with `resolve`, which the decoder's caller
 * awaits after each Relation message and before registering the relation. Entries are never
 * evicted or changed: an OID names one type for the life of the database, and a dropped type
 * cannot still be used by a column.
 *
 * `get` is synchronous and cheap. `resolve` may run concurrently with itself; at worst two calls
 * fetch the same rows.
 */
export class TypeRegistry {
  private readonly types = new Map<number, ColumnType>(BUILTIN_TYPES);

  constructor(private readonly query?: TypeQuery) {}

  get(oid: number): ColumnType | undefined {
    return this.types.get(oid);
  }

  /**
   * Learns every OID of `oids` not known yet, with one query. Domains become their base type (so
   * a domain over an array is that array), enums kind `enum`, arrays carry their resolved element
   * type and the element's `typdelim`, anything else kind `base` with its `typname` (passed on as
   * text). An OID the server does not know, or any OID when there is no query, becomes
   * `unknownType(oid)`. Query errors are rethrown unchanged and nothing is cached for that call.
   */
  async resolve(oids: readonly number[]): Promise<void> {
    const missing = [...new Set(oids)].filter((oid) => !this.types.has(oid));
    if (missing.length === 0) return;
    const rows = new Map<number, TypeRow>();
    if (this.query) {
      const result = await this.query(TYPE_CLOSURE_SQL, [missing]);
      for (const row of result.rows) rows.set(Number(row['oid']), toTypeRow(row));
    }
    for (const oid of missing) this.types.set(oid, this.build(oid, rows, new Set()));
  }

  private build(oid: number, rows: ReadonlyMap<number, TypeRow>, visiting: Set<number>): ColumnType {
    const known = this.types.get(oid);
    if (known) return known;
    const row = rows.get(oid);
    // A cycle cannot happen in a sane catalog; the guard keeps a corrupt one from recursing forever.
    if (!row || visiting.has(oid)) return unknownType(oid);
    visiting.add(oid);
    let type: ColumnType;
    if (row.typtype === 'd') {
      type = this.build(row.baseOid, rows, visiting);
    } else if (row.isArray) {
      const element = this.build(row.elementOid, rows, visiting);
      // Array text uses the element's delimiter (array_in looks it up on the element type).
      const delimiter = rows.get(row.elementOid)?.delimiter ?? builtinDelimiter(row.elementOid);
      type = { kind: 'array', oid, name: row.name, element, delimiter };
    } else if (row.typtype === 'e') {
      type = { kind: 'enum', oid, name: row.name };
    } else {
      type = { kind: 'base', oid, name: row.name };
    }
    this.types.set(oid, type);
    return type;
  }
}

function builtinDelimiter(elementOid: number): string {
  for (const type of BUILTIN_TYPES.values()) {
    if (type.kind === 'array' && type.element.oid === elementOid) return type.delimiter;
  }
  return ',';
}

function toTypeRow(row: Record<string, unknown>): TypeRow {
  return {
    name: String(row['typname']),
    typtype: String(row['typtype']),
    baseOid: Number(row['typbasetype']),
    elementOid: Number(row['typelem']),
    delimiter: String(row['typdelim'] ?? ','),
    isArray: row['is_array'] === true,
  };
}
