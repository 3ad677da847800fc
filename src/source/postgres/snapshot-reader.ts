import type pg from 'pg';
import type { Column, Relation } from '../../core/change-event.ts';
import { SourceSetupError, TributaryError } from '../../core/errors.ts';
import { type CopyRows, takeRows } from '../../encode/copy-row-batch.ts';
import { copyRows } from './copy-out.ts';
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
  /** Heap blocks when described (of its largest partition if partitioned): where a CTID snapshot stops. */
  readonly blocks: number;
}

/** Where a chunk starts: after a key (null = the beginning), or at a heap block. */
export type ChunkCursor = { readonly after: readonly string[] | null } | { readonly block: number };

/**
 * How many times `limit` rows a bounded chunk (`readChunk` with `upTo`) may hold: rows inserted
 * into its key range between `boundary` and the read. Past it, the read fails (CHUNK_RANGE_GREW,
 * retryable) rather than hold an unbounded chunk; the job resumes from its last chunk.
 */
export const RANGE_SLACK = 4;

export interface ChunkRead {
  /** The chunk's rows in COPY text format (every column of `relation`, in order). */
  readonly rows: CopyRows;
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
  /** First size of a chunk's buffer; later chunks start at their predecessor's size, with room. */
  private sizeHint = 1 << 20;

  constructor(url: string) {
    this.client = new LazyClient({
      connectionString: url,
      application_name: 'tributary-snapshot',
      options: SESSION_SETTINGS,
      types: RAW_TEXT,
    });
    this.types = new TypeRegistry((sql, params) => this.client.query(sql, params));
  }

  /** One statement on the reader's connection, in turn with its others (see LazyClient). */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    sql: string,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>> {
    return this.client.query<R>(sql, values);
  }

  close(): Promise<void> {
    return this.client.close();
  }

