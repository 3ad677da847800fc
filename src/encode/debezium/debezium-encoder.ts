/**
 * Debezium's PostgreSQL change-event envelope, as the JSON converter writes it with
 * `schemas.enable=false`: the key is the key columns' object, the value is
 * `{before, after, source, transaction, op, ts_ms, ts_us, ts_ns}`.
 */
import packageJson from '../../../package.json' with { type: 'json' };
import type { ChangeEvent, LogicalMessage, Op, Tuple } from '../../core/change-event.ts';
import type { Encoder, EventContext, StandaloneMessageContext } from '../../core/encoder.ts';
import type { Lsn } from '../../core/lsn.ts';
import type { AppendRecord } from '../../core/record.ts';
import {
  EncodeError,
  keyChanged,
  type RowPlan,
  RowPlanCache,
  requireAfter,
  rowHeaders,
  topicFor,
} from '../row-json.ts';
import { encodeLogicalMessage } from './debezium-message.ts';

export interface DebeziumEncoderOptions {
  /** First part of every topic: `<topicPrefix>.<schema>.<table>`. */
  readonly topicPrefix: string;
  /** Follow each delete with a tombstone (null value) for log compaction. Default true. */
  readonly tombstones?: boolean;
}

/**
 * Headers of most records: none. Debezium's PK-change headers (`__debezium.oldkey`/`newkey`) are
 * left out: they would hold key values, and headers never hold row data. The only header is
 * `tributary.unchanged_toast` (see `rowHeaders`).
 */
export const NO_HEADERS: Readonly<{ [name: string]: string }> = Object.freeze({});

/** `"ts_ms":…,"ts_us":…,"ts_ns":…` from microseconds since the epoch. */
export function timestampFields(us: bigint): string {
  return `"ts_ms":${us / 1000n},"ts_us":${us},"ts_ns":${us * 1000n}`;
}

/**
 * Encodes change events. Stateless apart from caches: per Relation (field names, converters) and
 * of the last context values seen, since consecutive events mostly share their transaction.
 */
export class DebeziumEncoder implements Encoder {
  readonly #plans: RowPlanCache;
  readonly #topicPrefix: string;
  readonly #tombstones: boolean;

  #serverName: string | undefined;
  #database: string | undefined;
  #databaseJson = '';
  #sourceHead = '';
  #commitTimeUs = -1n;
  #sourceTimes = '';
  #timestamp = 0;
  #nowUs = -1n;
  #nowTimes = '';
  #lastCommittedLsn = -1n;
  #sequenceHead = '';
  #xid = -1;
  #commitLsn = -1n;
  #transactionHead = '';

  constructor(options: DebeziumEncoderOptions) {
    this.#topicPrefix = options.topicPrefix;
    this.#tombstones = options.tombstones ?? true;
    this.#plans = new RowPlanCache(options.topicPrefix);
  }

