import { describe, expect, it } from 'vitest';
import packageJson from '../../../package.json' with { type: 'json' };
import type { ChangeEvent, Column, ColumnType, Relation, Tuple } from '../../core/change-event.ts';
import type { EventContext } from '../../core/encoder.ts';
import type { AppendRecord } from '../../core/record.ts';
import { createEncoder } from '../index.ts';
import { DebeziumEncoder } from './debezium-encoder.ts';

function column(name: string, oid: number, typeName: string, isKey = false): Column {
  const type: ColumnType = { kind: 'base', oid, name: typeName };
  return { name, typeOid: oid, typeMod: -1, isKey, type };
}

const orders: Relation = {
  id: 1,
  schema: 'Shop',
  table: 'Ordér "items"',
  replicaIdentity: 'default',
  columns: [
    column('id', 20, 'int8', true),
    column('region', 25, 'text', true),
    column('amount', 1700, 'numeric'),
    column('note', 25, 'text'),
  ],
  keyIndexes: [0, 1],
};
const keyless: Relation = { ...orders, id: 2, table: 'log', keyIndexes: [] };

/** What JSON.parse makes of 9223372036854775807; the exact digits are checked on the raw text. */
const INT8_MAX_AS_DOUBLE = Number('9223372036854775807');

const context: EventContext = {
  serverName: 'prod',
  database: 'shop',
  xid: 571,
  commitLsn: 53195832n,
  lastCommittedLsn: 24023119n,
  commitTimeUs: 1559033904863123n,
  totalOrder: 2,
  dataCollectionOrder: 1,
  snapshot: 'false',
  nowUs: 1559033904863841n,
};

const row: Tuple = ['9223372036854775807', 'eu', '12345.6789012345678901234567890', 'hello'];
const event = (
  op: ChangeEvent['op'],
  before: Tuple | null,
  after: Tuple | null,
  relation = orders,
): ChangeEvent => ({
  op,
  relation,
  before,
  after,
  lsn: 24023128n,
});

function encode(e: ChangeEvent, options: { tombstones?: boolean } = {}, ctx = context): AppendRecord[] {
  const out: AppendRecord[] = [];
  new DebeziumEncoder({ topicPrefix: 'fulfillment', ...options }).encode(e, ctx, out);
  return out;
}
const parsed = (record: AppendRecord | undefined) => JSON.parse(record?.value ?? 'null');

