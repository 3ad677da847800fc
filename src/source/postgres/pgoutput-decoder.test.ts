import { describe, expect, it } from 'vitest';
import type { TransactionChange, TupleValue } from '../../core/change-event.ts';
import { DecodeError } from '../../core/errors.ts';
import { type DecodedMessage, PgOutputDecoder, type RawRelation } from './pgoutput-decoder.ts';
import { TypeRegistry } from './type-registry.ts';

// Builders for pgoutput messages, written from the protocol docs' field lists.
const byte = (c: string | number) => Buffer.from([typeof c === 'string' ? c.charCodeAt(0) : c]);
const int16 = (v: number) => Buffer.from([(v >> 8) & 0xff, v & 0xff]);
const int32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(v | 0);
  return b;
};
const int64 = (v: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigInt64BE(v);
  return b;
};
const cstr = (s: string) => Buffer.concat([Buffer.from(s), byte(0)]);

function tuple(values: TupleValue[]): Buffer {
  const parts = [int16(values.length)];
  for (const v of values) {
    if (v === null) parts.push(byte('n'));
    else if (v === undefined) parts.push(byte('u'));
    else parts.push(byte('t'), int32(Buffer.byteLength(v)), Buffer.from(v));
  }
  return Buffer.concat(parts);
}

function relationMessage(
  id: number,
  schema: string,
  table: string,
  identity: string,
  cols: [string, number, boolean][],
) {
  return Buffer.concat([
    byte('R'),
    int32(id),
    cstr(schema),
    cstr(table),
    byte(identity),
    int16(cols.length),
    ...cols.flatMap(([name, oid, key]) => [byte(key ? 1 : 0), cstr(name), int32(oid), int32(-1)]),
  ]);
}

const ORDERS = 16384;
const ITEMS = 16390;
const PG_EPOCH_US = 946_684_800_000_000n;

function setup() {
  const decoder = new PgOutputDecoder(new TypeRegistry());
  const relate = (message: Buffer) => {
    const decoded = decoder.decode(message, 0, message.length, 1n) as DecodedMessage;
    if (decoded.kind !== 'relation') throw new Error('not a relation');
    return decoder.addRelation(decoded.relation);
  };
  const orders = relate(
    relationMessage(ORDERS, 'public', 'orders', 'd', [
      ['id', 20, true],
      ['note', 25, false],
      ['total', 1700, false],
    ]),
  );
  const items = relate(relationMessage(ITEMS, 'shop', 'items', 'f', [['sku', 1043, true]]));
  const decode = (message: Buffer, walStart = 0x1000n) =>
    decoder.decode(message, 0, message.length, walStart);
  const change = (message: Buffer, walStart?: bigint) =>
    (decode(message, walStart) as TransactionChange).event;
  return { decoder, orders, items, decode, change };
}