  /** Tables of a publication, as PostgreSQL lists them. */
  async publicationTables(publication: string): Promise<TableName[]> {
    const result = await this.client.query<{ schemaname: string; tablename: string }>(
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
    const found = await this.client.query<{
      oid: string;
      relreplident: string;
      reltuples: string;
      blocks: string;
    }>(
      // A partitioned table has no blocks of its own, and a CTID range over it applies to each
      // partition: its ranges must cover its largest partition.
      `select c.oid, c.relreplident, c.reltuples,
              case when c.relkind = 'p'
                then (select coalesce(max(pg_relation_size(t.relid)), 0)
                      from pg_partition_tree(c.oid) t where t.isleaf)
                else pg_relation_size(c.oid)
              end / current_setting('block_size')::int as blocks
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
    const columns = await this.client.query<{ name: string; type: string; typmod: string; key: string }>(
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
    try {
      await this.client.query(`explain select 1 from ${qualified(table.name)} where (${condition})`);
    } catch (cause) {
      throw new SourceSetupError(
        'SNAPSHOT_CONDITION_INVALID',
        `the condition ${JSON.stringify(condition)} is not valid for ${formatTableName(table.name)}: ${(cause as Error).message}`,
        { cause, hint: 'write a SQL boolean expression over the table columns, e.g. "id > 1000"' },
      );
    }
  }

  /**
   * Watermarks and chunk reads are asked for ahead (see SnapshotWorkers) and must reach the
   * server in that order, one at a time: the connection's queue (LazyClient) keeps that order.
   */
  private exclusive<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
    return this.client.use(work);
  }

  /**
   * Commits `pg_logical_emit_message(true, WATERMARK_PREFIX, content)` in its own transaction.
   * With `flush` false (a chunk's low watermark), the commit does not wait for its WAL to reach
   * the disk: the chunk's read still starts after the commit, and the high watermark written next
   * on this connection waits for the WAL up to itself, the low one included, before the
   * replication stream can carry either. The wait cost a chunk 2–34 ms (bench/README.md).
   */
  watermark(content: string, flush = true): Promise<void> {
    return this.exclusive(async (client) => {
      await client.query(
        flush
          ? 'select pg_logical_emit_message(true, $1, $2)'
          : `select pg_logical_emit_message(true, $1, $2), set_config('synchronous_commit', 'off', true)`,
        [WATERMARK_PREFIX, content],
      );
    });
  }

  /** Runs a chunk's COPY, sizing its buffer from the previous chunk's bytes. */
  private async copy(client: pg.Client, query: string): Promise<CopyRows> {
    const rows = await copyRows(client, query, this.sizeHint);
    this.sizeHint = Math.max(1 << 16, Math.ceil(rows.data.length * 1.2));
    return rows;
  }

  /**
   * Reads one chunk of at most `limit` rows from `start`, in key order (or one block range), as
   * `COPY ... TO STDOUT` text: the rows stay one buffer, in the very text pgoutput sends for each
   * value; only the last row's key is decoded, for the next chunk's cursor. With `upTo`, the
   * chunk is the key range up to it (see `boundary`).
   */
  readChunk(
    table: SnapshotTable,
    start: ChunkCursor,
    condition: string | null,
    limit: number,
    upTo: readonly string[] | null = null,
  ): Promise<ChunkRead> {
    return this.exclusive((client) => this.readFrom(client, table, start, condition, limit, upTo));
  }

  /**
   * The key of the `limit`-th row after `start` (in key order, within `condition`): the upper
   * bound (inclusive) of a chunk of `limit` rows from there, so that the chunk after it can be
   * read at the same time on another connection. Null when no row follows that one: the table's
   * last chunk is read unbounded. Costs an index scan of `limit` entries (index-only on a vacuumed table).
   */
  boundary(
    table: SnapshotTable,
    start: { readonly after: readonly string[] | null },
    condition: string | null,
    limit: number,
  ): Promise<readonly string[] | null> {
    return this.exclusive(async (client) => {
      const keys = table.keyColumns.map(quoteIdent);
      const where = this.keyConditions(client, table, start.after, null, condition);
      const result = await client.query<string[]>({
        text: `select ${keys.join(', ')}${fromWhere(table, where)} order by ${keys.join(', ')} offset ${limit - 1} limit 2`,
        rowMode: 'array',
      });
      // A row after the bound: the chunk is not the last one. Otherwise the last chunk is read
      // unbounded, so that it is never empty (its last row carries `source.snapshot: "last"`).
      return result.rows.length === 2 ? result.rows[0]! : null;
    });
  }

  /** `(keys) > (after)`, `(keys) <= (upTo)` and the condition, as SQL. */
  private keyConditions(
    client: pg.Client,
    table: SnapshotTable,
    after: readonly string[] | null,
    upTo: readonly string[] | null,
    condition: string | null,
  ): string[] {
    const keys = `(${table.keyColumns.map(quoteIdent).join(', ')})`;
    // COPY takes no parameters: the key values go in as literals (unknown-typed, as a parameter
    // would be), quoted by the driver.
    const values = (row: readonly string[]) => `(${row.map((v) => client.escapeLiteral(v)).join(', ')})`;
    const where: string[] = [];
    if (condition) where.push(`(${condition})`);
    if (after) where.push(`${keys} > ${values(after)}`);
    if (upTo) where.push(`${keys} <= ${values(upTo)}`);
    return where;
  }

  private async readFrom(
    client: pg.Client,
    table: SnapshotTable,
    cursor: ChunkCursor,
    condition: string | null,
    limit: number,
    upTo: readonly string[] | null,
  ): Promise<ChunkRead> {
    const list = table.relation.columns.map((c) => quoteIdent(c.name)).join(', ');
    if ('after' in cursor) {
      const keys = table.keyColumns.map(quoteIdent);
      const where = this.keyConditions(client, table, cursor.after, upTo, condition);
      // Unbounded, one row more than the chunk tells whether another chunk follows, so the last
      // chunk is never empty (its last row carries `source.snapshot: "last"`). Bounded, the range
      // is read whole, within RANGE_SLACK.
      const cap = upTo ? limit * RANGE_SLACK : limit;
      const sql = `select ${list}${fromWhere(table, where)} order by ${keys.join(', ')} limit ${cap + 1}`;
      const read = await this.copy(client, sql);
      if (upTo) {
        if (read.count > cap) {
          throw new TributaryError(
            'CHUNK_RANGE_GREW',
            `more than ${cap} rows were inserted into the key range of a chunk of ${formatTableName(table.name)} while it was read`,
            { retryable: true },
          );
        }
        return { rows: read, next: { after: upTo } };
      }
      if (read.count <= limit) return { rows: read, next: null };
      const { rows, last } = takeRows(read, limit);
      return { rows, next: { after: table.keyIndexes.map((i) => last[i] as string) } };
    }
    const where: string[] = [];
    if (condition) where.push(`(${condition})`);
    const end = cursor.block + blockSpan(table, limit);
    where.push(`ctid >= '(${cursor.block},0)'::tid and ctid < '(${end},0)'::tid`);
    const rows = await this.copy(client, `select ${list}${fromWhere(table, where)}`);
    return { rows, next: nextBlockRange(table, cursor, limit) };
  }
}

/** Without a key, a chunk is a range of heap blocks sized to hold about `limit` rows. */
function blockSpan(table: SnapshotTable, limit: number): number {
  const perBlock = table.blocks > 0 ? Math.max(1, table.estimatedRows / table.blocks) : 100;
  return Math.max(1, Math.floor(limit / perBlock));
}

/**
 * Where the block range after the one starting at `cursor` starts; null after the table's last
 * block (when described). Known before the read: block ranges are read in parallel.
 */
export function nextBlockRange(
  table: SnapshotTable,
  cursor: { readonly block: number },
  limit: number,
): { block: number } | null {
  const end = cursor.block + blockSpan(table, limit);
  return end >= table.blocks ? null : { block: end };
}

/** ` from <table>[ where <a> and <b> ...]`. */
function fromWhere(table: SnapshotTable, where: readonly string[]): string {
  return ` from ${qualified(table.name)}${where.length ? ` where ${where.join(' and ')}` : ''}`;
}

function qualified(name: TableName): string {
  return `${quoteIdent(name.schema)}.${quoteIdent(name.table)}`;
}
