import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { createIndex, IndexWriter } from './search-index.ts';
import { SearchReader } from './search-reader.ts';
import { searchLayout, searchOptions } from './search-sink.ts';

/** 300 documents; "common" in every one (a varying number of times), "rare" in every 25th. */
function index(): string {
  const file = join(mkdtempSync(join(tmpdir(), 'search-window-')), 'i.db');
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  const layout = searchLayout(searchOptions.parse({}));
  createIndex(db, layout, 'sinks.s');
  const w = new IndexWriter(db, layout);
  db.transaction(() => {
    for (let id = 1; id <= 300; id++) {
      const name = `${'common '.repeat(1 + ((id * 7) % 5))}item${id}`;
      const description = `${id % 25 === 0 ? 'rare ' : ''}filler words ${'x '.repeat(id % 13)}`;
      w.upsert(String(id), { id, name, description, price: String(id) });
    }
  })();
  db.close();
  return file;
}

const keys = (r: { hits: readonly { key: string }[] }) => r.hits.map((h) => h.key);

describe('search: rank window and count limit', () => {
  it('ranks exactly below the window; above it, the best of the first matches by rowid, counted up to the limit', () => {
    const file = index();
    const full = new SearchReader(file, { rankWindow: 1_000_000, countLimit: 1_000_000 });
    const small = new SearchReader(file, { rankWindow: 50, countLimit: 120 });
    // Under the window (12 matches): the same hits, scores and total as an unlimited ranking.
    expect(small.search({ q: 'rare', limit: 20 })).toEqual(full.search({ q: 'rare', limit: 20 }));
    // Above it: the best 10 of documents 1..50, exactly as ranking only those would order them.
    const firstFifty = full
      .search({ q: 'common', limit: 300 })
      .hits.filter((h) => Number(h.key) <= 50)
      .slice(0, 10);
    const windowed = small.search({ q: 'common', limit: 10 });
    expect(keys(windowed)).toEqual(keys({ hits: firstFifty }));
    expect(windowed).toMatchObject({ total: 120, totalExact: false, scored: 50 });
    expect(full.search({ q: 'common' })).toMatchObject({ total: 300, totalExact: true, scored: 300 });
    // With a filter: the window and the count apply to the documents that pass it.
    const filtered = small.search({ q: 'common', filters: ['price:101..200'], limit: 5 });
    expect(filtered).toMatchObject({ total: 100, totalExact: true, scored: 50 });
    const oracle = full
      .search({ q: 'common', filters: ['price:101..200'], limit: 300 })
      .hits.filter((h) => Number(h.key) <= 150)
      .slice(0, 5);
    expect(keys(filtered)).toEqual(keys({ hits: oracle }));
    // Asking for more hits than the window widens it: every match, ranked as without limits.
    expect(keys(small.search({ q: 'common', limit: 300 }))).toEqual(
      keys(full.search({ q: 'common', limit: 300 })),
    );
    // A page past the matches is empty and still counts them.
    expect(small.search({ q: 'rare', offset: 40 })).toMatchObject({ total: 12, hits: [] });
    small.close();
    full.close();
  });
});