  topicFor(schema: string, table: string): string {
    return topicFor(this.#topicPrefix, schema, table);
  }

  encode(event: ChangeEvent, context: EventContext, out: AppendRecord[]): void {
    const plan = this.#plans.get(event.relation);
    this.#refresh(context);
    const relation = event.relation;
    switch (event.op) {
      case 'c':
      case 'r': {
        const row = requireAfter(event);
        this.#push(plan, event, context, event.op, plan.key(row), 'null', row, out);
        return;
      }
      case 'u': {
        const row = requireAfter(event);
        const before = event.before;
        if (before !== null && keyChanged(event)) {
          // As Debezium: a delete of the old key (and its tombstone), then a create of the new key.
          this.#delete(plan, event, context, before, out);
          this.#push(plan, event, context, 'c', plan.key(row), 'null', row, out);
          return;
        }
        const old = before === null ? 'null' : `{${plan.fields(before)}}`;
        this.#push(plan, event, context, 'u', plan.key(row), old, row, out);
        return;
      }
      case 'd':
        if (event.before === null) {
          this.#push(plan, event, context, 'd', null, 'null', null, out);
          return;
        }
        this.#delete(plan, event, context, event.before, out);
        return;
      case 't':
        this.#push(plan, event, context, 't', null, 'null', null, out);
        return;
      case 'm':
        throw new EncodeError(
          `logical messages are not row changes of ${relation.schema}.${relation.table}; encode them with encodeMessage`,
        );
    }
  }

  encodeMessage(
    message: LogicalMessage,
    context: EventContext | StandaloneMessageContext,
    out: AppendRecord[],
  ): void {
    encodeLogicalMessage(this.#topicPrefix, message, context, out);
  }

  /** A delete record from the old row, then its tombstone (a keyless table's delete gets none). */
  #delete(
    plan: RowPlan,
    event: ChangeEvent,
    context: EventContext,
    before: Tuple,
    out: AppendRecord[],
  ): void {
    const key = plan.key(before);
    out.push(this.#record(plan, event, context, 'd', key, `{${plan.fields(before)}}`, 'null', NO_HEADERS));
    // Compaction needs a key: a keyless table's delete gets no tombstone.
    if (this.#tombstones && key !== null)
      out.push({ topic: plan.topic, key, value: null, headers: NO_HEADERS, timestamp: this.#timestamp });
  }

  /** A record whose `after` is `row` (or null), with the unchanged TOAST header when needed. */
  #push(
    plan: RowPlan,
    event: ChangeEvent,
    context: EventContext,
    op: Op,
    key: string | null,
    before: string,
    row: Tuple | null,
    out: AppendRecord[],
  ): void {
    const after = row === null ? 'null' : `{${plan.fields(row)}}`;
    // Only an update's new row can hold unsent values; inserts and snapshot reads never do.
    const headers = event.op === 'u' ? rowHeaders(event.relation, row, event.fetchedToast) : NO_HEADERS;
    out.push(this.#record(plan, event, context, op, key, before, after, headers));
  }

  #record(
    plan: RowPlan,
    event: ChangeEvent,
    context: EventContext,
    op: Op,
    key: string | null,
    before: string,
    after: string,
    headers: Readonly<{ [name: string]: string }>,
  ): AppendRecord {
    const lsn = event.lsn.toString();
    const value =
      `{"before":${before},"after":${after},"source":${this.#sourceHead}${this.#sourceTimes}` +
      `,"snapshot":"${context.snapshot}","db":${this.#databaseJson}` +
      `,"sequence":"${this.#sequenceHead}\\"${lsn}\\"]","schema":${plan.schemaJson},"table":${plan.tableJson}` +
      `,"txId":${context.xid},"lsn":${lsn},"xmin":null},"transaction":${this.#transactionHead}` +
      `${context.totalOrder},"data_collection_order":${context.dataCollectionOrder}}` +
      `,"op":"${op}",${this.#nowTimes}}`;
    return { topic: plan.topic, key, value, headers, timestamp: this.#timestamp };
  }

  /** Re-renders the context-derived fragments that changed since the previous event. */
  #refresh(context: EventContext): void {
    if (context.serverName !== this.#serverName || context.database !== this.#database) {
      this.#serverName = context.serverName;
      this.#database = context.database;
      this.#databaseJson = JSON.stringify(context.database);
      this.#sourceHead =
        `{"version":${JSON.stringify(packageJson.version)},"connector":"postgresql",` +
        `"name":${JSON.stringify(context.serverName)},`;
    }
    if (context.commitTimeUs !== this.#commitTimeUs) {
      this.#commitTimeUs = context.commitTimeUs;
      this.#sourceTimes = timestampFields(context.commitTimeUs);
      this.#timestamp = Number(context.commitTimeUs / 1000n);
    }
    if (context.nowUs !== this.#nowUs) {
      this.#nowUs = context.nowUs;
      this.#nowTimes = timestampFields(context.nowUs);
    }
    if (context.lastCommittedLsn !== this.#lastCommittedLsn) {
      this.#lastCommittedLsn = context.lastCommittedLsn;
      this.#sequenceHead = sequenceHead(context.lastCommittedLsn);
    }
    if (context.xid !== this.#xid || context.commitLsn !== this.#commitLsn) {
      this.#xid = context.xid;
      this.#commitLsn = context.commitLsn;
      this.#transactionHead = `{"id":"${context.xid}:${context.commitLsn}","total_order":`;
    }
  }
}

/** `[\"<last>\",` inside the JSON string `source.sequence`; `null` before any commit is known. */
function sequenceHead(lastCommittedLsn: Lsn): string {
  return lastCommittedLsn === 0n ? '[null,' : `[\\"${lastCommittedLsn}\\",`;
}
