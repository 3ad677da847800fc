/**
 * A search index in one SQLite file: the documents (`search_docs`: key, stored columns as JSON,
 * one REAL column per numeric filter), their text in an FTS5 table (`search_fts`, rowid = the
 * document's rowid; tokenizer unicode61 without diacritics, prefix indexes for 2 and 3 letters),
 * the numeric columns again in a narrow table (`search_nums`: a query with words and a filter
 * looks up each match's numbers there, a few times faster than in the wide documents table), the
 * text again with the numbers' bucket tokens in a contentless FTS5 table (`search_sel`: text
 * columns f0.. and a last column `p` of tokens from `search-buckets.ts`, so a word and a range
 * intersect inside FTS5; used to select and count, never to rank, since the extra tokens would
 * change bm25's document lengths) and its layout in `search_meta`, so a reader needs only the file.
 *
 * Ranking: bm25 with the configured column weights (a match in a heavier column ranks higher);
 * ties by rowid. A document whose key is an integer has that integer as its rowid (so ties are in
 * key order, and ranking never needs the documents table); other keys get rowids above 2^53, in
 * the order they were first indexed.
 */
import type Database from 'better-sqlite3';
import { ConfigError } from '../../core/errors.ts';
import { exactJson } from '../sink-records.ts';
import { bucketTokens } from './search-buckets.ts';

export interface IndexLayout {
  /** The key column, or the columns of a composite key. */
  readonly key: string | readonly string[];
  /** Text columns with their bm25 weights, in FTS column order. */
  readonly fields: readonly { readonly column: string; readonly weight: number }[];
  /** Numeric columns offered as range filters (`n0`, `n1`... in `search_docs`). */
  readonly numeric: readonly string[];
  /** Columns returned with each hit. */
  readonly stored: readonly string[];
}

const INTEGER_KEY = /^-?\d{1,16}$/;
/** Rowids of documents whose key is not an integer start above every safe integer key. */
const OTHER_KEYS = '9007199254740992';

const META = 'create table if not exists search_meta (name text primary key, value text not null)';

/** Creates the index (or checks that an existing one has the same layout). */
export function createIndex(db: Database.Database, layout: IndexLayout, where: string): void {
  db.exec(META);
  const existing = db.prepare("select value from search_meta where name = 'layout'").pluck().get() as
    | string
    | undefined;
  const wanted = JSON.stringify(layout);
  if (existing !== undefined) {
    if (existing !== wanted) {
      throw new ConfigError(`${where}: the index file was built with other fields or filters`, {
        hint: 'delete the index file (it is rebuilt from the log) or give the sink another "file"',
      });
    }
    db.exec(numsTable(layout));
    selTable(db, layout);
    return;
  }
  const numeric = layout.numeric.map((_, i) => `, n${i} real`).join('');
  const fts = layout.fields.map((_, i) => `f${i}`).join(', ');
  db.exec(`
    create table search_docs (rowid integer primary key, doc_key text not null unique, doc text not null, lsn integer${numeric});
    ${layout.numeric.map((_, i) => `create index search_docs_n${i} on search_docs (n${i});`).join('\n')}
    create virtual table search_fts using fts5(${fts}, tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3');`);
  db.exec(numsTable(layout));
  selTable(db, layout);
  db.prepare("insert into search_meta values ('layout', ?)").run(wanted);
}

/** The bucket tokens of a document's numbers, as the text of `search_sel`'s last column. */
export function bucketText(numbers: readonly (number | null)[]): string {
  return numbers.flatMap((v, i) => bucketTokens(i, v)).join(' ');
}

/** `search_sel`, created and filled from the FTS table and the numbers when an older index file has none. */
function selTable(db: Database.Database, layout: IndexLayout): void {
  const exists = db.prepare("select 1 from sqlite_master where name = 'search_sel'").get();
  if (exists !== undefined) return;
  const fields = layout.fields.map((_, i) => `f${i}`);
  db.exec(`create virtual table search_sel using fts5(${[...fields, 'p'].join(', ')}, content = '',
    contentless_delete = 1, detail = column, tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3')`);
  db.function('search_bucket_text', { varargs: true, deterministic: true }, (...n: unknown[]) =>
    bucketText(n.map((v) => (typeof v === 'number' ? v : null))),
  );
  const nums = layout.numeric.map((_, i) => `n.n${i}`);
  db.exec(`insert into search_sel (rowid, ${[...fields, 'p'].join(', ')})
    select f.rowid, ${fields.map((c) => `f.${c}`).join(', ')}, ${nums.length > 0 ? `search_bucket_text(${nums.join(', ')})` : "''"}
    from search_fts f left join search_nums n on n.rowid = f.rowid`);
}

/** `search_nums`, filled from the documents when an older index file has none. */
function numsTable(layout: IndexLayout): string {
  const columns = layout.numeric.map((_, i) => `n${i}`);
  const names = ['rowid', ...columns].join(', ');
  return `create table if not exists search_nums (rowid integer primary key${columns.map((c) => `, ${c} real`).join('')});
    insert into search_nums (${names}) select ${names} from search_docs
      where not exists (select 1 from search_nums limit 1);`;
}

