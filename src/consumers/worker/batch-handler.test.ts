import { describe, expect, it } from 'vitest';
import type { StoredRecord } from '../../core/record.ts';
import { freshRecords, nextOffsets } from './batch-handler.ts';
import { consumerRecord } from './lazy-record.ts';

const stored = (value: string | null): StoredRecord => ({
  topic: 't',
  partition: 1,
  offset: 7,
  key: '{"id":1}',
  value,
  headers: { h: 'v' },
  timestamp: 1234,
});

describe('consumerRecord', () => {
  it('parses the value on first access only, then returns the same object', () => {
    const r = consumerRecord(stored('{"after":{"id":1}}'));
    const first = r.value as { after: { id: number } };
    expect(first).toEqual({ after: { id: 1 } });
    expect(r.value).toBe(first);
    expect({ ...r }).toEqual({
      topic: 't',
      partition: 1,
      offset: 7,
      key: '{"id":1}',
      value: { after: { id: 1 } },
      headers: { h: 'v' },
      timestamp: 1234,
    });
  });

  it('never parses a value that is not read (invalid JSON fails only where it is read)', () => {
    const r = consumerRecord(stored('not json'));
    expect(r.key).toBe('{"id":1}');
    expect(r.offset).toBe(7);
    expect(() => r.value).toThrow(SyntaxError);
  });

  it('gives null for a tombstone', () => {
    expect(consumerRecord(stored(null)).value).toBeNull();
  });
});

const at = (topic: string, partition: number, offset: number): StoredRecord => ({
  topic,
  partition,
  offset,
  key: null,
  value: null,
  headers: {},
  timestamp: 0,
});

describe('nextOffsets', () => {
  it('gives each partition the offset after its last record, runs of partitions interleaved', () => {
    const records = [
      at('a', 0, 5),
      at('a', 0, 6),
      at('a', 1, 2),
      at('b', 0, 9),
      at('a', 0, 7),
      at('a', 1, 1),
    ];
    expect(nextOffsets(records)).toEqual([
      { topic: 'a', partition: 0, offset: 8 },
      { topic: 'a', partition: 1, offset: 3 },
      { topic: 'b', partition: 0, offset: 10 },
    ]);
  });
});

describe('freshRecords', () => {
  const records = [at('a', 0, 5), at('a', 0, 6), at('a', 1, 2), at('a', 0, 7), at('a', 1, 3)];

  it("keeps the records at or past their partition's stored offset, in order", () => {
    const stored = new Map([
      ['a\u00000', 7],
      ['a\u00001', 3],
    ]);
    expect(freshRecords(records, stored).map((r) => `${r.partition}:${r.offset}`)).toEqual(['0:7', '1:3']);
  });

  it('returns the batch itself when every record is fresh', () => {
    expect(freshRecords(records, new Map())).toBe(records);
    expect(freshRecords(records, new Map([['a\u00000', 5]]))).toBe(records);
  });
});
