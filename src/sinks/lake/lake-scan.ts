/**
 * Reading a batch's records for the lake: each record's JSON text in place (lake-envelope.ts),
 * never `JSON.parse` of the whole record, into a `LakeBatch` (the staged lines and the values
 * the writer decides with) and, per change with a row image, where that image is (for the column
 * typing, which needs the catalog and is done in the transaction: `LakeTx.adopt`).
 *
 * A scan depends only on the records: it may run ahead of its batch's transaction
 * (`ConsumerContext.upcoming`), in chunks that leave the event loop to the DuckDB work of the
 * batch being written (`scanInChunks`).
 */
import type { ConsumerRecord } from '../../consumers/define-consumer.ts';
import { recordValueText } from '../../consumers/worker/batch-handler.ts';
import { LakeBatch } from './lake-batch.ts';
import { lakeTableName } from './lake-columns.ts';
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

/** What would split a staged line (lake-writer.ts). */
const UNSAFE = /[\n\x1f]/g;
const INTEGER = /^-?[0-9]+$/;
/** Records scanned between two yields of `scanInChunks`. */
const CHUNK = 1000;

/** A scanned batch: its changes, and per change the text and position of its `after` object. */
export interface LakeScan {
  readonly batch: LakeBatch;
  /** The record text each change was read from (flattened when it held line breaks). */
  readonly texts: string[];
  /** Where the change's `after` object starts in its text; -1 when it has none. */
  readonly afterAt: number[];
}

/** Scans `records` at once. */
export function scanLake(records: readonly ConsumerRecord<unknown>[]): LakeScan {
  const scanner = new LakeScanner();
  scanner.add(records, 0, records.length);
  return scanner.scan;
}

/** Scans `records` a chunk at a time, yielding to the event loop before each chunk. */
export async function scanInChunks(records: readonly ConsumerRecord<unknown>[]): Promise<LakeScan> {
  const scanner = new LakeScanner();
  for (let from = 0; from < records.length; from += CHUNK) {
    await new Promise((resolve) => setImmediate(resolve));
    scanner.add(records, from, Math.min(records.length, from + CHUNK));
  }
  return scanner.scan;
}

class LakeScanner {
  readonly scan: LakeScan = { batch: new LakeBatch(), texts: [], afterAt: [] };
  readonly #spans: EnvelopeSpans = emptySpans();
  #commitSource: string | undefined;
  #commitUs = 0;
  #commitText = '0';
  #lastTable: { readonly raw: string; readonly name: string } | undefined;

  /** Adds the change events of `records[from, to)` (tombstones skipped). */
  add(records: readonly ConsumerRecord<unknown>[], from: number, to: number): void {
    const spans = this.#spans;
    const { batch, texts, afterAt } = this.scan;
    for (let i = from; i < to; i++) {
      const r = records[i]!;
      let text = recordValueText(r);
      if (text === undefined) text = r.value == null ? null : JSON.stringify(r.value);
      if (text === null || !readEnvelope(text, spans) || !spans.op) continue;
      // A line break or unit separator would split DuckDB's staged lines (lake-writer.ts).
      if (text.includes('\n') || text.includes('\x1f')) text = flatten(text, spans);
      const { sourceStart: s, sourceEnd: e } = spans;
      const table = this.#table(text, s, e, r.topic);
      const lsnText = sourceField(text, s, e, 'lsn"') ?? '0';
      const key = r.key?.includes('\n') || r.key?.includes('\x1f') ? flattenJson(r.key) : r.key;
      this.#commitTime(text, s, e, r.timestamp);
      const { transactionStart: t, transactionEnd: tEnd } = spans;
      texts.push(text);
      afterAt.push(
        spans.afterStart >= 0 && text.charCodeAt(spans.afterStart) === 0x7b ? spans.afterStart : -1,
      );
      batch.push(
        table,
        Number(lsnText),
        lsnText,
        r.partition,
        r.offset,
        spans.op.length > 1 ? spans.op.replace(UNSAFE, ' ') : spans.op,
        this.#commitUs,
        this.#commitText,
        sourceField(text, s, e, 'txId"') ?? null,
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
}

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
