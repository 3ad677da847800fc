/**
 * Column types from the capture's schema history (`<topicPrefix>.schema-history`, see
 * src/capture/schema-history.ts): the lake types its tables by the PostgreSQL types, not by the
 * values (a date and an int4 both arrive as numbers, a timestamptz and a text as strings).
 *
 * The capture appends a table's new shape in the same append as the first change under it, so a
 * change the sink reads always has its shape in the log: before each batch the sink reads the
 * history records appended since (`refresh`, one `topics()` call when there are none), and a
 * change at LSN L takes the last shape of its table recorded at or before L.
 *
 * The embedded log is read from the data directory; with a NATS log (its address is not in the
 * sink's environment) or no history, columns are typed by their values (lake-columns.ts).
 */
import type { ColumnShape, SchemaHistoryEntry } from '../../capture/schema-history.ts';
import { schemaHistoryTopic } from '../../capture/schema-history.ts';
import type { EventLog } from '../../core/event-log.ts';
import { type NatsLogRef, openLogReader } from '../../log/open-event-log.ts';
import { type LakeType, lakeTableName } from './lake-columns.ts';

const TYPES: Readonly<Record<string, LakeType>> = {
  int2: 'BIGINT',
  int4: 'BIGINT',
  int8: 'BIGINT',
  oid: 'BIGINT',
  // The float4 value itself (its shortest text read as a double would not be it).
  float4: 'FLOAT',
  float8: 'DOUBLE',
  bool: 'BOOLEAN',
  date: 'DATE',
  timestamp: 'TIMESTAMP',
  timestamptz: 'TIMESTAMPTZ',
  // Microseconds since midnight, as in the record.
  time: 'BIGINT',
  text: 'VARCHAR',
  varchar: 'VARCHAR',
  bpchar: 'VARCHAR',
  name: 'VARCHAR',
  citext: 'VARCHAR',
  uuid: 'VARCHAR',
  json: 'VARCHAR',
  jsonb: 'VARCHAR',
  bytea: 'VARCHAR',
  interval: 'VARCHAR',
  timetz: 'VARCHAR',
  inet: 'VARCHAR',
  cidr: 'VARCHAR',
  macaddr: 'VARCHAR',
  money: 'VARCHAR',
  xml: 'VARCHAR',
};

/**
 * The lake type of a PostgreSQL column, or undefined for a type this map does not know (a domain,
 * an enum...: typed by its values). numeric(p,s) up to 38 digits is DECIMAL(p,s); a numeric
 * without precision (or wider) stays its exact text (VARCHAR). Arrays are JSON.
 */
export function lakeTypeOf(column: ColumnShape): LakeType | undefined {
  const name = column.typeName;
  if (name === 'numeric') {
    if (column.typeMod < 4) return 'VARCHAR';
    const precision = ((column.typeMod - 4) >> 16) & 0xffff;
    const scale = (column.typeMod - 4) & 0xffff;
    return precision <= 38 && scale <= precision ? `DECIMAL(${precision},${scale})` : 'VARCHAR';
  }
  if (name.startsWith('_')) return 'JSON';
  return TYPES[name];
}

/** How a column's PostgreSQL type reads (`character varying(20)`, `numeric(30,10)`...). */
export function pgTypeText(column: ColumnShape): string {
  return column.typeExpression ?? column.typeName;
}

export class ShapeHistory {
  /** Lake table name → its history entries, oldest first. */
  readonly #entries = new Map<string, SchemaHistoryEntry[]>();
  readonly #next = new Map<number, number>();
  readonly #topic: string;
  #log: EventLog | undefined;

  constructor(
    private readonly dataDir: string,
    topicPrefix: string,
    private readonly nats?: NatsLogRef,
  ) {
    this.#topic = schemaHistoryTopic(topicPrefix);
  }

  /** Reads the history records appended since the last call. */
  async refresh(): Promise<void> {
    this.#log ??= await openLogReader(this.dataDir, this.nats);
    if (!this.#log) return;
    const info = (await this.#log.topics()).find((t) => t.topic === this.#topic);
    for (const p of info?.partitions ?? []) {
      let offset = Math.max(this.#next.get(p.partition) ?? 0, p.startOffset);
      while (offset < p.endOffset) {
        const batch = await this.#log.read(this.#topic, p.partition, offset, 1000);
        if (batch.length === 0) break;
        for (const record of batch) {
          const entry = JSON.parse(record.value ?? 'null') as SchemaHistoryEntry | null;
          if (!entry?.table) continue;
          const table = lakeTableName(entry.table.schema, entry.table.table);
          const list = this.#entries.get(table) ?? [];
          list.push(entry);
          list.sort((a, b) => a.source.lsn - b.source.lsn);
          this.#entries.set(table, list);
        }
        offset = batch.at(-1)!.offset + 1;
      }
      this.#next.set(p.partition, offset);
    }
  }

  /**
   * The entry of `table`'s shape in effect at `lsn`, if any is recorded. A change before the first
   * recorded shape (a snapshot read, recorded when streaming first met the table) takes the first.
   */
  at(table: string, lsn: number): SchemaHistoryEntry | undefined {
    const list = this.#entries.get(table);
    if (!list) return undefined;
    for (let i = list.length - 1; i >= 0; i--) if (list[i]!.source.lsn <= lsn) return list[i];
    return list[0];
  }

  async close(): Promise<void> {
    await this.#log?.close();
    this.#log = undefined;
  }
}
