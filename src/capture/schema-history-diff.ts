/**
 * Table shapes as the schema history stores them, and what changed between two of them. Pure:
 * no database, no log.
 */
import type { ReplicaIdentity, SchemaMessage } from '../core/change-event.ts';

export interface ColumnShape {
  readonly name: string;
  /** 1-based position in the Relation message (and in `before`/`after`). */
  readonly position: number;
  /** pg_attribute.attnum, or null when the catalog had changed again before it was read. */
  readonly attnum: number | null;
  /** The resolved type name (`int4`, `varchar`, a domain or enum name...). */
  readonly typeName: string;
  /** `format_type` of the column, e.g. `character varying(20)`; null as `attnum`. */
  readonly typeExpression: string | null;
  readonly typeOid: number;
  readonly typeMod: number;
  /** Part of the record key (primary key, or replica identity index). */
  readonly key: boolean;
  /** null as `attnum`. */
  readonly nullable: boolean | null;
}

export interface TableShape {
  readonly schema: string;
  readonly table: string;
  /** pg_class.oid: stays with the table across renames; a dropped and re-created table gets another. */
  readonly relationId: number;
  readonly replicaIdentity: ReplicaIdentity;
  readonly primaryKeyColumnNames: readonly string[];
  readonly columns: readonly ColumnShape[];
}

/** What changed from the previous shape of a table. */
export interface SchemaDiff {
  /** The table's previous `schema.table`, when it was renamed (same relation id). */
  readonly renamedFrom: string | null;
  readonly added: readonly string[];
  readonly dropped: readonly string[];
  /** Told from a drop and an add by the column's attnum. */
  readonly renamed: readonly { readonly from: string; readonly to: string }[];
  readonly typeChanged: readonly { readonly column: string; readonly from: string; readonly to: string }[];
  readonly nullabilityChanged: readonly { readonly column: string; readonly nullable: boolean }[];
  readonly keyChanged: { readonly from: readonly string[]; readonly to: readonly string[] } | null;
  readonly replicaIdentityChanged: { readonly from: ReplicaIdentity; readonly to: ReplicaIdentity } | null;
}

export function shapeOf(message: SchemaMessage): TableShape {
  const { relation, details } = message;
  return {
    schema: relation.schema,
    table: relation.table,
    relationId: relation.id,
    replicaIdentity: relation.replicaIdentity,
    primaryKeyColumnNames: relation.keyIndexes.map((i) => relation.columns[i]!.name),
    columns: relation.columns.map((column, i) => {
      const detail = details[i];
      return {
        name: column.name,
        position: i + 1,
        attnum: detail?.attnum ?? null,
        typeName: column.type.name,
        typeExpression: detail?.typeExpression ?? null,
        typeOid: column.typeOid,
        typeMod: column.typeMod,
        key: column.isKey,
        nullable: detail?.nullable ?? null,
      };
    }),
  };
}

/** How a column's type is shown: the catalog's expression, else the type name with its typmod. */
export function typeText(column: ColumnShape): string {
  if (column.typeExpression !== null) return column.typeExpression;
  return column.typeMod >= 0 ? `${column.typeName}(typmod ${column.typeMod})` : column.typeName;
}

/** The old column matching a new one: by attnum when both know it, else by name. */
function counterpart(previous: TableShape, column: ColumnShape): ColumnShape | undefined {
  if (column.attnum !== null) {
    const byAttnum = previous.columns.find((c) => c.attnum === column.attnum);
    if (byAttnum) return byAttnum;
  }
  return previous.columns.find(
    (c) => c.name === column.name && (c.attnum === null || column.attnum === null),
  );
}

/**
 * Pairs each new column with its old self: by attnum or name, then by place. Columns are sent in
 * attnum order and an added column always comes last, so an unpaired new column followed by a
 * paired one sits where an old column was: it is that column renamed. (An unpaired column at the
 * end is told from drop + add only by its attnum, known when the catalog still matched.)
 */
function pairColumns(previous: TableShape, next: TableShape): (ColumnShape | undefined)[] {
  const taken = new Set<ColumnShape>();
  const pairs = next.columns.map((column) => {
    const old = counterpart(previous, column);
    if (!old || taken.has(old)) return undefined;
    taken.add(old);
    return old;
  });
  for (let j = 0; j < pairs.length; j++) {
    if (pairs[j] !== undefined || !pairs.slice(j + 1).some((p) => p !== undefined)) continue;
    const before = pairs
      .slice(0, j)
      .reverse()
      .find((p) => p !== undefined);
    const from = before ? previous.columns.indexOf(before) + 1 : 0;
    const candidate = previous.columns.slice(from).find((c) => !taken.has(c));
    const nextPaired = pairs.slice(j + 1).find((p) => p !== undefined);
    if (
      candidate &&
      nextPaired &&
      previous.columns.indexOf(candidate) < previous.columns.indexOf(nextPaired)
    ) {
      taken.add(candidate);
      pairs[j] = candidate;
    }
  }
  return pairs;
}

