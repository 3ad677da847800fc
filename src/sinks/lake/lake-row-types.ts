/**
 * Types a table's columns from its row images' JSON text without parsing them: each value's
 * `Kind` is read in place, and a column is shown to `ColumnSet.observe` (with that one value,
 * parsed) only the first time it carries a kind in a batch.
 *
 * Why that gives the same columns as observing every row: `observe` decides by the value's kind
 * alone (null, a whole number below 2^63, a larger one, a fraction, a string, a float's NaN or
 * infinity, a boolean, an array or object) and the column's type so far; types only widen, so a
 * kind already observed under the same shape changes nothing the second time.
 */
import type { ColumnSet, ShapeTypes } from './lake-columns.ts';
import { lastKind, skipSpace, skipString, skipValue, stringAt } from './lake-envelope.ts';

/** The columns of one table under one shape, in the order the rows carry them. */
export class RowTypes {
  /** `"name"` of each column, as in the text (for a comparison in place). */
  readonly #tokens: string[] = [];
  readonly #names: string[] = [];
  readonly #index = new Map<string, number>();
  /** Per column, a bit per `Kind` already observed. */
  readonly #seen: number[] = [];

  constructor(
    private readonly columns: ColumnSet,
    private readonly shape: ShapeTypes | undefined,
  ) {}

  /**
   * Observes the row image (a JSON object) spanning `[start, end)` of `text`. Throws
   * `LakeSchemaError` on an incompatible type, `SyntaxError` on a malformed image.
   */
  observe(text: string, start: number): void {
    let i = skipSpace(text, start + 1);
    if (text.charCodeAt(i) === 0x7d) return;
    let next = 0;
    for (;;) {
      let column = next;
      const token = this.#tokens[column];
      if (token !== undefined && text.startsWith(token, i)) {
        i += token.length;
      } else {
        const end = skipString(text, i);
        if (text.charCodeAt(i) !== 0x22 || end < 0) malformed(text);
        column = this.#column(text, i, end);
        i = end;
      }
      i = skipSpace(text, i);
      if (text.charCodeAt(i) !== 0x3a) malformed(text);
      const from = skipSpace(text, i + 1);
      i = skipValue(text, from);
      if (i < 0) malformed(text);
      const bit = 1 << lastKind;
      if ((this.#seen[column]! & bit) === 0) {
        this.#seen[column]! |= bit;
        const name = this.#names[column]!;
        this.columns.observe({ [name]: JSON.parse(text.slice(from, i)) as unknown }, this.shape);
      }
      next = column + 1;
      i = skipSpace(text, i);
      const c = text.charCodeAt(i);
      if (c === 0x7d) return;
      if (c !== 0x2c) malformed(text);
      i = skipSpace(text, i + 1);
    }
  }

  #column(text: string, start: number, end: number): number {
    const name = stringAt(text, start, end);
    let column = this.#index.get(name);
    if (column === undefined) {
      column = this.#names.length;
      this.#index.set(name, column);
      this.#names.push(name);
      this.#tokens.push(text.slice(start, end));
      this.#seen.push(0);
    }
    return column;
  }
}

function malformed(text: string): never {
  JSON.parse(text);
  throw new SyntaxError('lake: a row image could not be read');
}
