/**
 * The lake's transactional target. A session owns the lake's catalog connection and an in-memory
 * DuckDB that writes the Parquet files. Each `transaction`: `BEGIN IMMEDIATE` on the catalog
 * (fences any other writer, reads the stored offsets), the batch's changes are buffered in the
 * `LakeTx`, the files are written and fsynced (`LakeWriter`), then the snapshot, its files, new
 * column versions, truncates and the offsets commit in that one SQLite transaction.
 *
 * After a commit, on the same queue (never inside a batch): gold models refresh after
 * `modelsRefreshChanges` changes or `modelsRefreshSeconds`; tables past `compactFiles` live files
 * are compacted; snapshots past their retention expire (once a minute). Their failures are logged
 * and retried later; they never fail a batch.
 */

import { join } from 'node:path';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import type { Logger } from 'pino';
import pino from 'pino';
import type { SchemaHistoryEntry } from '../../capture/schema-history.ts';
import type { ConsumerRecord } from '../../consumers/define-consumer.ts';
import {
  OFFSETS_TABLE,
  partitionKey,
  type TargetSession,
  type TransactionalTarget,
} from '../../consumers/transactional.ts';
import { recordValueText } from '../../consumers/worker/batch-handler.ts';
import type { NatsLogRef } from '../../log/open-event-log.ts';
import { LakeBatch } from './lake-batch.ts';
import { type Columns, LakeCatalog } from './lake-catalog.ts';
import { ColumnSet, lakeTableName, type ShapeTypes } from './lake-columns.ts';
import {
  type EnvelopeSpans,
  emptySpans,
  fieldAt,
  fieldText,
  readEnvelope,
  skipString,
  skipValue,
  stringAt,
} from './lake-envelope.ts';
import { applyBronzeRetention, compact, expire, removeOrphans } from './lake-maintenance.ts';
import { loadModels, refreshModels } from './lake-models.ts';
import type { LakeOptions } from './lake-options.ts';
import { RowTypes } from './lake-row-types.ts';
import { lakeTypeOf, pgTypeText, ShapeHistory } from './lake-shapes.ts';
import { LakeWriter } from './lake-writer.ts';

export { lakeTableName };

/** What would split a staged line (lake-writer.ts). */
const UNSAFE = /[\n\x1f]/g;
const INTEGER = /^-?[0-9]+$/;

/** Field `key` of the flat object `[from, to)` (see `fieldText`); undefined for none or `null`. */
function sourceField(text: string, from: number, to: number, key: string): string | undefined {
  if (from < 0) return undefined;
  const value = fieldText(text, from, to, key);
  return value === 'null' ? undefined : value;
}

/** The JSON string at `at` of `text`, undefined when the value there is not a string. */
function jsonString(text: string, at: number): string | undefined {
  if (text.charCodeAt(at) !== 0x22) return undefined;
  const end = skipString(text, at);
  return end < 0 ? undefined : stringAt(text, at, end);
}

/**
 * `text` with its line breaks (then whitespace between tokens: a raw one inside a string is not
 * JSON, and `JSON.parse` says so) turned into spaces; `spans` read again.
 */
function flatten(text: string, spans: EnvelopeSpans): string {
  const flat = flattenJson(text);
  readEnvelope(flat, spans);
  return flat;
}

function flattenJson(text: string): string {
  JSON.parse(text);
  return text.replace(/[\n\r]/g, ' ');
}

/** One batch being applied: its changes, and its tables' columns widened by them. */
export class LakeTx {
  readonly batch = new LakeBatch();
  readonly columns = new Map<string, ColumnSet>();
  /** Per schema history entry met in this batch: the columns it types. */
  readonly #typed = new Map<SchemaHistoryEntry, ShapeTypes>();
  #commitSource: string | undefined;
  #commitUs = 0;
  #commitText = '0';
  #lastTable: { readonly raw: string; readonly name: string } | undefined;
  readonly #rows = new Map<string, Map<SchemaHistoryEntry | undefined, RowTypes>>();
  readonly #spans: EnvelopeSpans = emptySpans();