/** What changed from `previous` to `next` (the same relation id). */
export function diffShapes(previous: TableShape, next: TableShape): SchemaDiff {
  const pairs = pairColumns(previous, next);
  const matched = new Set<ColumnShape>();
  const added: string[] = [];
  const renamed: { from: string; to: string }[] = [];
  const typeChanged: { column: string; from: string; to: string }[] = [];
  const nullabilityChanged: { column: string; nullable: boolean }[] = [];
  for (const [j, column] of next.columns.entries()) {
    const old = pairs[j];
    if (!old) {
      added.push(column.name);
      continue;
    }
    matched.add(old);
    if (old.name !== column.name) renamed.push({ from: old.name, to: column.name });
    if (old.typeOid !== column.typeOid || old.typeMod !== column.typeMod) {
      typeChanged.push({ column: column.name, from: typeText(old), to: typeText(column) });
    }
    if (old.nullable !== null && column.nullable !== null && old.nullable !== column.nullable) {
      nullabilityChanged.push({ column: column.name, nullable: column.nullable });
    }
  }
  const dropped = previous.columns.filter((c) => !matched.has(c)).map((c) => c.name);
  const sameKey =
    previous.primaryKeyColumnNames.length === next.primaryKeyColumnNames.length &&
    previous.primaryKeyColumnNames.every((name, i) => next.primaryKeyColumnNames[i] === name);
  const renamedKey = (name: string) => renamed.find((r) => r.from === name)?.to ?? name;
  const keyOnlyRenamed =
    previous.primaryKeyColumnNames.length === next.primaryKeyColumnNames.length &&
    previous.primaryKeyColumnNames.every((name, i) => next.primaryKeyColumnNames[i] === renamedKey(name));
  const oldName = `${previous.schema}.${previous.table}`;
  return {
    renamedFrom: oldName === `${next.schema}.${next.table}` ? null : oldName,
    added,
    dropped,
    renamed,
    typeChanged,
    nullabilityChanged,
    keyChanged:
      sameKey || keyOnlyRenamed
        ? null
        : { from: previous.primaryKeyColumnNames, to: next.primaryKeyColumnNames },
    replicaIdentityChanged:
      previous.replicaIdentity === next.replicaIdentity
        ? null
        : { from: previous.replicaIdentity, to: next.replicaIdentity },
  };
}

/**
 * Whether two shapes describe the same table shape: what the Relation message says must be equal;
 * catalog details count only where both sides know them (a restart may read a newer catalog).
 */
export function sameShape(a: TableShape, b: TableShape): boolean {
  if (
    a.relationId !== b.relationId ||
    a.schema !== b.schema ||
    a.table !== b.table ||
    a.replicaIdentity !== b.replicaIdentity ||
    a.columns.length !== b.columns.length
  ) {
    return false;
  }
  return a.columns.every((x, i) => {
    const y = b.columns[i]!;
    return (
      x.name === y.name &&
      x.typeOid === y.typeOid &&
      x.typeMod === y.typeMod &&
      x.key === y.key &&
      (x.attnum === null || y.attnum === null || x.attnum === y.attnum) &&
      (x.nullable === null || y.nullable === null || x.nullable === y.nullable)
    );
  });
}

/** One line per change, for people: `added note; renamed a -> b; type n: integer -> bigint`. */
export function describeDiff(diff: SchemaDiff): string {
  const parts: string[] = [];
  if (diff.renamedFrom) parts.push(`table renamed from ${diff.renamedFrom}`);
  if (diff.added.length > 0) parts.push(`added ${diff.added.join(', ')}`);
  if (diff.dropped.length > 0) parts.push(`dropped ${diff.dropped.join(', ')}`);
  for (const r of diff.renamed) parts.push(`renamed ${r.from} -> ${r.to}`);
  for (const t of diff.typeChanged) parts.push(`type of ${t.column}: ${t.from} -> ${t.to}`);
  for (const n of diff.nullabilityChanged) parts.push(`${n.column} ${n.nullable ? 'nullable' : 'not null'}`);
  if (diff.keyChanged) {
    parts.push(`key (${diff.keyChanged.from.join(', ')}) -> (${diff.keyChanged.to.join(', ')})`);
  }
  if (diff.replicaIdentityChanged) {
    parts.push(`replica identity ${diff.replicaIdentityChanged.from} -> ${diff.replicaIdentityChanged.to}`);
  }
  return parts.length > 0 ? parts.join('; ') : 'no visible change';
}
