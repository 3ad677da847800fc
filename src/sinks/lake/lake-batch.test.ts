import { describe, expect, it } from 'vitest';
import { LakeBatch } from './lake-batch.ts';

/** The staged lines of `batch`, parsed. */
function lines(batch: LakeBatch): unknown[] {
  const text = Buffer.concat(batch.bytes()).toString('utf8');
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l));
}

function fill(batch: LakeBatch, from: number, count: number, pad: string): void {
  for (let i = from; i < from + count; i++) {
    batch.push(
      'db.public.t',
      0,
      i,
      1000 + i,
      `{"id":${i}}`,
      JSON.stringify({ op: 'c', after: { id: i, pad } }),
    );
  }
}

describe('LakeBatch', () => {
  it('stages a line per change, wrapping the envelope with its place, key and topic', () => {
    const batch = new LakeBatch();
    batch.push('db.public.t', 2, 7, 1.5, 'k "1" é', '{"op":"d"}');
    batch.push('db.public.u', 0, 8, 9, null, '{"op":"c"}');
    expect(lines(batch)).toEqual([
      { o: 7, p: 2, t: 1.5, q: 0, k: 'k "1" é', v: { op: 'd' } },
      { o: 8, p: 0, t: 9, q: 1, k: null, v: { op: 'c' } },
    ]);
    expect(batch.topics).toEqual(['db.public.t', 'db.public.u']);
    expect(batch.place(1)).toBe('db.public.u partition 0 offset 8');
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
      'db.public.t',
      0,
      9000,
      1,
      null,
      JSON.stringify({ op: 'c', after: { pad: 'd'.repeat(2 << 20) } }),
    );
    const ofAhead = lines(ahead) as { o: number; v: { after: { pad: string } } }[];
    expect(ofAhead.map((l) => l.o)).toEqual(Array.from({ length: 3000 }, (_, i) => 3000 + i));
    expect(ofAhead.every((l) => l.v.after.pad === 'b'.repeat(1000))).toBe(true);
    const ofNext = lines(next) as { o: number; v: { after: { pad: string } } }[];
    expect(ofNext.map((l) => l.o)).toEqual(Array.from({ length: 3001 }, (_, i) => 6000 + i));
    expect(ofNext.slice(0, 3000).every((l) => l.v.after.pad === 'c'.repeat(1000))).toBe(true);
    expect(ofNext[3000]!.v.after.pad).toHaveLength(2 << 20);
  });
});
