import { describe, expect, it } from 'vitest';
import type { StoredRecord } from '../../core/record.ts';
import { consumerRecord } from './batch-handler.ts';

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
