import type pg from 'pg';
import type { Column, Relation } from '../../core/change-event.ts';
import { SourceSetupError } from '../../core/errors.ts';
import { LazyClient } from './lazy-client.ts';
import { quoteIdent } from './replication-protocol.ts';
import { formatTableName, type TableName } from './table-name.ts';
import { TypeRegistry, unknownType } from './type-registry.ts';

/** Prefix of the watermark messages that bracket each snapshot chunk in the WAL. */
export const WATERMARK_PREFIX = 'tributary.watermark';

/**
 * The same output settings as the replication connection, so that a value read by a snapshot
 * has the very text pgoutput sends for it (dates, intervals, floats), and keys compare equal.
 */
// synchronous_commit: a watermark is sent to the replication stream only once its WAL is flushed.
const SESSION_SETTINGS =
  '-c DateStyle=ISO -c IntervalStyle=postgres -c extra_float_digits=1 -c TimeZone=UTC -c synchronous_commit=on';

/** Every value as PostgreSQL's text output, as pgoutput sends it. */
const RAW_TEXT = { getTypeParser: () => (value: string) => value } as unknown as pg.CustomTypesConfig;

/** A captured table as a snapshot reads it: the Relation its rows are encoded with, and how to page it. */
export interface SnapshotTable {
  readonly name: TableName;
  readonly relation: Relation;
  /** Names of the columns a chunk is ordered by (the key); empty = paged by CTID block ranges. */
  readonly keyColumns: readonly string[];
  /** Indexes into `relation.columns` of `keyColumns`. */
  readonly keyIndexes: readonly number[];
  /** pg_class.reltuples (-1 or 0 when never analyzed). */
  readonly estimatedRows: number;
  /** Heap blocks when described: where a CTID snapshot stops. */
  readonly blocks: number;
}

/** Where a chunk starts: after a key (null = the beginning), or at a heap block. */
export type ChunkCursor = { readonly after: readonly string[] | null } | { readonly block: number };

export interface ChunkRead {
  readonly rows: (string | null)[][];
  /** Where the next chunk starts; null when this was the last chunk of the table. */
  readonly next: ChunkCursor | null;
}

/**
 * Reads tables in chunks over its own connection (never the replication one) and writes the
 * watermark messages around each chunk. Not safe for concurrent use: one reader per worker.
 */
export class SnapshotReader {
  private readonly client: LazyClient;
  private readonly types: TypeRegistry;

  constructor(url: string) {
    this.client = new LazyClient({
      connectionString: url,
      application_name: 'tributary-snapshot',
      options: SESSION_SETTINGS,
      types: RAW_TEXT,
    });
    this.types = new TypeRegistry((sql, params) => this.connection().then((c) => c.query(sql, params)));
  }

  connection(): Promise<pg.Client> {
    return this.client.get();
  }

  close(): Promise<void> {
    return this.client.close();
  }

  /** Tables of a publication, as PostgreSQL lists them. */
  async publicationTables(publication: string): Promise<TableName[]> {
    const client = await this.connection();
    const result = await client.query<{ schemaname: string; tablename: string }>(
      'select schemaname, tablename from pg_publication_tables where pubname = $1 order by 1, 2',
      [publication],
    );
    return result.rows.map((r) => ({ schema: r.schemaname, table: r.tablename }));
  }