  constructor(
    private readonly catalog: LakeCatalog,
    private readonly shapes?: ShapeHistory,
  ) {}

  /**
   * Buffers the batch's change events (tombstones skipped) and widens their tables' columns by
   * them. Reads each record's JSON text in place (lake-envelope.ts), never `JSON.parse` of the
   * whole record.
   */
  add(batch: readonly ConsumerRecord<unknown>[]): void {
    const spans = this.#spans;
    for (const r of batch) {
      let text = recordValueText(r);
      if (text === undefined) text = r.value == null ? null : JSON.stringify(r.value);
      if (text === null || !readEnvelope(text, spans) || !spans.op) continue;
      // A line break or unit separator would split DuckDB's staged lines (lake-writer.ts).
      if (text.includes('\n') || text.includes('\x1f')) text = flatten(text, spans);
      const { sourceStart: from, sourceEnd: to } = spans;
      const table = this.#table(text, from, to, r.topic);
      let cols = this.columns.get(table);
      if (!cols) {
        cols = new ColumnSet(table, this.catalog.columns(table));
        this.columns.set(table, cols);
      }
      const lsnText = sourceField(text, from, to, 'lsn"') ?? '0';
      const lsn = Number(lsnText);
      if (spans.afterStart >= 0 && text.charCodeAt(spans.afterStart) === 0x7b) {
        this.#rowTypes(table, cols, this.shapes?.at(table, lsn)).observe(text, spans.afterStart);
      }
      const key = r.key?.includes('\n') || r.key?.includes('\x1f') ? flattenJson(r.key) : r.key;
      this.#commitTime(text, from, to, r.timestamp);
      const { transactionStart: t, transactionEnd: tEnd } = spans;
      this.batch.push(
        table,
        lsn,
        lsnText,
        r.partition,
        r.offset,
        spans.op.length > 1 ? spans.op.replace(UNSAFE, ' ') : spans.op,
        this.#commitUs,
        this.#commitText,
        sourceField(text, from, to, 'txId"') ?? null,
        t < 0 ? null : (sourceField(text, t, tEnd, 'total_order"') ?? null),
        key,
        spans.beforeStart < 0 ? null : text.slice(spans.beforeStart, spans.beforeEnd),
        spans.afterStart < 0 ? null : text.slice(spans.afterStart, spans.afterEnd),
      );
    }
  }

  /**
   * The change's commit time (`source.ts_us`, else `ts_ms`, else the record's timestamp) into
   * `#commitUs` and its integer text; the last one is kept (a transaction's changes share it).
   */
  #commitTime(text: string, from: number, to: number, timestamp: number): void {
    const us = sourceField(text, from, to, 'ts_us"');
    if (us !== undefined && us === this.#commitSource) return;
    this.#commitSource = us;
    if (us !== undefined && INTEGER.test(us)) {
      this.#commitUs = Number(us);
      this.#commitText = us;
      return;
    }
    const ms = us === undefined ? sourceField(text, from, to, 'ts_ms"') : undefined;
    this.#commitUs = us !== undefined ? Number(us) : (ms !== undefined ? Number(ms) : timestamp) * 1000;
    this.#commitText = String(Math.trunc(this.#commitUs));
  }