describe('DebeziumEncoder', () => {
  it('writes the full envelope of an insert', () => {
    const [record, ...rest] = encode(event('c', null, row));
    expect(rest).toEqual([]);
    expect(record?.topic).toBe('fulfillment.Shop.Ordér "items"');
    expect(record?.headers).toEqual({});
    expect(record?.timestamp).toBe(1559033904863);
    expect(JSON.parse(record?.key ?? '')).toEqual({ id: INT8_MAX_AS_DOUBLE, region: 'eu' });
    expect(record?.key).toBe('{"id":9223372036854775807,"region":"eu"}');
    expect(parsed(record)).toEqual({
      before: null,
      after: {
        id: INT8_MAX_AS_DOUBLE,
        region: 'eu',
        amount: '12345.6789012345678901234567890',
        note: 'hello',
      },
      source: {
        version: packageJson.version,
        connector: 'postgresql',
        name: 'prod',
        ts_ms: 1559033904863,
        ts_us: 1559033904863123,
        ts_ns: 1559033904863123000,
        snapshot: 'false',
        db: 'shop',
        sequence: '["24023119","24023128"]',
        schema: 'Shop',
        table: 'Ordér "items"',
        txId: 571,
        lsn: 24023128,
        xmin: null,
      },
      transaction: { id: '571:53195832', total_order: 2, data_collection_order: 1 },
      op: 'c',
      ts_ms: 1559033904863,
      ts_us: 1559033904863841,
      ts_ns: 1559033904863841000,
    });
    // JSON.parse rounds big integers: check the digits on the raw text.
    expect(record?.value).toContain('"after":{"id":9223372036854775807,');
    expect(record?.value).toContain('"ts_ns":1559033904863123000,');
    expect(record?.value).toContain('"ts_ns":1559033904863841000}');
  });

  it('writes updates with the old row as the database sent it', () => {
    // Same key in the old image (a key change is split: see the tests further down).
    const keyOnly: Tuple = ['9223372036854775807', 'eu', null, null];
    const value = parsed(encode(event('u', keyOnly, row))[0]);
    expect(value.op).toBe('u');
    expect(value.before).toEqual({ id: INT8_MAX_AS_DOUBLE, region: 'eu', amount: null, note: null });
    expect(value.after.note).toBe('hello');
    expect(parsed(encode(event('u', null, row))[0]).before).toBeNull();
  });

  it('marks unchanged TOAST values as unavailable', () => {
    const value = parsed(encode(event('u', null, ['1', 'eu', '2', undefined]))[0]);
    expect(value.after.note).toBe('__debezium_unavailable_value');
  });

  it('follows a delete with a tombstone unless disabled', () => {
    const records = encode(event('d', row, null));
    expect(records).toHaveLength(2);
    const [del, tomb] = records;
    expect(parsed(del)).toMatchObject({ op: 'd', after: null, before: { region: 'eu', note: 'hello' } });
    expect(tomb).toEqual({
      topic: del?.topic,
      key: del?.key,
      value: null,
      headers: {},
      timestamp: del?.timestamp,
    });
    expect(del?.key).toBe('{"id":9223372036854775807,"region":"eu"}');
    expect(encode(event('d', row, null), { tombstones: false })).toHaveLength(1);
  });

  it('writes truncates with op t and no key', () => {
    const records = encode({ ...event('t', null, null), lsn: 53195832n });
    expect(records).toHaveLength(1);
    expect(records[0]?.key).toBeNull();
    expect(parsed(records[0])).toMatchObject({
      op: 't',
      before: null,
      after: null,
      source: { lsn: 53195832 },
    });
  });

  it('writes a null key for tables without key columns, snapshot reads as op r', () => {
    const [record] = encode(event('r', null, row, keyless), {}, { ...context, snapshot: 'first' });
    expect(record?.key).toBeNull();
    expect(parsed(record)).toMatchObject({ op: 'r', source: { snapshot: 'first', table: 'log' } });
  });

  it('writes sequence[0] as null before any commit is known', () => {
    const value = parsed(encode(event('c', null, row), {}, { ...context, lastCommittedLsn: 0n })[0]);
    expect(value.source.sequence).toBe('[null,"24023128"]');
  });

  it('follows context changes between events and new Relation objects', () => {
    const encoder = new DebeziumEncoder({ topicPrefix: 'p' });
    const out: AppendRecord[] = [];
    encoder.encode(event('c', null, row), context, out);
    const renamed: Relation = {
      ...orders,
      columns: orders.columns.map((c, i) => (i === 3 ? { ...c, name: 'memo' } : c)),
    };
    encoder.encode(
      event('c', null, row, renamed),
      { ...context, xid: 572, commitLsn: 9n, database: 'other' },
      out,
    );
    const [first, second] = out.map((r) => JSON.parse(r.value ?? ''));
    expect(first.after.note).toBe('hello');
    expect(second.after.memo).toBe('hello');
    expect(second.transaction.id).toBe('572:9');
    expect(second.source.db).toBe('other');
  });

  it('rejects inconsistent events', () => {
    expect(() => encode(event('c', null, null))).toThrow(/no new row/);
    expect(() => encode(event('m', null, null))).toThrow(/logical messages/);
  });

  it('is created by the factory and names topics', () => {
    const encoder = createEncoder({ format: 'debezium', topicPrefix: 'a' });
    expect(encoder).toBeInstanceOf(DebeziumEncoder);
    expect(encoder.topicFor('public', 'Tëst')).toBe('a.public.Tëst');
  });

  it('is deterministic', () => {
    expect(encode(event('u', row, row))).toEqual(encode(event('u', row, row)));
  });
});

