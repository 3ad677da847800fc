/**
 * Queries a search index while its sink writes: the file is opened read-only (WAL readers do
 * not block the writer and see the last committed batch). See `search-query.ts` for the syntax.
 */
import Database from 'better-sqlite3';
import { parseExactJson } from '../sink-records.ts';
import { coverTokens, type Query, unsupported } from './search-buckets.ts';
import { type IndexLayout, readLayout } from './search-index.ts';
import { matchExpression, parseRangeFilter, type RangeFilter } from './search-query.ts';

export interface SearchRequest {
  readonly q: string;
  /** `price:10..20` forms (see `parseRangeFilter`). */
  readonly filters?: readonly string[];
  readonly limit?: number;
  readonly offset?: number;
}

export interface SearchHit {
  readonly key: string;
  /** bm25 with the column weights (lower is better; 0 when the query has no words). */
  readonly score: number;
  readonly doc: { readonly [column: string]: unknown };
}

/**
 * A query matching more documents than this (or than `offset + limit`, if more) ranks the first
 * this many of them in rowid order (for integer keys: the lowest keys) and counts the rest.
 */
export const RANK_WINDOW = 2_000;
/** Matches are counted up to this many (or the rank window, if larger); beyond, `totalExact` is false. */
export const COUNT_LIMIT = 10_000;

export interface SearchResult {
  /** Matching documents (at most the count limit: see `totalExact`). */
  readonly total: number;
  /** False when more documents match than `total` says (the count stopped at its limit). */
  readonly totalExact: boolean;
  /** The matches bm25 scored: all of them unless there are more than the rank window. */
  readonly scored: number;
  readonly hits: readonly SearchHit[];
}

export class SearchReader {
  readonly #db: Database.Database;
  readonly layout: IndexLayout;
  readonly #cache = new Map<string, Database.Statement>();
  readonly #rankWindow: number;
  readonly #countLimit: number;
  /** False for an index file its sink has not yet given the bucket table (`search_sel`). */
  readonly #hasSel: boolean;
  /** The number of documents, as of `#docsVersion` (the file's `data_version`). */
  #docs = 0;
  #docsVersion = -1;

