import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { createIndex, IndexWriter } from './search-index.ts';
import { SearchReader } from './search-reader.ts';
import { searchLayout, searchOptions } from './search-sink.ts';

describe('search index', () => {
  it('ranks by weighted bm25, matches prefixes, filters by range, forgets deleted documents', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'search-index-')), 'i.db');
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    const layout = searchLayout(searchOptions.parse({}));
    createIndex(db, layout, 'sinks.s');
    const w = new IndexWriter(db, layout);
    w.upsert('1', { id: 1, name: 'Red lamp', description: 'a lamp for the desk', price: '19.99' });
    w.upsert('2', { id: 2, name: 'Desk', description: 'oak desk, goes with a red lamp', price: '120.00' });
    w.upsert('10', { id: 10, name: 'Lampshade', description: 'Crème linen', price: '9.50' });
    w.upsert('3', { id: 3, name: 'Chair', description: null, price: '45.00' });
    const r = new SearchReader(file);
    // "red lamp" is in both; the name weighs 10x the description.
    expect(r.search({ q: 'red lamp' }).hits.map((h) => h.key)).toEqual(['1', '2']);
    expect(
      r
        .search({ q: 'lamp*' })
        .hits.map((h) => h.key)
        .sort(),
    ).toEqual(['1', '10', '2']);
    expect(r.search({ q: 'creme' }).hits.map((h) => h.key)).toEqual(['10']);
    expect(r.search({ q: 'lamp*', filters: ['price:10..100'] }).hits.map((h) => h.key)).toEqual(['1']);
    // No words: filters only, in key order (integer keys numerically).
    expect(r.search({ q: '', filters: ['price:..50'] })).toMatchObject({
      total: 3,
      hits: [{ key: '1' }, { key: '3' }, { key: '10' }],
    });
    expect(r.search({ q: '', limit: 2, offset: 1 }).hits.map((h) => h.key)).toEqual(['2', '3']);
    expect(r.search({ q: 'chair' }).hits[0]?.doc).toEqual({
      id: 3,
      name: 'Chair',
      description: null,
      price: '45.00',
    });
    w.upsert('1', { id: 1, name: 'Blue lamp', description: 'desk', price: '219.99' });
    w.delete('2');
    // The filter sees the new price, and the deleted document is gone from it.
    expect(r.search({ q: 'lamp*', filters: ['price:200..'] }).hits.map((h) => h.key)).toEqual(['1']);
    expect(r.search({ q: 'desk', filters: ['price:..300'] }).hits.map((h) => h.key)).toEqual(['1']);
    // An index file from before the numbers table gets one, filled from its documents.
    db.exec('drop table search_nums');
    createIndex(db, layout, 'sinks.s');
    const migrated = new SearchReader(file);
    expect(migrated.search({ q: 'lamp*', filters: ['price:..20'] }).hits.map((h) => h.key)).toEqual(['10']);
    migrated.close();
    expect(r.search({ q: 'red' }).total).toBe(0);
    expect(r.search({ q: 'blue' }).hits.map((h) => h.key)).toEqual(['1']);
    // A truncate at LSN 100 keeps what changed after it (arrived first from another partition).
    w.upsert('7', { id: 7, name: 'Late lamp', price: '1' }, 150);
    w.truncate(100);
    expect(r.search({ q: '' }).hits.map((h) => h.key)).toEqual(['7']);
    w.truncate();
    expect(r.search({ q: '' }).total).toBe(0);
    // Keys that are not integers get rowids above 2^53: listed and found with their documents.
    w.upsert('sku-b', { id: 'sku-b', name: 'Green lamp', price: '5' });
    w.upsert('["a",1]', { id: 'x', name: 'Green desk', price: '6' });
    expect(r.search({ q: '' })).toMatchObject({ hits: [{ key: 'sku-b', score: 0 }, { key: '["a",1]' }] });
    expect(r.search({ q: 'green desk' }).hits.map((h) => h.doc.name)).toEqual(['Green desk']);
    // ... and updated and deleted by their keys.
    w.upsert('sku-b', { id: 'sku-b', name: 'Yellow lamp', price: '5' });
    w.delete('["a",1]');
    expect(r.search({ q: '' }).hits.map((h) => [h.key, h.doc.name])).toEqual([['sku-b', 'Yellow lamp']]);
    expect(r.search({ q: 'green' }).total).toBe(0);
    expect(() => r.search({ q: 'x', filters: ['weight:1..2'] })).toThrow(/weight is not a numeric column/);
    r.close();
    // Another layout on the same file is refused, naming the sink.
    expect(() => createIndex(db, { ...layout, numeric: [] }, 'sinks.s')).toThrow(/sinks\.s: the index file/);
    db.close();
  });
});