describe('DebeziumEncoder: key changes, unchanged TOAST and logical messages', () => {
  const newRow: Tuple = ['2', 'us', '1.5', 'moved'];
  const oldKey: Tuple = ['1', 'eu', null, null];

  it('splits an update that changes the key into delete, tombstone and create', () => {
    const records = encode(event('u', oldKey, newRow));
    expect(records.map((r) => (r.value === null ? 'tombstone' : parsed(r).op))).toEqual([
      'd',
      'tombstone',
      'c',
    ]);
    const [del, tomb, create] = records;
    expect(del?.key).toBe('{"id":1,"region":"eu"}');
    expect(tomb?.key).toBe(del?.key);
    expect(create?.key).toBe('{"id":2,"region":"us"}');
    expect(parsed(del)).toMatchObject({
      before: { id: 1, region: 'eu', amount: null, note: null },
      after: null,
      transaction: { total_order: 2, data_collection_order: 1 },
    });
    expect(parsed(create)).toMatchObject({
      before: null,
      after: { id: 2, region: 'us', amount: '1.5', note: 'moved' },
      transaction: { total_order: 2, data_collection_order: 1 },
    });
    // No __debezium.oldkey/newkey headers: headers never hold row data.
    expect(records.map((r) => r.headers)).toEqual([{}, {}, {}]);
    expect(encode(event('u', oldKey, newRow), { tombstones: false }).map((r) => parsed(r).op)).toEqual([
      'd',
      'c',
    ]);
  });

  it('keeps one u record when the old image has the same key (REPLICA IDENTITY FULL)', () => {
    const records = encode(event('u', ['2', 'us', '1', 'old'], newRow));
    expect(records).toHaveLength(1);
    expect(parsed(records[0])).toMatchObject({ op: 'u', before: { note: 'old' } });
  });

  it('lists unchanged TOAST columns in a header, JSON-escaped and comma-separated', () => {
    const toasted: Relation = {
      ...orders,
      columns: [...orders.columns, column('a,"b"', 25, 'text')],
    };
    const [record] = encode(event('u', null, ['1', 'eu', '2', undefined, undefined], toasted));
    expect(record?.headers).toEqual({ 'tributary.unchanged_toast': '"note","a,\\"b\\""' });
    expect(JSON.parse(`[${record?.headers['tributary.unchanged_toast']}]`)).toEqual(['note', 'a,"b"']);
    expect(parsed(record).after).toMatchObject({ note: '__debezium_unavailable_value' });
    expect(encode(event('u', null, row))[0]?.headers).toEqual({});
    // The create of a key change carries the header too.
    const split = encode(event('u', oldKey, ['2', 'us', '1', undefined]));
    expect(split.map((r) => r.headers)).toEqual([{}, {}, { 'tributary.unchanged_toast': '"note"' }]);
  });

  it('writes logical messages as Debezium message events', () => {
    const message = {
      kind: 'message' as const,
      transactional: true,
      lsn: 26997904n,
      prefix: 'outbox "x"',
      content: Buffer.from([0, 1, 2, 255]),
    };
    const out: AppendRecord[] = [];
    const encoder = new DebeziumEncoder({ topicPrefix: 'fulfillment' });
    encoder.encodeMessage(message, { ...context, totalOrder: 3, dataCollectionOrder: 1 }, out);
    encoder.encodeMessage(
      { ...message, transactional: false },
      { serverName: 'prod', database: 'shop', lastCommittedLsn: 0n, nowUs: 1700000000000001n },
      out,
    );
    const [tx, standalone] = out;
    expect(tx?.topic).toBe('fulfillment.message');
    expect(tx?.key).toBe('{"prefix":"outbox \\"x\\""}');
    expect(tx?.headers).toEqual({});
    expect(tx?.timestamp).toBe(1559033904863);
    expect(parsed(tx)).toEqual({
      op: 'm',
      ts_ms: 1559033904863,
      ts_us: 1559033904863841,
      ts_ns: 1559033904863841000,
      source: {
        version: packageJson.version,
        connector: 'postgresql',
        name: 'prod',
        ts_ms: 1559033904863,
        ts_us: 1559033904863123,
        ts_ns: 1559033904863123000,
        snapshot: 'false',
        db: 'shop',
        sequence: '["24023119","26997904"]',
        schema: '',
        table: '',
        txId: 571,
        lsn: 26997904,
        xmin: null,
      },
      transaction: { id: '571:53195832', total_order: 3, data_collection_order: 1 },
      message: { prefix: 'outbox "x"', content: 'AAEC/w==' },
    });
    expect(Buffer.from(parsed(tx).message.content, 'base64')).toEqual(message.content);
    expect(standalone?.timestamp).toBe(1700000000000);
    expect(parsed(standalone)).toMatchObject({
      op: 'm',
      transaction: null,
      source: { txId: null, ts_us: 1700000000000001, sequence: '[null,"26997904"]' },
    });
    // The unwrap format passes message records through unchanged, as ExtractNewRecordState does.
    const unwrapped: AppendRecord[] = [];
    createEncoder({ format: 'unwrap', topicPrefix: 'fulfillment' }).encodeMessage(
      message,
      { ...context, totalOrder: 3, dataCollectionOrder: 1 },
      unwrapped,
    );
    expect(unwrapped).toEqual([tx]);
  });
});