  /**
   * The table's columns as pgoutput publishes them (attnum order, no dropped or generated
   * columns) and its key: the replica identity index, else the primary key, as the stream's
   * records are keyed. A missing table is SNAPSHOT_TABLE_MISSING.
   */
  async describe(name: TableName): Promise<SnapshotTable> {
    const client = await this.connection();
    const found = await client.query<{
      oid: string;
      relreplident: string;
      reltuples: string;
      blocks: string;
    }>(
      `select c.oid, c.relreplident, c.reltuples,
              pg_relation_size(c.oid) / current_setting('block_size')::int as blocks
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
       where n.nspname = $1 and c.relname = $2 and c.relkind in ('r', 'p')`,
      [name.schema, name.table],
    );
    const row = found.rows[0];
    if (!row) {
      throw new SourceSetupError('SNAPSHOT_TABLE_MISSING', `table ${formatTableName(name)} does not exist`, {
        hint: 'check the schema and table name (quote mixed case: "Shop"."Order")',
      });
    }
    const oid = Number(row.oid);
    const columns = await client.query<{ name: string; type: string; typmod: string; key: string }>(
      `select a.attname as name, a.atttypid as type, a.atttypmod as typmod,
              coalesce((select a.attnum = any(i.indkey) from pg_index i
                        where i.indrelid = a.attrelid
                          and (case when $2 = 'i' then i.indisreplident else i.indisprimary end)
                        limit 1), false)::text as key
       from pg_attribute a
       where a.attrelid = $1 and a.attnum > 0 and not a.attisdropped and a.attgenerated = ''
       order by a.attnum`,
      [oid, row.relreplident],
    );
    const oids = columns.rows.map((c) => Number(c.type));
    await this.types.resolve(oids);
    const cols: Column[] = columns.rows.map((c) => ({
      name: c.name,
      typeOid: Number(c.type),
      typeMod: Number(c.typmod),
      isKey: c.key === 'true',
      type: this.types.get(Number(c.type)) ?? unknownType(Number(c.type)),
    }));
    const keyIndexes = cols.flatMap((c, i) => (c.isKey ? [i] : []));
    const identity = { d: 'default', n: 'nothing', f: 'full', i: 'index' } as const;
    return {
      name,
      relation: {
        id: oid,
        schema: name.schema,
        table: name.table,
        replicaIdentity: identity[row.relreplident as keyof typeof identity] ?? 'default',
        columns: cols,
        keyIndexes,
      },
      keyColumns: keyIndexes.map((i) => cols[i]!.name),
      keyIndexes,
      estimatedRows: Math.max(0, Number(row.reltuples)),
      blocks: Number(row.blocks),
    };
  }

  /** Checks that a condition is valid SQL for the table (without reading it). */
  async checkCondition(table: SnapshotTable, condition: string): Promise<void> {
    const client = await this.connection();
    try {
      await client.query(`explain select 1 from ${qualified(table.name)} where (${condition})`);
    } catch (cause) {
      throw new SourceSetupError(
        'SNAPSHOT_CONDITION_INVALID',
        `the condition ${JSON.stringify(condition)} is not valid for ${formatTableName(table.name)}: ${(cause as Error).message}`,
        { cause, hint: 'write a SQL boolean expression over the table columns, e.g. "id > 1000"' },
      );
    }
  }

  /** Commits `pg_logical_emit_message(true, WATERMARK_PREFIX, content)` in its own transaction. */
  async watermark(content: string): Promise<void> {
    const client = await this.connection();
    await client.query('select pg_logical_emit_message(true, $1, $2)', [WATERMARK_PREFIX, content]);
  }

  /** Reads one chunk of at most `limit` rows from `cursor`, in key order (or one block range). */
  async readChunk(
    table: SnapshotTable,
    cursor: ChunkCursor,
    condition: string | null,
    limit: number,
  ): Promise<ChunkRead> {
    const client = await this.connection();
    const list = table.relation.columns.map((c) => quoteIdent(c.name)).join(', ');
    const where: string[] = [];
    const params: unknown[] = [];
    if (condition) where.push(`(${condition})`);
    if ('after' in cursor) {
      const keys = table.keyColumns.map(quoteIdent);
      if (cursor.after) {
        params.push(...cursor.after);
        where.push(`(${keys.join(', ')}) > (${keys.map((_, i) => `$${i + 1}`).join(', ')})`);
      }
      const sql =
        `select ${list} from ${qualified(table.name)}${where.length ? ` where ${where.join(' and ')}` : ''}` +
        ` order by ${keys.join(', ')} limit ${limit}`;
      const result = await client.query<(string | null)[]>({ text: sql, values: params, rowMode: 'array' });
      const rows = result.rows;
      const last = rows[rows.length - 1];
      return {
        rows,
        next: rows.length < limit || !last ? null : { after: table.keyIndexes.map((i) => last[i] as string) },
      };
    }
    // Without a key: a range of heap blocks sized to hold about `limit` rows.
    const perBlock = table.blocks > 0 ? Math.max(1, table.estimatedRows / table.blocks) : 100;
    const span = Math.max(1, Math.floor(limit / perBlock));
    const end = cursor.block + span;
    where.push(`ctid >= '(${cursor.block},0)'::tid and ctid < '(${end},0)'::tid`);
    const result = await client.query<(string | null)[]>({
      text: `select ${list} from ${qualified(table.name)} where ${where.join(' and ')}`,
      rowMode: 'array',
    });
    return { rows: result.rows, next: end >= table.blocks ? null : { block: end } };
  }
}

function qualified(name: TableName): string {
  return `${quoteIdent(name.schema)}.${quoteIdent(name.table)}`;
}
