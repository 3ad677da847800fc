/**
 * Price buckets as FTS tokens, so a word and a numeric range intersect inside FTS5 (`search_sel`,
 * see `search-index.ts`) instead of by looking up the number of every match of the word.
 *
 * A value v of numeric column i is indexed at 16 granularities, widths 4^0 .. 4^15 (1 to 2^30):
 * the token `n<i>l<k>x<floor(v / 2^k)>` for k = 0, 2, ... 30 (a minus sign written `m`). A range
 * [lo, hi] becomes the OR of the buckets covering it: the two width-1 buckets holding lo and hi
 * (partly outside the range: their matches are checked against the numbers) and, between them,
 * the widest aligned buckets that fit (at most 3 per width and side). Values beyond ±2^52 (and
 * nulls) have no tokens; a range reaching there is not covered (the caller filters the old way).
 */

import Database from 'better-sqlite3';

const LEVELS = 15;
/** Values and bounds of this magnitude or more get no tokens. */
const LIMIT = 2 ** 52;
/** A range needing more tokens than this is filtered without buckets. */
export const MAX_COVER = 64;

const token = (column: number, level: number, index: number) =>
  `n${column}l${level}x${index < 0 ? `m${-index}` : index}`;

/** The bucket tokens of value `v` of numeric column `column` (none for null or huge values). */
export function bucketTokens(column: number, v: number | null): string[] {
  if (v === null || !Number.isFinite(v) || Math.abs(v) >= LIMIT) return [];
  const out: string[] = [];
  for (let k = 0; k <= 2 * LEVELS; k += 2) out.push(token(column, k, Math.floor(v / 2 ** k)));
  return out;
}

/**
 * The tokens whose documents include every value in [lo, hi]: `edges`, the width-1 buckets of lo
 * and hi (their documents may be outside the range), and `inner`, buckets inside the range; null
 * when there are too many.
 */
export function coverTokens(
  column: number,
  lo: number,
  hi: number,
): { edges: string[]; inner: string[] } | null {
  if (!(Math.abs(lo) < LIMIT && Math.abs(hi) < LIMIT) || lo > hi) return null;
  let a = Math.floor(lo);
  let b = Math.floor(hi);
  const edges = [token(column, 0, a)];
  if (b !== a) edges.push(token(column, 0, b));
  const out: string[] = [];
  a += 1;
  b -= 1;
  const mod4 = (x: number) => ((x % 4) + 4) % 4;
  for (let k = 0; a <= b; k += 2) {
    if (k === 2 * LEVELS) {
      if (b - a + 1 + out.length + 2 > MAX_COVER) return null;
      for (let i = a; i <= b; i++) out.push(token(column, k, i));
      break;
    }
    while (a <= b && mod4(a) !== 0) out.push(token(column, k, a++));
    while (a <= b && mod4(b + 1) !== 0) out.push(token(column, k, b--));
    if (out.length + 2 > MAX_COVER) return null;
    a /= 4;
    b = (b + 1) / 4 - 1;
  }
  return out.length + 2 > MAX_COVER ? null : { edges, inner: out };
}

/** The matches of a query: a join and its where clause, with the clause's parameters. */
export interface Query {
  readonly from: string;
  readonly clause: string;
  readonly params: readonly unknown[];
}

/**
 * `run()`, or undefined when the bucket table cannot answer its query: a word FTS5 splits into a
 * phrase of several tokens, which a `detail=column` table does not support.
 */
export function unsupported<T>(run: () => T): T | undefined {
  try {
    return run();
  } catch (error) {
    if (error instanceof Database.SqliteError && /not supported/.test(error.message)) return undefined;
    throw error;
  }
}
