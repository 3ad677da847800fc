/**
 * The record Debezium users get from the ExtractNewRecordState SMT configured with
 * `delete.handling.mode=rewrite` and `add.fields=op,table,schema,lsn,source.ts_ms`: the row itself,
 * flattened, plus `__op`, `__table`, `__schema`, `__lsn`, `__source_ts_ms` and `__deleted`.
 * Deletes carry the old row with `"__deleted":"true"`; truncates produce no record.
 */
import type { ChangeEvent, LogicalMessage, Op, Tuple } from '../../core/change-event.ts';
import type { Encoder, EventContext, StandaloneMessageContext } from '../../core/encoder.ts';
import type { AppendRecord } from '../../core/record.ts';
import { NO_HEADERS } from '../debezium/debezium-encoder.ts';
import { encodeLogicalMessage } from '../debezium/debezium-message.ts';
import {
  EncodeError,
  keyChanged,
  type RowPlan,
  RowPlanCache,
  requireAfter,
  rowHeaders,
  topicFor,
} from '../row-json.ts';

export interface UnwrapEncoderOptions {
  /** First part of every topic: `<topicPrefix>.<schema>.<table>`. */
  readonly topicPrefix: string;
  /** Follow each delete with a tombstone (null value) for log compaction. Default true. */
  readonly tombstones?: boolean;
}

export class UnwrapEncoder implements Encoder {
  readonly #plans: RowPlanCache;
  readonly #topicPrefix: string;
  readonly #tombstones: boolean;
  #commitTimeUs = -1n;
  #commitTimeMs = 0;

  constructor(options: UnwrapEncoderOptions) {
    this.#topicPrefix = options.topicPrefix;
    this.#tombstones = options.tombstones ?? true;
    this.#plans = new RowPlanCache(options.topicPrefix);
  }

  topicFor(schema: string, table: string): string {
    return topicFor(this.#topicPrefix, schema, table);
  }

  encode(event: ChangeEvent, context: EventContext, out: AppendRecord[]): void {
    // A truncate has no row to flatten; a record without one would read as an empty row.
    if (event.op === 't') return;
    if (event.op === 'm')
      throw new EncodeError('logical messages are not row changes; encode them with encodeMessage');
    const plan = this.#plans.get(event.relation);
    if (context.commitTimeUs !== this.#commitTimeUs) {
      this.#commitTimeUs = context.commitTimeUs;
      this.#commitTimeMs = Number(context.commitTimeUs / 1000n);
    }
    if (event.op === 'd') {
      // With REPLICA IDENTITY DEFAULT the old row holds the key columns only (the rest null).
      this.#delete(plan, event, event.before, out);
      return;
    }
    const row = requireAfter(event);
    if (event.op === 'u' && event.before !== null && keyChanged(event)) {
      // As ExtractNewRecordState does with Debezium's split: the old key deleted, the new created.
      this.#delete(plan, event, event.before, out);
      this.#push(
        plan,
        event,
        'c',
        plan.key(row),
        plan.fields(row),
        false,
        rowHeaders(plan.relation, row, event.fetchedToast),
        out,
      );
      return;
    }
    const headers = event.op === 'u' ? rowHeaders(plan.relation, row, event.fetchedToast) : NO_HEADERS;
    this.#push(plan, event, event.op, plan.key(row), plan.fields(row), false, headers, out);
  }

  /**
   * Logical messages have no row: like ExtractNewRecordState, which passes records that are not
   * change events through unchanged, this writes Debezium's message record.
   */
  encodeMessage(
    message: LogicalMessage,
    context: EventContext | StandaloneMessageContext,
    out: AppendRecord[],
  ): void {
    encodeLogicalMessage(this.#topicPrefix, message, context, out);
  }

  #delete(plan: RowPlan, event: ChangeEvent, before: Tuple | null, out: AppendRecord[]): void {
    const key = before === null ? null : plan.key(before);
    const fields = before === null ? '' : plan.fields(before);
    this.#push(plan, event, 'd', key, fields, true, NO_HEADERS, out);
    if (this.#tombstones && key !== null)
      out.push({ topic: plan.topic, key, value: null, headers: NO_HEADERS, timestamp: this.#commitTimeMs });
  }

  #push(
    plan: RowPlan,
    event: ChangeEvent,
    op: Op,
    key: string | null,
    fields: string,
    deleted: boolean,
    headers: Readonly<{ [name: string]: string }>,
    out: AppendRecord[],
  ): void {
    const value =
      `{${fields}${fields === '' ? '' : ','}"__op":"${op}","__table":${plan.tableJson}` +
      `,"__schema":${plan.schemaJson},"__lsn":${event.lsn},"__source_ts_ms":${this.#commitTimeMs}` +
      `,"__deleted":"${deleted}"}`;
    out.push({ topic: plan.topic, key, value, headers, timestamp: this.#commitTimeMs });
  }
}
