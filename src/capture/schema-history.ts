/**
 * The schema history: every new or changed table shape the stream announces, as a record of the
 * topic `<topicPrefix>.schema-history` (key `{"schema","table"}`), written in the same append as
 * the change events that follow it, so the history and the capture position move together.
 *
 * A shape equal to the last one recorded for its table (what every new replication session
 * sends again) is not recorded, so restarts never duplicate entries. Drops are not in the
 * history: PostgreSQL's stream says nothing when a table is dropped.
 */
import packageJson from '../../package.json' with { type: 'json' };
import type { SchemaMessage } from '../core/change-event.ts';
import { LogError } from '../core/errors.ts';
import type { EventLog } from '../core/event-log.ts';
import { formatLsn } from '../core/lsn.ts';
import type { AppendItem, StoredRecord } from '../core/record.ts';
import { formatTableName, parseTableName, type TableName } from '../source/postgres/table-name.ts';
import { diffShapes, type SchemaDiff, sameShape, shapeOf, type TableShape } from './schema-history-diff.ts';

export type { ColumnShape, SchemaDiff, TableShape } from './schema-history-diff.ts';

/** The value of a schema history record. */
export interface SchemaHistoryEntry {
  /** CREATE: first shape seen of this table (or of a new table with its name); ALTER: a change. */
  readonly type: 'CREATE' | 'ALTER';
  /** `schema.table`, quoted where needed. */
  readonly id: string;
  /** Where the shape takes effect: the LSN of its first change, in the X/Y form. */
  readonly lsn: string;
  /** Processing time (ms since the epoch). */
  readonly ts_ms: number;
  /** As in change events; `ts_ms` is the commit time of the transaction of that first change. */
  readonly source: {
    readonly version: string;
    readonly connector: 'postgresql';
    readonly name: string;
    readonly db: string;
    readonly schema: string;
    readonly table: string;
    readonly txId: number;
    readonly lsn: number;
    readonly ts_ms: number;
  };
  readonly table: TableShape;
  /** null for CREATE. */
  readonly changes: SchemaDiff | null;
}

export function schemaHistoryTopic(topicPrefix: string): string {
  return `${topicPrefix}.schema-history`;
}

const keyOf = (name: TableName) => JSON.stringify({ schema: name.schema, table: name.table });

const NO_HEADERS: Readonly<{ [name: string]: string }> = Object.freeze({});

export interface SchemaHistoryOptions {
  readonly topic: string;
  readonly serverName: string;
  readonly database: string;
}

/** Where a shape was met: its transaction, and the processing time. */
export interface ShapeContext {
  readonly xid: number;
  readonly commitTimeUs: bigint;
  readonly nowUs: bigint;
}

/**
 * The last recorded shape of each table, kept equal to what the log plus the caller's pending
 * records hold: `truncate` undoes what was observed into records the caller then dropped,
 * `flushed` says the pending records went to the log.
 */
export class SchemaHistory {
  private readonly last = new Map<string, TableShape>();
  /** Table key of each relation id, to tell a renamed table. */
  private readonly names = new Map<number, string>();
  private journal: { index: number; key: string; previous: TableShape | undefined }[] = [];

  private constructor(private readonly options: SchemaHistoryOptions) {}

  /** Reads the last shape of every table from the topic. */
  static async load(log: EventLog, options: SchemaHistoryOptions): Promise<SchemaHistory> {
    const history = new SchemaHistory(options);
    for (const { entry } of await readAll(log, options.topic)) {
      const key = keyOf(entry.table);
      history.last.set(key, entry.table);
      history.names.set(entry.table.relationId, key);
    }
    return history;
  }

  /** Appends a history record to `out` if the shape is new for its table. */
  observe(message: SchemaMessage, context: ShapeContext, out: AppendItem[]): void {
    const shape = shapeOf(message);
    const key = keyOf(shape);
    const previous = this.last.get(key);
    if (previous && sameShape(previous, shape)) return;
    // A table seen under another name with the same relation id was renamed.
    const renamedKey = this.names.get(shape.relationId);
    const before =
      previous?.relationId === shape.relationId
        ? previous
        : renamedKey !== undefined && renamedKey !== key
          ? this.last.get(renamedKey)
          : undefined;
    const entry: SchemaHistoryEntry = {
      type: before ? 'ALTER' : 'CREATE',
      id: formatTableName(shape),
      lsn: formatLsn(message.lsn),
      ts_ms: Number(context.nowUs / 1000n),
      source: {
        version: packageJson.version,
        connector: 'postgresql',
        name: this.options.serverName,
        db: this.options.database,
        schema: shape.schema,
        table: shape.table,
        txId: context.xid,
        lsn: Number(message.lsn),
        ts_ms: Number(context.commitTimeUs / 1000n),
      },
      table: shape,
      changes: before ? diffShapes(before, shape) : null,
    };
    out.push({
      topic: this.options.topic,
      key,
      value: JSON.stringify(entry),
      headers: NO_HEADERS,
      timestamp: Number(context.commitTimeUs / 1000n),
    });
    this.journal.push({ index: out.length - 1, key, previous });
    this.last.set(key, shape);
    this.names.set(shape.relationId, key);
  }

  /** The caller cut its pending records to `length`: forget the shapes recorded beyond. */
  truncate(length: number): void {
    for (let entry = this.journal.at(-1); entry && entry.index >= length; entry = this.journal.at(-1)) {
      this.journal.pop();
      if (entry.previous) this.last.set(entry.key, entry.previous);
      else this.last.delete(entry.key);
    }
  }

  /** The pending records were handed to the log. */
  flushed(): void {
    this.journal = [];
  }
}

async function readAll(
  log: EventLog,
  topic: string,
): Promise<{ record: StoredRecord; entry: SchemaHistoryEntry }[]> {
  const info = (await log.topics()).find((t) => t.topic === topic);
  if (!info) return [];
  const out: { record: StoredRecord; entry: SchemaHistoryEntry }[] = [];
  for (const p of info.partitions) {
    for (let offset = p.startOffset; offset < p.endOffset; ) {
      const batch = await log.read(topic, p.partition, offset, 1000);
      if (batch.length === 0) break;
      for (const record of batch) out.push({ record, entry: parseEntry(record) });
      offset = batch[batch.length - 1]!.offset + 1;
    }
  }
  // In append order per partition: one table's records share a partition.
  return out;
}

function parseEntry(record: StoredRecord): SchemaHistoryEntry {
  try {
    return JSON.parse(record.value ?? 'null') as SchemaHistoryEntry;
  } catch (cause) {
    throw new LogError(
      'SCHEMA_HISTORY_INVALID',
      `schema history record ${record.topic}/${record.partition}/${record.offset} is not JSON`,
      { cause },
    );
  }
}

/**
 * The schema history of one table (`schema.table`, or `table` in `public`), oldest first, or of
 * every table when `table` is omitted (in LSN order). Empty when nothing was recorded.
 */
export async function readSchemaHistory(
  log: EventLog,
  options: { readonly topicPrefix: string; readonly table?: string },
): Promise<SchemaHistoryEntry[]> {
  const records = await readAll(log, schemaHistoryTopic(options.topicPrefix));
  const key = options.table === undefined ? undefined : keyOf(parseTableName(options.table));
  if (key !== undefined) return records.filter((r) => r.record.key === key).map((r) => r.entry);
  return records.map((r) => r.entry).sort((a, b) => a.source.lsn - b.source.lsn);
}