  /** `limits`: the rank window and count limit (defaults `RANK_WINDOW`, `COUNT_LIMIT`). */
  /** `buckets: false`: filter by looking up each match's numbers (the plan before `search_sel`; for comparisons). */
  constructor(file: string, limits: { rankWindow?: number; countLimit?: number; buckets?: boolean } = {}) {
    this.#rankWindow = limits.rankWindow ?? RANK_WINDOW;
    this.#countLimit = limits.countLimit ?? COUNT_LIMIT;
    this.#db = new Database(file, { readonly: true, fileMustExist: true, timeout: 5_000 });
    try {
      this.layout = readLayout(this.#db);
      this.#hasSel =
        (limits.buckets ?? true) &&
        this.#db.prepare("select 1 from sqlite_master where name = 'search_sel'").get() !== undefined;
    } catch (error) {
      this.#db.close();
      throw error;
    }
  }

  /** One read transaction: its queries see the same committed batches. */
  search(request: SearchRequest): SearchResult {
    return this.#db.transaction(() => this.#search(request))();
  }

  #search(request: SearchRequest): SearchResult {
    const filters = (request.filters ?? []).map((f) => parseRangeFilter(f, this.layout.numeric));
    const match = matchExpression(request.q);
    const where: string[] = [];
    const params: unknown[] = [];
    if (match !== null) {
      where.push('search_fts match ?');
      params.push(match);
    }
    for (const f of filters) where.push(...this.#bounds(f, params));
    const clause = where.length > 0 ? `where ${where.join(' and ')}` : '';
    const limit = request.limit ?? 10;
    const offset = request.offset ?? 0;
    let total: number;
    let totalExact = true;
    // Rowids as bigint: a document whose key is not an integer has one above 2^53.
    let ranked: { rowid: bigint; score: number }[];
    let scored = 0;
    if (match !== null) {
      // Ranked on the FTS table alone (rowids order the ties); the narrow numbers table joins
      // only when a filter needs it, and the documents are read for the page of hits only. bm25
      // scores the first `window` matches in rowid order (FTS5 yields them in that order, so
      // the scan stops there): its cost grows with the documents scored, and a common word
      // matches most of the index.
      const from =
        filters.length > 0 ? 'search_fts f join search_nums d on d.rowid = f.rowid' : 'search_fts f';
      const weights = this.layout.fields.map((f) => f.weight).join(', ');
      const window = Math.max(this.#rankWindow, offset + limit);
      const counter: Query = { from, clause, params };
      // With a narrow range filter the bucket table (see `#selection`, `#narrow`) finds the
      // window's matches, and the ranking walks the words' matches up to there checking each
      // against that set, a cheaper test than looking up its numbers.
      const selection = filters.length > 0 ? this.#selection(match, filters) : null;
      const rank = (q: Query, extra: unknown[]) =>
        this.#prepare(
          `select rowid, score, count(*) over () as n, max(rowid) over () as last from (
           select f.rowid as rowid, bm25(search_fts, ${weights}) as score from ${q.from} ${q.clause}
           order by f.rowid limit ?)
         order by score, rowid limit ? offset ?`,
        )
          .safeIntegers(true)
          .all(...q.params, ...extra, window, limit, offset) as {
          rowid: bigint;
          score: number;
          n: bigint;
          last: bigint;
        }[];
      const rows =
        (selection?.narrow
          ? unsupported(() =>
              rank(
                {
                  from: 'search_fts f',
                  clause: `where search_fts match ? and +f.rowid in (
                  select f.rowid from ${selection.all.from} ${selection.all.clause} order by f.rowid limit ?)`,
                  params: [match, ...selection.all.params],
                },
                [window],
              ),
            )
          : undefined) ?? rank(counter, []);
      ranked = rows;
      const first = rows[0];
      if (first === undefined) {
        // An empty page (offset past the matches, or none): count them.
        scored = this.#count(counter, 0, window);
        total = scored;
      } else {
        scored = Number(first.n);
        total = scored;
        if (scored === window) {
          // The window is full: count on from its last match, up to the count limit. With a
          // range filter, in the bucket table (see `#selection`): FTS5 intersects the words with
          // the range's buckets, instead of the numbers of every match being looked up.
          const cap = Math.max(this.#countLimit, window);
          const rest =
            selection === null
              ? undefined
              : unsupported(() =>
                  selection.counts.reduce((n, q) => n + this.#count(q, first.last, cap - scored + 1), 0),
                );
          total = scored + (rest ?? this.#count(counter, first.last, cap - scored + 1));
          if (total > cap) {
            total = cap;
            totalExact = false;
          }
        }
      }
    } else {
      total = this.#prepare(`select count(*) from search_docs d ${clause}`)
        .pluck()
        .get(...params) as number;
      ranked = this.#prepare(
        `select d.rowid as rowid, 0.0 as score from search_docs d ${clause} order by d.rowid limit ? offset ?`,
      )
        .safeIntegers(true)
        .all(...params, limit, offset) as typeof ranked;
      scored = total;
    }
    const doc = this.#prepare('select doc_key as key, doc from search_docs where rowid = ?');
    const hits = ranked.map((r) => {
      const row = doc.get(r.rowid) as { key: string; doc: string };
      return { key: row.key, score: r.score, doc: storedDoc(row.doc) };
    });
    return { total, totalExact, scored, hits };
  }

  /**
   * The words and ranges as a query of the bucket table: its text columns must match the words
   * and its token column one of the buckets covering each range; the matches in the edge
   * buckets (and, simply, all of them) are checked against the numbers. Null when a range is
   * open or too wide to cover (see `coverTokens`), or the index has no bucket table.
   */
  #selection(
    match: string,
    filters: readonly RangeFilter[],
  ): { all: Query; counts: Query[]; narrow: boolean } | null {
    // A one-letter prefix has no prefix index: expanding it twice (here and in the ranking) costs more.
    if (!this.#hasSel || /"[^"]"\*/u.test(match)) return null;
    const covers: { edges: string[]; inner: string[] }[] = [];
    const params: unknown[] = [];
    const where: string[] = [];
    for (const f of filters) {
      if (f.min === undefined || f.max === undefined) return null;
      const cover = coverTokens(this.layout.numeric.indexOf(f.column), f.min, f.max);
      if (cover === null) return null;
      covers.push(cover);
      where.push(...this.#bounds(f, params));
    }
    const text = `{${this.layout.fields.map((_, i) => `f${i}`).join(' ')}}: (${match})`;
    const any = (tokens: string[]) => `{p}: (${tokens.map((t) => `"${t}"`).join(' OR ')})`;
    const checked = (groups: string[]): Query => ({
      from: 'search_sel f join search_nums d on d.rowid = f.rowid',
      clause: `where search_sel match ? and ${where.join(' and ')}`,
      params: [[text, ...groups].join(' AND '), ...params],
    });
    const all = checked(covers.map((c) => any([...c.edges, ...c.inner])));
    const [one] = covers;
    const narrow = this.#narrow(filters);
    if (covers.length > 1 || one === undefined) return { all, counts: [all], narrow };
    // One range: the documents of the inner buckets are in it (no lookup); those of the edges
    // are looked up. The two sets are disjoint (a value is in one width-1 bucket).
    const edges = checked([any(one.edges)]);
    if (one.inner.length === 0) return { all, counts: [edges], narrow };
    const inner = {
      from: 'search_sel f',
      clause: 'where search_sel match ?',
      params: [`${text} AND ${any(one.inner)}`],
    };
    return { all, counts: [inner, edges], narrow };
  }

  /**
   * Whether some range holds at most 1/32 of the documents (counted on its column's index, up to
   * there). Then the ranking takes the window's matches from the bucket table: a common word may
   * have to be walked to its end before the window fills, and checking each of its matches
   * against that set costs less than looking up its numbers; for a wider range the window fills
   * soon and the lookups are cheaper than going through the buckets first.
   */
  #narrow(filters: readonly RangeFilter[]): boolean {
    const version = this.#db.pragma('data_version', { simple: true }) as number;
    if (version !== this.#docsVersion) {
      this.#docs = this.#prepare('select count(*) from search_nums').pluck().get() as number;
      this.#docsVersion = version;
    }
    const share = Math.floor(this.#docs / 32);
    return filters.some(
      (f) =>
        (this.#prepare(
          `select count(*) from (select 1 from search_docs where n${this.layout.numeric.indexOf(f.column)} between ? and ? limit ?)`,
        )
          .pluck()
          .get(f.min ?? null, f.max ?? null, share + 1) as number) <= share,
    );
  }

  /** Matches after rowid `after`, at most `cap` (the scan stops there). */
  #count({ from, clause, params }: Query, after: number | bigint, cap: number): number {
    const where = clause === '' ? 'where f.rowid > ?' : `${clause} and f.rowid > ?`;
    return this.#prepare(`select count(*) from (select 1 from ${from} ${where} limit ?)`)
      .pluck()
      .get(...params, after, cap) as number;
  }

  #bounds(f: RangeFilter, params: unknown[]): string[] {
    const column = `d.n${this.layout.numeric.indexOf(f.column)}`;
    const out: string[] = [];
    if (f.min !== undefined) {
      out.push(`${column} >= ?`);
      params.push(f.min);
    }
    if (f.max !== undefined) {
      out.push(`${column} <= ?`);
      params.push(f.max);
    }
    return out;
  }

  #prepare(sql: string): Database.Statement {
    let statement = this.#cache.get(sql);
    if (!statement) {
      statement = this.#db.prepare(sql);
      this.#cache.set(sql, statement);
    }
    return statement;
  }

  close(): void {
    this.#db.close();
  }
}

/** A hit's stored columns; an integer beyond 2^53 comes back as the string of its digits (JSON cannot carry it as a number). */
function storedDoc(text: string): SearchHit['doc'] {
  const doc = parseExactJson(text) as Record<string, unknown>;
  for (const [column, value] of Object.entries(doc))
    if (typeof value === 'bigint') doc[column] = String(value);
  return doc;
}
