/**
 * Records for `pg_logical_emit_message` messages, as Debezium's PostgreSQL connector writes its
 * logical decoding message events: topic `<topicPrefix>.message`, key `{"prefix":…}`, value
 * `{op:"m", ts_*, source, transaction, message:{prefix, content}}` with the content in base64.
 * `source.schema` and `source.table` are empty strings. A non-transactional message has
 * `txId: null`, `transaction: null`, and the processing time as its `source.ts_*` and record
 * timestamp (it has no commit time).
 */
import packageJson from '../../../package.json' with { type: 'json' };
import type { LogicalMessage } from '../../core/change-event.ts';
import type { EventContext, StandaloneMessageContext } from '../../core/encoder.ts';
import type { AppendRecord } from '../../core/record.ts';

/** Headers of every message record: none. */
const NO_HEADERS: Readonly<{ [name: string]: string }> = Object.freeze({});

/** Debezium's message topic: `<topicPrefix>.message`. */
export function messageTopic(topicPrefix: string): string {
  return `${topicPrefix}.message`;
}

function times(us: bigint): string {
  return `"ts_ms":${us / 1000n},"ts_us":${us},"ts_ns":${us * 1000n}`;
}

export function encodeLogicalMessage(
  topicPrefix: string,
  message: LogicalMessage,
  context: EventContext | StandaloneMessageContext,
  out: AppendRecord[],
): void {
  const tx = 'xid' in context ? context : null;
  const sourceTimeUs = tx ? tx.commitTimeUs : context.nowUs;
  const prefix = JSON.stringify(message.prefix);
  const lsn = message.lsn.toString();
  const last = context.lastCommittedLsn === 0n ? 'null' : `\\"${context.lastCommittedLsn}\\"`;
  const transaction = tx
    ? `{"id":"${tx.xid}:${tx.commitLsn}","total_order":${tx.totalOrder},"data_collection_order":${tx.dataCollectionOrder}}`
    : 'null';
  const value =
    `{"op":"m",${times(context.nowUs)},"source":{"version":${JSON.stringify(packageJson.version)}` +
    `,"connector":"postgresql","name":${JSON.stringify(context.serverName)},${times(sourceTimeUs)}` +
    `,"snapshot":"false","db":${JSON.stringify(context.database)},"sequence":"[${last},\\"${lsn}\\"]"` +
    `,"schema":"","table":"","txId":${tx ? tx.xid : 'null'},"lsn":${lsn},"xmin":null}` +
    `,"transaction":${transaction},"message":{"prefix":${prefix},"content":"${message.content.toString('base64')}"}}`;
  out.push({
    topic: messageTopic(topicPrefix),
    key: `{"prefix":${prefix}}`,
    value,
    headers: NO_HEADERS,
    timestamp: Number(sourceTimeUs / 1000n),
  });
}