export function readLayout(db: Database.Database): IndexLayout {
  const value = db.prepare("select value from search_meta where name = 'layout'").pluck().get() as
    | string
    | undefined;
  if (value === undefined)
    throw new ConfigError('the search index has no layout yet (its sink has not opened it)');
  return JSON.parse(value) as IndexLayout;
}

export type Doc = { readonly [column: string]: unknown };

/** Writes documents into the index; the caller holds the transaction. */
export class IndexWriter {
  readonly #layout: IndexLayout;
  readonly #s;

  constructor(db: Database.Database, layout: IndexLayout) {
    this.#layout = layout;
    const n = layout.numeric.length;
    const cols = layout.numeric.map((_, i) => `, n${i}`).join('');
    const marks = ', ?'.repeat(n);
    const fields = layout.fields.map((_, i) => `f${i}`).join(', ');
    this.#s = {
      // bigint: the rowids of keys that are not integers are above 2^53 (a number would round them).
      find: db.prepare('select rowid from search_docs where doc_key = ?').pluck().safeIntegers(true),
      insert: db.prepare(
        `insert into search_docs (rowid, doc_key, doc, lsn${cols}) values (?, ?, ?, ?${marks})`,
      ),
      nextOther: db
        .prepare(
          `select coalesce(max(rowid), ${OTHER_KEYS}) + 1 from search_docs where rowid > ${OTHER_KEYS}`,
        )
        .pluck()
        .safeIntegers(true),
      update: db.prepare(
        `update search_docs set doc = ?, lsn = ?${layout.numeric.map((_, i) => `, n${i} = ?`).join('')} where rowid = ?`,
      ),
      remove: db.prepare('delete from search_docs where rowid = ?'),
      setNums: db.prepare(`insert or replace into search_nums (rowid${cols}) values (?${marks})`),
      removeNums: db.prepare('delete from search_nums where rowid = ?'),
      ftsInsert: db.prepare(
        `insert into search_fts (rowid, ${fields}) values (?${', ?'.repeat(layout.fields.length)})`,
      ),
      ftsRemove: db.prepare('delete from search_fts where rowid = ?'),
      selInsert: db.prepare(
        `insert into search_sel (rowid, ${fields}, p) values (?${', ?'.repeat(layout.fields.length + 1)})`,
      ),
      selRemove: db.prepare('delete from search_sel where rowid = ?'),
      cutSel: db.prepare(
        'delete from search_sel where rowid in (select rowid from search_docs where lsn is null or lsn < ?)',
      ),
      cutFts: db.prepare(
        'delete from search_fts where rowid in (select rowid from search_docs where lsn is null or lsn < ?)',
      ),
      cutNums: db.prepare(
        'delete from search_nums where rowid in (select rowid from search_docs where lsn is null or lsn < ?)',
      ),
      cutDocs: db.prepare('delete from search_docs where lsn is null or lsn < ?'),
    };
  }

  /** `lsn`: the change's source position (see `RowChange`), for truncates. */
  upsert(key: string, row: Doc, lsn: number | null = null): void {
    const stored: Record<string, unknown> = {};
    for (const c of this.#layout.stored) stored[c] = row[c] ?? null;
    const numbers = this.#layout.numeric.map((c) => toNumber(row[c]));
    const texts = this.#layout.fields.map((f) => toText(row[f.column]));
    const rowid = this.#s.find.get(key) as number | bigint | undefined;
    if (rowid === undefined) {
      const id =
        INTEGER_KEY.test(key) && Number.isSafeInteger(Number(key))
          ? Number(key)
          : (this.#s.nextOther.get() as bigint);
      this.#s.insert.run(id, key, exactJson(stored), lsn, ...numbers);
      this.#s.setNums.run(id, ...numbers);
      this.#s.ftsInsert.run(id, ...texts);
      this.#s.selInsert.run(id, ...texts, bucketText(numbers));
      return;
    }
    this.#s.update.run(exactJson(stored), lsn, ...numbers, rowid);
    this.#s.setNums.run(rowid, ...numbers);
    this.#s.ftsRemove.run(rowid);
    this.#s.ftsInsert.run(rowid, ...texts);
    this.#s.selRemove.run(rowid);
    this.#s.selInsert.run(rowid, ...texts, bucketText(numbers));
  }

  delete(key: string): void {
    const rowid = this.#s.find.get(key) as number | bigint | undefined;
    if (rowid === undefined) return;
    this.#s.remove.run(rowid);
    this.#s.removeNums.run(rowid);
    this.#s.ftsRemove.run(rowid);
    this.#s.selRemove.run(rowid);
  }

  /** A truncate: the documents changed below `cut` (an LSN) or at an unknown position go. */
  truncate(cut: number = Number.MAX_SAFE_INTEGER): void {
    this.#s.cutFts.run(cut);
    this.#s.cutSel.run(cut);
    this.#s.cutNums.run(cut);
    this.#s.cutDocs.run(cut);
  }
}

function toNumber(value: unknown): number | null {
  if (value === null || value === undefined || value === '') return null;
  const n = typeof value === 'number' ? value : Number(value);
  return Number.isFinite(n) ? n : null;
}

function toText(value: unknown): string {
  if (value === null || value === undefined) return '';
  return typeof value === 'string' ? value : exactJson(value);
}
