/**
 * `search`: a full-text index of a captured table on SQLite FTS5 (see `search-index.ts`), kept
 * current by its changes: an insert or update (re)indexes the row's document, a delete removes
 * it, a truncate empties the index (of what changed before it: see `RowChange`); snapshot records
 * fill it first (backfill).
 *
 * Guarantees: exactly-once effect (the index and the offsets commit in one SQLite transaction, so
 * a replica killed at any instant leaves each document as of its last committed change); once
 * caught up, the index holds exactly the source's rows (one table per index: documents are keyed
 * by the `key` column). Queries (`SearchReader`, `GET /api/search/<name>`, `tributary search`)
 * read the file concurrently with the writes and see whole batches.
 */
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { z } from 'zod';
import { sqliteTarget } from '../../consumers/transactional.ts';
import type { Sink, SinkEnvironment, SinkKind } from '../sink.ts';
import { SinkRecordError } from '../sink.ts';
import { deletedRow, exactJson, type Row, rowChange } from '../sink-records.ts';
import { TRUNCATE_FENCE_DDL, TruncateFence } from '../truncate-fence.ts';
import { createIndex, type IndexLayout, IndexWriter } from './search-index.ts';

export const searchOptions = z
  .object({
    key: z
      .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
      .default('id')
      .describe(
        'the column that identifies a document (the table key), or its columns for a composite key (`["order_id", "line"]`): every primary key column must be in it',
      ),
    fields: z
      .record(z.string(), z.number().positive())
      .default({ name: 10, description: 1 })
      .refine((f) => Object.keys(f).length > 0, 'give at least one text column')
      .describe(
        'text columns to tokenize, with their bm25 weights (a match in a heavier column ranks higher)',
      ),
    numeric: z
      .array(z.string().min(1))
      .default(['price'])
      .describe('numeric columns offered as range filters (`price:10..20`)'),
    stored: z
      .array(z.string().min(1))
      .optional()
      .describe('columns returned with each hit (default: the key, the text and the numeric columns)'),
    file: z.string().min(1).optional().describe('the index file (default <dataDir>/search/<name>.db)'),
  })
  .strict();

export type SearchOptions = z.infer<typeof searchOptions>;

/** Where the index `name` lives. */
export function searchFile(
  options: { file?: string | undefined },
  env: Pick<SinkEnvironment, 'dataDir' | 'name'>,
): string {
  return options.file ?? join(env.dataDir, 'search', `${env.name}.db`);
}

export function searchLayout(o: SearchOptions): IndexLayout {
  const fields = Object.entries(o.fields).map(([column, weight]) => ({ column, weight }));
  return {
    key: o.key,
    fields,
    numeric: o.numeric,
    stored: o.stored ?? [...new Set([...keyColumns(o), ...fields.map((f) => f.column), ...o.numeric])],
  };
}

export function keyColumns(o: Pick<SearchOptions, 'key'>): readonly string[] {
  return typeof o.key === 'string' ? [o.key] : o.key;
}

/**
 * A document's key: the key column's value as text (a string as it is, other values as exact
 * JSON); for a composite key, the JSON array of the values (`[7,"b"]`), so no two keys collide.
 * `primary`: the record's key (the table's primary key columns), which must all be key columns.
 */
export function documentKey(
  columns: readonly string[],
  table: string,
  row: Row,
  primary: Row,
  sink: string,
): string {
  const hint = `set sinks.${sink}.key to the table's key column, or its columns for a composite key`;
  const uncovered = Object.keys(primary).filter((c) => !columns.includes(c));
  if (uncovered.length > 0) {
    throw new SinkRecordError(
      `${table}: the primary key column ${uncovered.join(', ')} is not in the search key (${columns.join(', ')}): documents would share a key`,
      { hint },
    );
  }
  const values = columns.map((c) => {
    const value = row[c];
    if (value === null || value === undefined)
      throw new SinkRecordError(`${table}.${c}: the document key is missing`, { hint });
    return value;
  });
  if (values.length > 1) return exactJson(values);
  const [only] = values;
  return typeof only === 'string' ? only : exactJson(only);
}

export const searchSinkKind: SinkKind<SearchOptions> = {
  kind: 'search',
  description: 'full-text index (SQLite FTS5): bm25 with column weights, prefixes, numeric range filters',
  options: searchOptions,
  defaultTables: () => ['public.products'],
  create(o, env): Sink<Database.Database> {
    const file = searchFile(o, env);
    mkdirSync(dirname(file), { recursive: true });
    const layout = searchLayout(o);
    let bound: { db: Database.Database; writer: IndexWriter; fence: TruncateFence } | undefined;
    return {
      target: sqliteTarget(file),
      async open() {
        const db = new Database(file, { timeout: 10_000 });
        try {
          db.pragma('journal_mode = WAL');
          db.transaction(() => {
            createIndex(db, layout, `sinks.${env.name}`);
            db.exec(TRUNCATE_FENCE_DDL);
          }).immediate();
        } finally {
          db.close();
        }
      },
      async write(batch, db) {
        if (bound?.db !== db)
          bound = { db, writer: new IndexWriter(db, layout), fence: new TruncateFence(db) };
        const { writer, fence } = bound;
        for (const record of batch) {
          const change = rowChange(record);
          if (!change) continue;
          if (change.op === 'truncate') {
            writer.truncate(fence.truncate('index', change.lsn));
            continue;
          }
          if (fence.stale('index', change.lsn)) continue;
          const row = change.op === 'delete' ? deletedRow(change) : change.row;
          if (!row) continue;
          const text = documentKey(keyColumns(o), change.table, row, change.key, env.name);
          if (change.op === 'delete') writer.delete(text);
          else writer.upsert(text, row, change.lsn);
        }
      },
    };
  },
};
