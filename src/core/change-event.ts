import type { Lsn } from './lsn.ts';

/** Row operations, named as in Debezium: create, update, delete, truncate, read (snapshot), message. */
export type Op = 'c' | 'u' | 'd' | 't' | 'r' | 'm';

/** How the source database identifies old rows (pg_class.relreplident). */
export type ReplicaIdentity = 'default' | 'nothing' | 'full' | 'index';

/** A column as the source describes it in a Relation message, with its type resolved. */
export interface Column {
  readonly name: string;
  /** The column's declared type (may be a domain or an array). */
  readonly typeOid: number;
  readonly typeMod: number;
  /** Part of the replica identity (the key of `before` images and of records). */
  readonly isKey: boolean;
  /** Resolved type description used to convert text values. */
  readonly type: ColumnType;
}

/**
 * What a value converter needs to know of a type. `base` is the built-in type a domain or an
 * enum reduces to; arrays carry their element type.
 */
export type ColumnType =
  | { readonly kind: 'base'; readonly oid: number; readonly name: string }
  | { readonly kind: 'enum'; readonly oid: number; readonly name: string }
  | {
      readonly kind: 'array';
      readonly oid: number;
      readonly name: string;
      readonly element: ColumnType;
      readonly delimiter: string;
    };

/** The shape of a table at some point in the stream. A new Relation replaces the previous one. */
export interface Relation {
  /** The table's OID (pg_class.oid); stable across renames. */
  readonly id: number;
  readonly schema: string;
  readonly table: string;
  readonly replicaIdentity: ReplicaIdentity;
  readonly columns: readonly Column[];
  /** Indexes into `columns` of the key columns (primary key or replica identity index). */
  readonly keyIndexes: readonly number[];
}

/**
 * One value of a row as PostgreSQL sent it: the text form, `null` for SQL NULL, or
 * `undefined` for an unchanged TOASTed value that the database did not send.
 */
export type TupleValue = string | null | undefined;
export type Tuple = readonly TupleValue[];

/** One row change. `before`/`after` are positional, aligned with `relation.columns`. */
export interface ChangeEvent {
  readonly op: Op;
  readonly relation: Relation;
  /**
   * The old row, as the replica identity provides it: key columns only (DEFAULT/INDEX; other
   * positions `null`), every column (FULL), or `null` when the database sent none.
   */
  readonly before: Tuple | null;
  readonly after: Tuple | null;
  /** WAL position of this change (of the truncate record for a truncate). */
  readonly lsn: Lsn;
  /**
   * Columns of `after` whose unchanged TOASTed value was not sent and was read from the table
   * afterwards (`toast.fetch`): the value at fetch time, possibly newer than this change.
   */
  readonly fetchedToast?: readonly string[];
}

/** Transaction start. `finalLsn` (the commit record's LSN) identifies the transaction uniquely. */
export interface TransactionBegin {
  readonly kind: 'begin';
  readonly xid: number;
  readonly finalLsn: Lsn;
  /** Commit time in microseconds since the Unix epoch. */
  readonly commitTimeUs: bigint;
}

/** A row change; a truncate of several tables arrives as one change per table (op `t`). */
export interface TransactionChange {
  readonly kind: 'change';
  readonly event: ChangeEvent;
}

export interface TransactionCommit {
  readonly kind: 'commit';
  readonly commitLsn: Lsn;
  /** The position just after the commit: what is confirmed to the slot once durable. */
  readonly endLsn: Lsn;
  readonly commitTimeUs: bigint;
}

/**
 * Prefix of the logical messages Tributary writes as heartbeats: they move the slot and produce
 * no record.
 */
export const HEARTBEAT_PREFIX = 'tributary.heartbeat';

/** A `pg_logical_emit_message` message (transactional ones arrive between begin and commit). */
export interface LogicalMessage {
  readonly kind: 'message';
  readonly transactional: boolean;
  /** The end of the message's WAL record (what `pg_logical_emit_message` returns). */
  readonly lsn: Lsn;
  readonly prefix: string;
  readonly content: Buffer;
}

/** What the catalog adds to a Relation message's column, when it still matches the message. */
export interface ColumnDetails {
  /** pg_attribute.attnum: stays with a column across renames, never reused after a drop. */
  readonly attnum: number;
  readonly nullable: boolean;
  /** `format_type(atttypid, atttypmod)`, e.g. `character varying(20)`. */
  readonly typeExpression: string;
}

/**
 * A table's shape as the stream announces it (a pgoutput Relation message): inside a
 * transaction, before the table's first change in each session and before the first change after
 * every change of its shape. `lsn` is the LSN of that change. `details` is aligned with
 * `relation.columns`; an entry is undefined when the catalog no longer matched the message (the
 * table changed again since).
 */
export interface SchemaMessage {
  readonly kind: 'schema';
  readonly relation: Relation;
  readonly lsn: Lsn;
  readonly details: readonly (ColumnDetails | undefined)[];
}

export type SourceMessage =
  | TransactionBegin
  | TransactionChange
  | TransactionCommit
  | LogicalMessage
  | SchemaMessage;
