import { describe, expect, it } from 'vitest';
import { LakeBatch, type StagedChange } from './lake-batch.ts';

/** The staged lines of `batch`, parsed. */
function lines(batch: LakeBatch): unknown[] {
  const text = Buffer.concat(batch.bytes()).toString('utf8');
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l));
}

function change(topic: string, partition: number, offset: number, key: string | null): StagedChange {
  return { topic, partition, offset, timestamp: 1000 + offset, key };
}

function fill(batch: LakeBatch, from: number, count: number, pad: string): void {
  for (let i = from; i < from + count; i++) {
    batch.push(
      change('db.public.t', 0, i, `{"id":${i}}`),
      JSON.stringify({ op: 'c', after: { id: i, pad } }),
    );
  }
}

describe('LakeBatch', () => {
  it('stages a line per record with its key, and its place as runs of offsets', () => {
    const blob = Buffer.from('xx{"op":"u"}yy');
    const batch = new LakeBatch(() => '{"op":"u"}');
    batch.push(change('db.public.t', 2, 7, 'k "1" é'), '{"op":"d"}');
    batch.push(change('db.public.t', 2, 8, '{"id":1}'), null);
    batch.pushBytes(change('db.public.t', 2, 9, '{"id":2}'), blob, 2, 12);
    batch.push(change('db.public.u', 0, 10, null), '{"op":"c"}');
    batch.push(change('db.public.t', 2, 12, '{"id":\n3}'), '{"op":"c"}');
    // A key past ASCII, as UTF-8 (from the first character past it on, a surrogate pair too).
    batch.pushBytes(change('db.public.t', 2, 13, '{"name":"café 🐟 ü"}'), blob, 2, 12);
    expect(lines(batch)).toEqual([
      { k: 'k "1" é', v: { op: 'd' } },
      { k: { id: 1 }, v: null },
      { k: { id: 2 }, v: { op: 'u' } },
      { k: null, v: { op: 'c' } },
      // A key with a line break is written as a JSON string (the line stays one line).
      { k: '{"id":\n3}', v: { op: 'c' } },
      { k: { name: 'café 🐟 ü' }, v: { op: 'u' } },
    ]);
    expect(batch.topics).toEqual(['db.public.t', 'db.public.u']);
    expect(batch.runs).toEqual([
      { first: 0, q: 0, partition: 2, offset: 7 },
      { first: 3, q: 1, partition: 0, offset: 10 },
      { first: 4, q: 0, partition: 2, offset: 12 },
    ]);
    expect(batch.place(3)).toBe('db.public.u partition 0 offset 10');
    expect(batch.textOf(2)).toBe('{"op":"u"}');
    expect(batch.textOf(1)).toBeNull();
    expect(batch.rawKey(1)).toBe('{"id":1}');
    expect(batch.rawKey(0)).toBeUndefined();
  });

  it('reuses the chunks of a dropped batch without touching the lines of the batches after it', () => {
    // Several 1 MiB chunks each, one line longer than a chunk.
    const first = new LakeBatch();
    fill(first, 0, 3000, 'a'.repeat(1000));
    const ahead = new LakeBatch();
    fill(ahead, 3000, 3000, 'b'.repeat(1000));
    expect(first.bytes().length).toBeGreaterThan(2);
    first.dropBytes();
    expect(first.bytes()).toEqual([]);
    const next = new LakeBatch();
    fill(next, 6000, 3000, 'c'.repeat(1000));
    next.push(
      change('db.public.t', 0, 9000, null),
      JSON.stringify({ op: 'c', after: { pad: 'd'.repeat(2 << 20) } }),
    );
    const ofAhead = lines(ahead) as { k: { id: number }; v: { after: { pad: string } } }[];
    expect(ofAhead.map((l) => l.k.id)).toEqual(Array.from({ length: 3000 }, (_, i) => 3000 + i));
    expect(ofAhead.every((l) => l.v.after.pad === 'b'.repeat(1000))).toBe(true);
    const ofNext = lines(next) as { k: { id: number } | null; v: { after: { pad: string } } }[];
    expect(ofNext.map((l) => l.k?.id ?? 9000)).toEqual(Array.from({ length: 3001 }, (_, i) => 6000 + i));
    expect(ofNext.slice(0, 3000).every((l) => l.v.after.pad === 'c'.repeat(1000))).toBe(true);
    expect(ofNext[3000]!.v.after.pad).toHaveLength(2 << 20);
  });
});