describe('PgOutputDecoder', () => {
  it('decodes a Relation message into a RawRelation and registers it with resolved types', () => {
    const decoder = new PgOutputDecoder(new TypeRegistry());
    const message = relationMessage(7, '', 'pg_thing', 'i', [
      ['a', 23, true],
      ['b', 99999, false],
    ]);
    const decoded = decoder.decode(message, 0, message.length, 0n);
    const expected: RawRelation = {
      id: 7,
      schema: 'pg_catalog',
      table: 'pg_thing',
      replicaIdentity: 'index',
      columns: [
        { name: 'a', typeOid: 23, typeMod: -1, isKey: true },
        { name: 'b', typeOid: 99999, typeMod: -1, isKey: false },
      ],
    };
    expect(decoded).toEqual({ kind: 'relation', relation: expected });
    expect(decoder.relation(7)).toBeUndefined();
    const relation = decoder.addRelation(expected);
    expect(decoder.relation(7)).toBe(relation);
    expect(relation.keyIndexes).toEqual([0]);
    expect(relation.columns.map((c) => c.type)).toEqual([
      { kind: 'base', oid: 23, name: 'int4' },
      { kind: 'base', oid: 99999, name: 'unknown' },
    ]);
  });

  it.each([
    ['d', 'default'],
    ['n', 'nothing'],
    ['f', 'full'],
    ['i', 'index'],
  ])('maps replica identity %s to %s', (byteValue, identity) => {
    const message = relationMessage(1, 's', 't', byteValue, []);
    const decoded = new PgOutputDecoder(new TypeRegistry()).decode(message, 0, message.length, 0n);
    expect(decoded).toMatchObject({ relation: { replicaIdentity: identity } });
  });

  it('decodes Begin and Commit with Unix-epoch commit times', () => {
    const { decode } = setup();
    const begin = Buffer.concat([byte('B'), int64(0x1_0000_2000n), int64(1_000_000n), int32(-1)]);
    expect(decode(begin)).toEqual({
      kind: 'begin',
      finalLsn: 0x1_0000_2000n,
      commitTimeUs: PG_EPOCH_US + 1_000_000n,
      xid: 0xffffffff,
    });
    const commit = Buffer.concat([byte('C'), byte(0), int64(0x2000n), int64(0x2030n), int64(-5n)]);
    expect(decode(commit)).toEqual({
      kind: 'commit',
      commitLsn: 0x2000n,
      endLsn: 0x2030n,
      commitTimeUs: PG_EPOCH_US - 5n,
    });
  });

  it('decodes an Insert with text, null, unchanged-TOAST and multi-byte values', () => {
    const { change, orders } = setup();
    const event = change(
      Buffer.concat([byte('I'), int32(ORDERS), byte('N'), tuple(['42', null, 'né €'])]),
      77n,
    );
    expect(event).toEqual({ op: 'c', relation: orders, before: null, after: ['42', null, 'né €'], lsn: 77n });
    const toasted = change(Buffer.concat([byte('I'), int32(ORDERS), byte('N'), tuple(['1', undefined, ''])]));
    expect(toasted.after).toEqual(['1', undefined, '']);
    expect(toasted.after).toHaveLength(3);
  });

  it('decodes an Update without an old tuple', () => {
    const { change } = setup();
    const event = change(Buffer.concat([byte('U'), int32(ORDERS), byte('N'), tuple(['1', 'x', undefined])]));
    expect(event).toMatchObject({ op: 'u', before: null, after: ['1', 'x', undefined], lsn: 0x1000n });
  });

  it("decodes an Update with a key tuple ('K'): key positions only, null elsewhere", () => {
    const { change } = setup();
    // PostgreSQL sends nulls for non-key columns; a stray value there is not passed on.
    const old = tuple(['1', 'stray', null]);
    const event = change(
      Buffer.concat([byte('U'), int32(ORDERS), byte('K'), old, byte('N'), tuple(['2', 'b', '3'])]),
    );
    expect(event).toMatchObject({ op: 'u', before: ['1', null, null], after: ['2', 'b', '3'] });
  });

  it("decodes an Update with a full old tuple ('O')", () => {
    const { change, items } = setup();
    const event = change(
      Buffer.concat([byte('U'), int32(ITEMS), byte('O'), tuple(['a']), byte('N'), tuple(['b'])]),
    );
    expect(event).toEqual({ op: 'u', relation: items, before: ['a'], after: ['b'], lsn: 0x1000n });
  });

  it("decodes a Delete with a key tuple ('K') or an old tuple ('O')", () => {
    const { change } = setup();
    const byKey = change(Buffer.concat([byte('D'), int32(ORDERS), byte('K'), tuple(['9', null, null])]));
    expect(byKey).toMatchObject({ op: 'd', before: ['9', null, null], after: null });
    const byOld = change(Buffer.concat([byte('D'), int32(ITEMS), byte('O'), tuple(['z'])]));
    expect(byOld).toMatchObject({ op: 'd', before: ['z'], after: null });
  });

  it('decodes a Truncate of several relations into one change per relation at walStart', () => {
    const { decode, orders, items } = setup();
    const message = Buffer.concat([byte('T'), int32(2), byte(3), int32(ORDERS), int32(ITEMS)]);
    expect(decode(message, 0x5000n)).toEqual([
      { kind: 'change', event: { op: 't', relation: orders, before: null, after: null, lsn: 0x5000n } },
      { kind: 'change', event: { op: 't', relation: items, before: null, after: null, lsn: 0x5000n } },
    ]);
  });

  it('decodes logical messages, copying their content', () => {
    const { decode } = setup();
    const content = Buffer.from([0, 1, 2, 255]);
    const message = Buffer.concat([
      byte('M'),
      byte(1),
      int64(0x42n),
      cstr('app'),
      int32(content.length),
      content,
    ]);
    const decoded = decode(message);
    expect(decoded).toEqual({ kind: 'message', transactional: true, lsn: 0x42n, prefix: 'app', content });
    message.fill(0);
    expect((decoded as { content: Buffer }).content).toEqual(content);
    const empty = Buffer.concat([byte('M'), byte(0), int64(1n), cstr(''), int32(0)]);
    expect(decode(empty)).toMatchObject({ transactional: false, prefix: '', content: Buffer.alloc(0) });
  });

  it('ignores Origin and Type messages', () => {
    const { decode } = setup();
    expect(decode(Buffer.concat([byte('O'), int64(5n), cstr('node_a')]))).toEqual({ kind: 'ignored' });
    expect(decode(Buffer.concat([byte('Y'), int32(70000), cstr('public'), cstr('mood')]))).toEqual({
      kind: 'ignored',
    });
  });

  it('decodes a message in the middle of a larger buffer', () => {
    const { decoder } = setup();
    const insert = Buffer.concat([byte('I'), int32(ITEMS), byte('N'), tuple(['sku-1'])]);
    const buf = Buffer.concat([Buffer.alloc(25, 0xee), insert, Buffer.alloc(7, 0xee)]);
    const decoded = decoder.decode(buf, 25, 25 + insert.length, 3n) as TransactionChange;
    expect(decoded.event.after).toEqual(['sku-1']);
  });

  it('replaces a relation when a new Relation message arrives', () => {
    const { decoder, change } = setup();
    const message = relationMessage(ITEMS, 'shop', 'items', 'd', [
      ['sku', 1043, true],
      ['qty', 1007, false],
    ]);
    decoder.addRelation(
      (decoder.decode(message, 0, message.length, 0n) as { relation: RawRelation }).relation,
    );
    const event = change(Buffer.concat([byte('I'), int32(ITEMS), byte('N'), tuple(['a', '{1,2}'])]));
    expect(event.relation.columns[1]?.type).toMatchObject({ kind: 'array', name: '_int4', delimiter: ',' });
  });

  describe('rejects corrupt input with a DecodeError that says what and where', () => {
    const insert = (t: Buffer) => Buffer.concat([byte('I'), int32(ORDERS), byte('N'), t]);
    const cases: [string, Buffer, RegExp][] = [
      [
        'an unknown relation',
        Buffer.concat([byte('I'), int32(999), byte('N'), tuple([])]),
        /Insert message refers to unknown relation id 999/,
      ],
      [
        'a truncated value',
        insert(tuple(['1', 'abc', '2'])).subarray(0, 20),
        /Insert message is truncated: it ends before the 3-byte value of column 1 \(at byte 19 of 20/,
      ],
      [
        'a truncated length',
        insert(tuple(['1', 'a', 'b'])).subarray(0, 10),
        /Insert message is truncated: it ends before the length of column 0 \(at byte 9 of 10/,
      ],
      [
        'a missing column',
        insert(tuple(['1', 'a', 'b'])).subarray(0, 8),
        /Insert message is truncated: it ends before column 0 of a tuple \(at byte 8 of 8/,
      ],
      [
        'a truncated column count',
        insert(tuple(['1', 'a', 'b'])).subarray(0, 7),
        /Insert message is truncated: it ends before the column count of a tuple \(at byte 6 of 7/,
      ],
      [
        'a wrong column count',
        insert(tuple(['1', 'a'])),
        /Insert message has a tuple of 2 columns for public.orders, whose Relation message had 3/,
      ],
      ['a binary value', insert(Buffer.concat([int16(3), byte('b'), int32(0)])), /binary value in column 0/],
      [
        'a bad value kind',
        insert(Buffer.concat([int16(3), byte('x')])),
        /has 'x' \(0x78\) where tuple value kind 't', 'n' or 'u' for column 0 was expected \(at byte 8 of 9/,
      ],
      [
        'a bad tuple marker',
        Buffer.concat([byte('I'), int32(ORDERS), byte('Q'), tuple(['1', null, null])]),
        /Insert message has 'Q' \(0x51\) where 'N' \(new tuple\) was expected \(at byte 5/,
      ],
      [
        'a bad update marker',
        Buffer.concat([byte('U'), int32(ORDERS), byte('X')]),
        /Update message has 'X' \(0x58\) where 'K', 'O' or 'N' was expected/,
      ],
      [
        'a delete without old tuple',
        Buffer.concat([byte('D'), int32(ORDERS), byte('N'), tuple(['1', null, null])]),
        /Delete message has 'N' \(0x4e\) where 'K' or 'O' was expected/,
      ],
      [
        'trailing bytes',
        Buffer.concat([insert(tuple(['1', null, null])), Buffer.from([0, 0])]),
        /Insert message has 2 unexpected trailing bytes/,
      ],
      [
        'a truncated Begin',
        Buffer.concat([byte('B'), int64(1n)]),
        /Begin message is truncated: it ends before a timestamp \(at byte 9 of 9/,
      ],
      ['a truncated Commit', byte('C'), /Commit message is truncated: it ends before a byte/],
      [
        'an unterminated string',
        Buffer.concat([byte('R'), int32(1), Buffer.from('public')]),
        /Relation message is truncated: it ends before a NUL-terminated string \(at byte 5 of 11/,
      ],
      [
        'a bad replica identity',
        relationMessage(1, 's', 't', 'x', []),
        /Relation message has 'x' \(0x78\) where replica identity/,
      ],
      [
        'too many truncated relations',
        Buffer.concat([byte('T'), int32(3), byte(0), int32(ORDERS)]),
        /Truncate message is truncated: it ends before relation ids/,
      ],
      [
        'a truncate of an unknown relation',
        Buffer.concat([byte('T'), int32(1), byte(0), int32(5)]),
        /Truncate message refers to unknown relation id 5/,
      ],
      [
        'a truncated message content',
        Buffer.concat([byte('M'), byte(0), int64(1n), cstr('p'), int32(10), Buffer.from('abc')]),
        /Message message is truncated: it ends before message content/,
      ],
      [
        'an unknown message type',
        Buffer.from('S'),
        /unsupported pgoutput message type 'S' \(0x53\) at offset 0/,
      ],
    ];
    it.each(cases)('%s', (_name, message, error) => {
      const { decode } = setup();
      let thrown: unknown;
      try {
        decode(message);
      } catch (e) {
        thrown = e;
      }
      expect(thrown).toBeInstanceOf(DecodeError);
      expect((thrown as DecodeError).code).toBe('DECODE_FAILED');
      expect((thrown as DecodeError).message).toMatch(error);
    });

    it('an empty or out-of-range message', () => {
      const { decoder } = setup();
      expect(() => decoder.decode(Buffer.alloc(4), 4, 4, 0n)).toThrow(
        /empty or out-of-range pgoutput message \[4, 4\)/,
      );
      expect(() => decoder.decode(Buffer.alloc(4), 0, 9, 0n)).toThrow(DecodeError);
    });
  });
});