  /**
   * The lake table of a change: its source's schema and table (the topic's last part without
   * them). The last one is kept: consecutive changes are mostly of one table.
   */
  #table(text: string, from: number, to: number, topic: string): string {
    const schemaAt = from < 0 ? -1 : fieldAt(text, from, to, 'schema"');
    const tableAt = from < 0 ? -1 : fieldAt(text, from, to, 'table"');
    const last = this.#lastTable;
    if (schemaAt >= 0 && schemaAt < tableAt && last && text.startsWith(last.raw, schemaAt)) {
      if (skipValue(text, tableAt) === schemaAt + last.raw.length) return last.name;
    }
    const schema = schemaAt < 0 ? undefined : jsonString(text, schemaAt);
    const name = tableAt < 0 ? undefined : jsonString(text, tableAt);
    const table = lakeTableName(schema ?? 'public', name ?? topic.split('.').at(-1)!);
    if (schema !== undefined && name !== undefined && schemaAt < tableAt) {
      this.#lastTable = { raw: text.slice(schemaAt, skipValue(text, tableAt)), name: table };
    }
    return table;
  }

  /** The row typing of `table` under `entry` (one per table and shape in a batch). */
  #rowTypes(table: string, cols: ColumnSet, entry: SchemaHistoryEntry | undefined): RowTypes {
    let byEntry = this.#rows.get(table);
    if (!byEntry) {
      byEntry = new Map();
      this.#rows.set(table, byEntry);
    }
    let types = byEntry.get(entry);
    if (!types) {
      types = new RowTypes(cols, entry ? this.#typesOf(entry) : undefined);
      byEntry.set(entry, types);
    }
    return types;
  }

  /** The lake types of `entry`'s columns, by their PostgreSQL types (once per entry). */
  #typesOf(entry: SchemaHistoryEntry): ShapeTypes {
    const known = this.#typed.get(entry);
    if (known) return known;
    const types = new Map<string, ShapeTypes extends ReadonlyMap<string, infer T> ? T : never>();
    for (const column of entry.table.columns) {
      const type = lakeTypeOf(column);
      if (type === undefined) continue;
      const change = entry.changes?.typeChanged.find((c) => c.column === column.name);
      types.set(column.name, {
        type,
        describe: (from, to) => [change ? `${change.from} (${from})` : from, `${pgTypeText(column)} (${to})`],
      });
    }
    this.#typed.set(entry, types);
    return types;
  }
}

export class LakeTarget implements TransactionalTarget<LakeTx> {
  readonly kind = 'lake';
  readonly description: string;
  logger: Logger = pino({ level: 'silent' });

  constructor(
    readonly root: string,
    private readonly options: LakeOptions,
    /** Where the capture's schema history is (types by PostgreSQL type); unset: types by value. */
    private readonly history?: {
      readonly dataDir: string;
      readonly topicPrefix: string;
      readonly log?: NatsLogRef;
    },
  ) {
    this.description = `lake:${root}`;
  }

