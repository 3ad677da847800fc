import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { bucketTokens, coverTokens } from './search-buckets.ts';
import { createIndex, IndexWriter } from './search-index.ts';
import { SearchReader } from './search-reader.ts';
import { searchLayout, searchOptions } from './search-sink.ts';

let seed = 7;
const random = () => {
  seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
  return seed / 2_147_483_648;
};
const WORDS = ['alpha', 'beta', 'gamma', 'delta', 'omega', 'zeta'];
const word = () => WORDS[Math.floor(random() ** 2 * WORDS.length)] as string;
const price = () => {
  const r = random();
  if (r < 0.05) return null;
  if (r < 0.1) return String(-Math.floor(random() * 5000) / 4);
  return (random() * 300).toFixed(random() < 0.5 ? 0 : 2);
};

describe('search: price buckets', () => {
  it('covers every value of a range with the tokens of the range, and only whole buckets between the edges', () => {
    for (let i = 0; i < 3000; i++) {
      const lo = Math.floor((random() - 0.3) * 10_000) / 8;
      const hi = lo + Math.floor(random() * (random() < 0.5 ? 64 : 100_000)) / 4;
      const cover = coverTokens(0, lo, hi);
      expect(cover).not.toBeNull();
      const set = new Set([...(cover?.edges ?? []), ...(cover?.inner ?? [])]);
      for (const v of [lo, hi, (lo + hi) / 2, lo + (hi - lo) * random()]) {
        expect(bucketTokens(0, v).some((t) => set.has(t))).toBe(true);
      }
      // A value just outside the range is in no bucket of the cover; one in an inner bucket is in the range.
      for (const v of [Math.floor(lo) - 0.5, Math.floor(hi) + 1.5]) {
        expect(bucketTokens(0, v).some((t) => set.has(t))).toBe(false);
      }
      const inner = new Set(cover?.inner);
      for (const v of [lo - 1, lo - 0.25, hi + 0.25, hi + 1, lo + (hi - lo) * random()]) {
        if (bucketTokens(0, v).some((t) => inner.has(t))) expect(v >= lo && v <= hi).toBe(true);
      }
    }
    expect(coverTokens(0, 0, 2 ** 53)).toBeNull();
  });

  it('answers a word with a range exactly as looking up every match, on random data; an older index file gets the bucket table on open', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'search-buckets-')), 'i.db');
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    const layout = searchLayout(searchOptions.parse({}));
    createIndex(db, layout, 'sinks.s');
    const w = new IndexWriter(db, layout);
    const write = (n: number) =>
      db.transaction(() => {
        for (let i = 0; i < n; i++) {
          const id = 1 + Math.floor(random() * 3000);
          if (random() < 0.1) w.delete(String(id));
          else {
            const name = `${word()} ${word()}`;
            w.upsert(String(id), { id, name, description: `${word()} ${word()} ${word()}`, price: price() });
          }
        }
      })();
    write(4000);
    // An index file from before the bucket table: dropped here, rebuilt by the next open.
    db.exec('drop table search_sel');
    createIndex(db, layout, 'sinks.s');
    write(2000);
    db.close();
    const limits = { rankWindow: 100, countLimit: 700 };
    const ours = new SearchReader(file, limits);
    const lookups = new SearchReader(file, { ...limits, buckets: false });
    const unlimited = new SearchReader(file, { rankWindow: 1e9, countLimit: 1e9, buckets: false });
    let counted = 0;
    for (let i = 0; i < 300; i++) {
      const lo = Math.floor((random() - 0.1) * 3000) / 10;
      const hi = lo + Math.floor(random() * 1500) / 10;
      const q = random() < 0.2 ? `${word().slice(0, 2)}*` : random() < 0.5 ? word() : `${word()} ${word()}`;
      const request = { q, filters: [`price:${lo}..${hi}`], limit: 10, offset: random() < 0.2 ? 95 : 0 };
      const got = ours.search(request);
      expect(got).toEqual(lookups.search(request));
      const all = unlimited.search(request);
      expect(got.total).toBe(Math.min(all.total, 700));
      expect(got.totalExact).toBe(all.total <= 700);
      if (got.scored === 100) counted++;
    }
    // A word FTS5 splits into a phrase (the bucket table, detail=column, has no phrases): the lookup plan answers.
    for (const filters of [['price:10..12'], ['price:0..200']]) {
      const request = { q: 'alpha_beta', filters, limit: 10 };
      expect(ours.search(request)).toEqual(lookups.search(request));
    }
    // The bucket count ran (full windows), and found totals only it could give.
    expect(counted).toBeGreaterThan(30);
    ours.close();
    lookups.close();
    unlimited.close();
  });
});
