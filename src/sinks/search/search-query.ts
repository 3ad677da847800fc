/**
 * The query language of a search index, turned into FTS5 syntax that cannot be malformed:
 * - words are matched as whole tokens (case and diacritics ignored): `red lamp` = both words;
 * - a word ending in `*` is a prefix: `lam*` matches lamp, lamps, lambda;
 * - filters on the index's numeric columns: `price:10..20` (inclusive), `price:10..`, `price:..20`.
 * Every word must match (AND). Punctuation separates words; nothing the user types is FTS5 syntax.
 */
import { TributaryError } from '../../core/errors.ts';

export class SearchQueryError extends TributaryError {
  constructor(message: string, hint?: string) {
    super('SEARCH_QUERY_INVALID', message, hint ? { hint } : {});
  }
}

export interface RangeFilter {
  readonly column: string;
  readonly min?: number;
  readonly max?: number;
}

/** The FTS5 MATCH expression of `q`, or `null` when it has no word (filters only). */
export function matchExpression(q: string): string | null {
  const terms: string[] = [];
  for (const chunk of q.trim().split(/\s+/)) {
    const prefix = chunk.endsWith('*');
    const words = chunk.match(/[\p{L}\p{N}_]+/gu) ?? [];
    words.forEach((word, i) => {
      // Only the last word of a chunk carries its star: `foo-ba*` = foo AND ba*.
      terms.push(`"${word}"${prefix && i === words.length - 1 ? '*' : ''}`);
    });
  }
  return terms.length > 0 ? terms.join(' AND ') : null;
}

const NUMBER = /^-?\d+(?:\.\d+)?$/;

/** `price:10..20` → `{ column: 'price', min: 10, max: 20 }`; checks the column is filterable. */
export function parseRangeFilter(text: string, columns: readonly string[]): RangeFilter {
  const usage = 'write <column>:<min>..<max> (either bound may be left out), e.g. price:10..20';
  const colon = text.indexOf(':');
  const bounds =
    colon > 0
      ? text
          .slice(colon + 1)
          .trim()
          .split('..')
      : [];
  if (bounds.length !== 2) throw new SearchQueryError(`filter ${JSON.stringify(text)} is not a range`, usage);
  const column = text.slice(0, colon).trim();
  const [min = '', max = ''] = bounds;
  if (!columns.includes(column)) {
    throw new SearchQueryError(
      `filter ${JSON.stringify(text)}: ${column} is not a numeric column of the index`,
      `filterable columns: ${columns.join(', ') || '(none)'}`,
    );
  }
  for (const bound of [min, max]) {
    if (bound !== '' && !NUMBER.test(bound))
      throw new SearchQueryError(`filter ${JSON.stringify(text)}: ${bound} is not a number`, usage);
  }
  return {
    column,
    ...(min !== '' ? { min: Number(min) } : {}),
    ...(max !== '' ? { max: Number(max) } : {}),
  };
}
