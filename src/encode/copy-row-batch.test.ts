import { describe, expect, it } from 'vitest';
import type { Relation, Tuple } from '../core/change-event.ts';
import type { EventContext } from '../core/encoder.ts';
import type { AppendItem } from '../core/record.ts';
import {
  COPY_ROWS_CODEC,
  type CopyRowsHeader,
  copyRowBatch,
  copyRowsCodec,
  copyRowTuples,
  decodeField,
  filterCopyRows,
  frameBounds,
  frameLines,
  lineBounds,
  takeRows,
} from './copy-row-batch.ts';
import { createEncoder, type EncoderOptions } from './index.ts';

const int4 = { kind: 'base', oid: 23, name: 'int4' } as const;
const text = { kind: 'base', oid: 25, name: 'text' } as const;
const relation: Relation = {
  id: 7,
  schema: 'public',
  table: 'items',
  replicaIdentity: 'default',
  columns: [
    { name: 'id', typeOid: 23, typeMod: -1, isKey: true, type: int4 },
    { name: 'note', typeOid: 25, typeMod: -1, isKey: false, type: text },
  ],
  keyIndexes: [0],
};
const context: EventContext = {
  serverName: 'shop',
  database: 'db',
  xid: 812,
  commitLsn: 5000n,
  lastCommittedLsn: 4000n,
  commitTimeUs: 1_700_000_000_123_456n,
  totalOrder: 1,
  dataCollectionOrder: 1,
  snapshot: 'true',
  nowUs: 1_700_000_001_000_000n,
};
const copyLines = (rows: (string | null)[][]) =>
  rows.map((row) =>
    row
      .map((v) =>
        v === null
          ? '\\N'
          : v.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n').replace(/\r/g, '\\r'),
      )
      .join('\t'),
  );

describe('COPY text decoding', () => {
  it('undoes every escape COPY writes, and reads \\N as NULL', () => {
    expect(decodeField('\\N')).toBeNull();
    expect(decodeField('plain')).toBe('plain');
    expect(decodeField('a\\\\b\\tc\\nd\\re\\bf\\fg\\vh')).toBe('a\\b\tc\nd\re\bf\fg\vh');
    expect(decodeField('\\101\\x42\\7')).toBe('AB\x07');
    expect(decodeField('\\\\N')).toBe('\\N');
  });

  it('splits lines into tuples and filters rows without touching the others', () => {
    const rows = [
      ['1', 'tab\there'],
      ['2', null],
      ['3', 'back\\slash\nnewline'],
      ['4', 'é'],
    ];
    const framed = frameLines(copyLines(rows));
    const { data } = framed;
    expect(frameBounds(data).length / 2).toBe(4);
    expect(copyRowTuples(framed)).toEqual(rows);
    const kept = filterCopyRows(framed, (fields) => fields[0] !== '2' && fields[0] !== '4');
    expect(kept.count).toBe(2);
    expect(copyRowTuples(kept)).toEqual([rows[0], rows[2]]);
    expect(filterCopyRows(framed, () => false).count).toBe(0);
    // Nothing dropped: the same rows.
    expect(filterCopyRows(framed, () => true)).toBe(framed);
    const taken = takeRows(framed, 3);
    expect(copyRowTuples(taken.rows)).toEqual(rows.slice(0, 3));
    expect(taken.last).toEqual(rows[2]);
    // Version 1 chunks: plain lines.
    expect(lineBounds(Buffer.from(`${copyLines(rows).join('\n')}\n`)).length / 2).toBe(4);
    expect(() => lineBounds(Buffer.from('1\tx'))).toThrow(/no line end/);
  });

  it('refuses framing that is cut short, of another message kind, or without a line end', () => {
    const { data } = frameLines(['1\tone', '2\ttwo']);
    expect(() => frameBounds(data.subarray(0, data.length - 3))).toThrow(/row 2 has no line end/);
    expect(() => frameBounds(data.subarray(0, data.length - 9))).toThrow(/row 2 is cut short/);
    const other = Buffer.from(data);
    other[0] = 0x43;
    expect(() => frameBounds(other)).toThrow(/row 1 is not a CopyData message/);
    const noNewline = Buffer.from(data);
    noNewline[noNewline.length - 1] = 0x78;
    expect(() => frameBounds(noNewline)).toThrow(/row 2 has no line end/);
  });
});

describe('copy row batches', () => {
  for (const format of ['debezium', 'unwrap'] as const) {
    it(`render the same records as encoding each read event (${format})`, () => {
      const options: EncoderOptions = { format, topicPrefix: 'shop', tombstones: true };
      const rows = [
        ['1', 'one'],
        ['2', null],
        ['3', 'quote " and \\ and \t'],
      ];
      const header: CopyRowsHeader = {
        v: 2,
        encoder: options,
        relation,
        lsn: '6000',
        context: {
          serverName: 'shop',
          database: 'db',
          xid: 812,
          commitLsn: '5000',
          lastCommittedLsn: '4000',
          commitTimeUs: context.commitTimeUs.toString(),
          nowUs: context.nowUs.toString(),
        },
        firstOrder: 1,
        snapshot: 'true',
        lastIsFinal: true,
      };
      const batch = copyRowBatch(header, frameLines(copyLines(rows)));
      expect(batch).toMatchObject({
        kind: 'batch',
        topic: 'shop.public.items',
        count: 3,
        codec: COPY_ROWS_CODEC,
      });

      const expected: AppendItem[] = [];
      const encoder = createEncoder(options);
      rows.forEach((row, i) => {
        encoder.encode(
          { op: 'r', relation, before: null, after: row as Tuple, lsn: 6000n },
          {
            ...context,
            totalOrder: i + 1,
            dataCollectionOrder: i + 1,
            snapshot: i === 2 ? 'last' : 'true',
          },
          expected,
        );
      });
      const opened = copyRowsCodec.open(batch.header, batch.data);
      expect(opened.count).toBe(3);
      const rendered = [0, 1, 2].map((i) => opened.record(i));
      expect(rendered).toEqual(expected);
      expect(batch.timestamp).toBe((expected[0] as { timestamp: number }).timestamp);
      if (format === 'debezium') expect(JSON.parse(rendered[2]!.value!).source.snapshot).toBe('last');

      // A version 1 chunk (plain lines): the same records.
      const v1 = copyRowsCodec.open(
        JSON.stringify({ ...header, v: 1 }),
        Buffer.from(`${copyLines(rows).join('\n')}\n`),
      );
      expect([0, 1, 2].map((i) => v1.record(i))).toEqual(expected);
    });
  }

  it('refuses a damaged header with a clear error', () => {
    expect(() => copyRowsCodec.open('{not json', Buffer.from('1\n'))).toThrow(
      /snapshot chunk cannot be read/,
    );
    expect(() => copyRowsCodec.open(JSON.stringify({ v: 9 }), Buffer.from('1\n'))).toThrow(/header version/);
    const { data } = frameLines(['1']);
    expect(() => copyRowsCodec.open(JSON.stringify({ v: 2 }), data.subarray(0, 4))).toThrow(/cut short/);
  });
});