  async open(): Promise<TargetSession<LakeTx>> {
    const catalog = new LakeCatalog(join(this.root, 'catalog.db'));
    // Bounded whatever the backlog: a batch is staged and written at once; larger sorts spill.
    const instance = await DuckDBInstance.create(':memory:', {
      threads: '2',
      memory_limit: '256MB',
      temp_directory: join(this.root, '.tmp'),
    });
    const connection = await instance.connect();
    const orphans = removeOrphans(catalog, this.root);
    if (orphans.length)
      this.logger.info({ orphans: orphans.length }, 'removed files no snapshot named (crash leftovers)');
    const writer = new LakeWriter(connection, this.root);
    const shapes = this.history
      ? new ShapeHistory(this.history.dataDir, this.history.topicPrefix, this.history.log)
      : undefined;
    const upsert = catalog.db.prepare(
      `insert into ${OFFSETS_TABLE} values (?, ?, ?, ?, ?) on conflict do update set
         next_offset = excluded.next_offset, updated_at = excluded.updated_at`,
    );
    const current = catalog.db.prepare(
      `select next_offset as offset from ${OFFSETS_TABLE} where group_name = ? and topic = ? and partition = ?`,
    );
    const state = { changes: 0, lastRefresh: Date.now(), lastExpiry: 0 };
    let queue: Promise<unknown> = Promise.resolve();
    const enqueue = <T>(run: () => Promise<T>): Promise<T> => {
      const result = queue.then(run, run);
      queue = result.catch(() => {});
      return result;
    };
    const maintain = async () => {
      try {
        await this.#maintain(connection, catalog, state);
      } catch (error) {
        this.logger.error({ err: error }, 'lake maintenance failed; it runs again after the next batch');
      }
    };
    const timer = setInterval(() => {
      if (state.changes > 0) void enqueue(maintain);
    }, this.options.modelsRefreshSeconds * 1000);
    timer.unref();
    return {
      offsets: async (group, partitions) => {
        const rows = catalog.db
          .prepare(
            `select topic, partition, next_offset as offset from ${OFFSETS_TABLE} where group_name = ?`,
          )
          .all(group) as { topic: string; partition: number; offset: number }[];
        const wanted = new Set(partitions.map((p) => partitionKey(p.topic, p.partition)));
        return new Map(
          rows
            .filter((r) => wanted.has(partitionKey(r.topic, r.partition)))
            .map((r) => [partitionKey(r.topic, r.partition), r.offset]),
        );
      },
      transaction: (group, offsets, work) =>
        enqueue(async () => {
          await catalog.write(async () => {
            const stored = new Map<string, number>();
            for (const o of offsets) {
              const row = current.get(group, o.topic, o.partition) as { offset: number } | undefined;
              if (row !== undefined) stored.set(partitionKey(o.topic, o.partition), row.offset);
            }
            await shapes?.refresh();
            const tx = new LakeTx(catalog, shapes);
            await work(tx, stored);
            const columns = new Map<string, Columns>();
            for (const [t, c] of tx.columns) if (c.changed) columns.set(t, c.columns());
            const { batch } = tx;
            const files = await writer.write(batch, (t) => tx.columns.get(t)!.columns());
            const truncates: { name: string; lsn: number; off: number }[] = [];
            for (let i = 0; i < batch.length; i++) {
              if (batch.ops[i] === 't')
                truncates.push({ name: batch.tables[i]!, lsn: batch.lsns[i]!, off: batch.offsets[i]! });
            }
            if (files.length || truncates.length || columns.size) {
              catalog.addSnapshot({ kind: 'append', added: files, columns, truncates, now: Date.now() });
            }
            const now = Date.now();
            for (const o of offsets) {
              const next = Math.max(o.offset, stored.get(partitionKey(o.topic, o.partition)) ?? 0);
              upsert.run(group, o.topic, o.partition, next, now);
            }
            state.changes += tx.batch.length;
          });
          if (state.changes >= this.options.modelsRefreshChanges || Date.now() - state.lastExpiry > 60_000) {
            await maintain();
          } else {
            // Compaction by file count runs after every batch (cheap when nothing is past the bound).
            try {
              await compact(connection, catalog, this.root, { minFiles: this.options.compactFiles });
            } catch (error) {
              this.logger.error({ err: error }, 'lake compaction failed; it runs again after the next batch');
            }
          }
        }),
      close: async () => {
        clearInterval(timer);
        await queue;
        await shapes?.close();
        connection.closeSync();
        instance.closeSync();
        catalog.close();
      },
    };
  }

  async #maintain(
    connection: DuckDBConnection,
    catalog: LakeCatalog,
    state: { changes: number; lastRefresh: number; lastExpiry: number },
  ): Promise<void> {
    await compact(connection, catalog, this.root, { minFiles: this.options.compactFiles });
    if (state.changes > 0) {
      state.changes = 0;
      state.lastRefresh = Date.now();
      const results = await refreshModels(
        connection,
        catalog,
        this.root,
        loadModels(join(this.root, 'models')),
      );
      for (const r of results) if (r.error) this.logger.error({ model: r.name }, r.error);
    }
    if (Date.now() - state.lastExpiry > 60_000) {
      state.lastExpiry = Date.now();
      if (this.options.bronzeRetentionDays !== undefined) {
        await applyBronzeRetention(catalog, this.options.bronzeRetentionDays);
      }
      await expire(catalog, this.root, this.options.snapshotRetentionHours * 3_600_000);
    }
  }
}
