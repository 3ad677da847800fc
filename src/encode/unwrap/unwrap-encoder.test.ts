import { describe, expect, it } from 'vitest';
import type { ChangeEvent, Column, Relation, Tuple } from '../../core/change-event.ts';
import type { EventContext } from '../../core/encoder.ts';
import type { AppendRecord } from '../../core/record.ts';
import { createEncoder } from '../index.ts';
import { UnwrapEncoder } from './unwrap-encoder.ts';

const column = (name: string, oid: number, typeName: string): Column => ({
  name,
  typeOid: oid,
  typeMod: -1,
  isKey: name === 'id',
  type: { kind: 'base', oid, name: typeName },
});
const users: Relation = {
  id: 1,
  schema: 'public',
  table: 'users',
  replicaIdentity: 'default',
  columns: [column('id', 20, 'int8'), column('name', 25, 'text'), column('born', 1082, 'date')],
  keyIndexes: [0],
};
const context: EventContext = {
  serverName: 'prod',
  database: 'app',
  xid: 7,
  commitLsn: 900n,
  lastCommittedLsn: 800n,
  commitTimeUs: 1700000000123456n,
  totalOrder: 1,
  dataCollectionOrder: 1,
  snapshot: 'false',
  nowUs: 1700000000200000n,
};
const row: Tuple = ['9007199254740993', 'Zoë', '1970-01-02'];
function encode(op: ChangeEvent['op'], before: Tuple | null, after: Tuple | null, tombstones?: boolean) {
  const out: AppendRecord[] = [];
  const encoder = new UnwrapEncoder({
    topicPrefix: 'cdc',
    ...(tombstones === undefined ? {} : { tombstones }),
  });
  encoder.encode({ op, relation: users, before, after, lsn: 850n }, context, out);
  return out;
}

describe('UnwrapEncoder', () => {
  it('flattens the new row and adds the metadata fields', () => {
    const [record] = encode('c', null, row);
    expect(record?.topic).toBe('cdc.public.users');
    expect(record?.key).toBe('{"id":9007199254740993}');
    expect(record?.timestamp).toBe(1700000000123);
    expect(record?.value).toBe(
      '{"id":9007199254740993,"name":"Zoë","born":1,"__op":"c","__table":"users","__schema":"public",' +
        '"__lsn":850,"__source_ts_ms":1700000000123,"__deleted":"false"}',
    );
  });

  it('writes updates from the new row', () => {
    const value = JSON.parse(encode('u', ['9007199254740993', null, null], row)[0]?.value ?? '');
    expect(value).toMatchObject({ name: 'Zoë', __op: 'u', __deleted: 'false' });
  });

  it('rewrites deletes as the old row with __deleted, then a tombstone', () => {
    const records = encode('d', ['5', null, null], null);
    expect(records).toHaveLength(2);
    expect(JSON.parse(records[0]?.value ?? '')).toEqual({
      id: 5,
      name: null,
      born: null,
      __op: 'd',
      __table: 'users',
      __schema: 'public',
      __lsn: 850,
      __source_ts_ms: 1700000000123,
      __deleted: 'true',
    });
    expect(records[1]).toMatchObject({ key: '{"id":5}', value: null });
    expect(encode('d', ['5', null, null], null, false)).toHaveLength(1);
  });

  it('writes only the metadata when a delete carries no old row', () => {
    const [record] = encode('d', null, null, false);
    expect(record?.key).toBeNull();
    expect(JSON.parse(record?.value ?? '')).toMatchObject({ __op: 'd', __deleted: 'true' });
  });

  it('splits a key change into the old row deleted, its tombstone, and the new row created', () => {
    const records = encode('u', ['5', null, null], row);
    expect(records.map((r) => r.key)).toEqual(['{"id":5}', '{"id":5}', '{"id":9007199254740993}']);
    expect(records[1]?.value).toBeNull();
    expect(JSON.parse(records[0]?.value ?? '')).toMatchObject({ id: 5, __op: 'd', __deleted: 'true' });
    expect(JSON.parse(records[2]?.value ?? '')).toMatchObject({ name: 'Zoë', __op: 'c', __deleted: 'false' });
    expect(encode('u', ['5', null, null], row, false)).toHaveLength(2);
  });

  it('marks unchanged TOAST values with the placeholder and a header', () => {
    const [record] = encode('u', null, ['1', undefined, '1970-01-02']);
    expect(record?.headers).toEqual({ 'tributary.unchanged_toast': '"name"' });
    expect(JSON.parse(record?.value ?? '').name).toBe('__debezium_unavailable_value');
  });

  it('produces nothing for a truncate', () => {
    expect(encode('t', null, null)).toEqual([]);
  });

  it('is created by the factory', () => {
    expect(createEncoder({ format: 'unwrap', topicPrefix: 'x' })).toBeInstanceOf(UnwrapEncoder);
  });
});
