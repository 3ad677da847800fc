/**
 * Encoder throughput: 1,000,000 insert events of an 8-column row through the Debezium encoder
 * (and the unwrap encoder for comparison), one core. Run: npx tsx bench/encoder.ts [events]
 * Reference: Debezium's own figures are per connector task, end to end; this measures encoding only.
 */
import type { ChangeEvent, Column, ColumnType, Relation } from '../src/core/change-event.ts';
import type { Encoder, EventContext } from '../src/core/encoder.ts';
import type { AppendRecord } from '../src/core/record.ts';
import { createEncoder } from '../src/encode/index.ts';

const count = Number(process.argv[2] ?? 1_000_000);

function column(name: string, oid: number, typeName: string, isKey = false): Column {
  const type: ColumnType = { kind: 'base', oid, name: typeName };
  return { name, typeOid: oid, typeMod: -1, isKey, type };
}

const relation: Relation = {
  id: 16384,
  schema: 'public',
  table: 'orders',
  replicaIdentity: 'default',
  columns: [
    column('id', 23, 'int4', true),
    column('customer_id', 20, 'int8'),
    column('note', 25, 'text'),
    column('amount', 1700, 'numeric'),
    column('created_at', 1184, 'timestamptz'),
    column('paid', 16, 'bool'),
    column('details', 3802, 'jsonb'),
    column('status', 1043, 'varchar'),
  ],
  keyIndexes: [0],
};

// Distinct rows, prepared up front so the loop measures the encoder and not the generator.
const distinct = 1024;
const events: ChangeEvent[] = [];
for (let i = 0; i < distinct; i++) {
  const after = [
    String(i + 1),
    String(9007199254740993n + BigInt(i)),
    `order note ${i} with "quotes" and ünïcode`,
    `${i}12345.678901234567890`,
    `2024-03-${String((i % 28) + 1).padStart(2, '0')} 10:${String(i % 60).padStart(2, '0')}:05.${String(i).padStart(6, '0')}+00`,
    i % 2 === 0 ? 't' : 'f',
    `{"sku": "A-${i}", "qty": ${i % 7}, "price": 12.5}`,
    i % 3 === 0 ? 'shipped' : 'pending',
  ];
  events.push({ op: 'c', relation, before: null, after, lsn: 0x16b3748n + BigInt(i * 64) });
}

/** What the log will do with each record: its UTF-8 bytes (this also flattens V8's string ropes). */
function drain(out: AppendRecord[]): number {
  let bytes = 0;
  for (const record of out)
    bytes += Buffer.byteLength(record.value ?? '') + Buffer.byteLength(record.key ?? '');
  out.length = 0;
  return bytes;
}

function run(encoder: Encoder, label: string): void {
  const out: AppendRecord[] = [];
  let bytes = 0;
  const context = {
    serverName: 'bench',
    database: 'shop',
    xid: 1000,
    commitLsn: 0x2000000n,
    lastCommittedLsn: 0x1ffff00n,
    commitTimeUs: 1_710_000_000_000_000n,
    totalOrder: 1,
    dataCollectionOrder: 1,
    snapshot: 'false' as const,
    nowUs: 1_710_000_000_100_000n,
  };
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i++) {
    // A transaction per 100 events, so the per-transaction caches are exercised as in real streams.
    if (i % 100 === 0) {
      context.xid++;
      context.commitTimeUs += 1000n;
      context.nowUs += 1000n;
    }
    context.totalOrder = (i % 100) + 1;
    context.dataCollectionOrder = context.totalOrder;
    encoder.encode(events[i % distinct] as ChangeEvent, context satisfies EventContext, out);
    if (out.length >= 1000) bytes += drain(out);
  }
  bytes += drain(out);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const rate = Math.round(count / seconds);
  console.log(
    `${label}: ${count.toLocaleString('en')} events in ${seconds.toFixed(2)} s = ` +
      `${rate.toLocaleString('en')} events/s (${((bytes / seconds) * 1e-6).toFixed(0)} MB/s of keys and values)`,
  );
}

// Twice each: the first round includes JIT warm-up.
for (let round = 1; round <= 2; round++) {
  run(createEncoder({ format: 'debezium', topicPrefix: 'bench' }), `debezium (round ${round})`);
  run(createEncoder({ format: 'unwrap', topicPrefix: 'bench' }), `unwrap (round ${round})`);
}
