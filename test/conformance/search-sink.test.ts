/**
 * The `search` sink through the Sink conformance suite: each document's stored columns are the
 * row, and every read also checks that the full-text table and the numbers table hold exactly the
 * documents (a write that reached one table but not the other fails here), and that each document
 * is found by a word of its name.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SearchReader } from '../../src/sinks/search/search-reader.ts';
import { searchSinkKind } from '../../src/sinks/search/search-sink.ts';
import type { Sink } from '../../src/sinks/sink.ts';
import { type ItemRow, sinkConformance } from './sink-conformance.ts';

const text = (v: unknown) => (v === null || v === undefined ? null : String(v));

sinkConformance('search', async () => {
  const file = join(mkdtempSync(join(tmpdir(), 'search-sink-')), 'items.db');
  const env = { name: 'items-search', dataDir: tmpdir(), topicPrefix: 'shop', format: 'debezium' as const };
  const sink = (await searchSinkKind.create(
    searchSinkKind.options.parse({
      file,
      fields: { name: 1 },
      numeric: ['qty', 'price'],
      stored: ['id', 'name', 'qty', 'big', 'price'],
    }),
    env,
  )) as Sink<unknown>;
  return {
    sink,
    async rows() {
      const db = new Database(file, { readonly: true });
      db.defaultSafeIntegers(true);
      let docs: { rowid: bigint; key: string; doc: string }[];
      try {
        docs = db
          .prepare('select rowid, doc_key as key, doc from search_docs order by rowid')
          .all() as typeof docs;
        const ids = (sql: string) => (db.prepare(sql).pluck().all() as bigint[]).map(String);
        const expected = docs.map((d) => String(d.rowid));
        if (String(ids('select rowid from search_fts order by rowid')) !== String(expected))
          throw new Error('search_fts does not hold exactly the documents');
        if (String(ids('select rowid from search_nums order by rowid')) !== String(expected))
          throw new Error('search_nums does not hold exactly the documents');
      } finally {
        db.close();
      }
      const reader = new SearchReader(file);
      const rows = new Map<string, ItemRow>();
      try {
        for (const d of docs) {
          // The document as a query returns it: found by the words of its name and its quantity.
          const qty = /\d+/.exec(d.doc.slice(d.doc.indexOf('"qty":')))?.[0];
          const found = reader.search({ q: `item ${qty}`, filters: [`qty:${qty}..${qty}`], limit: 1000 });
          const doc = found.hits.find((h) => h.key === d.key)?.doc;
          if (!doc) throw new Error(`document ${d.key} is not found by its name`);
          rows.set(d.key, {
            name: text(doc.name),
            qty: text(doc.qty),
            big: text(doc.big),
            price: text(doc.price),
          });
        }
      } finally {
        reader.close();
      }
      return rows;
    },
    close: async () => {},
  };
});
