/**
 * PostgreSQL array literals (the text `array_out` prints): `{1,2,NULL}`, `{{"a b","c\"d"},{e,f}}`,
 * `[0:1]={1,2}`. Elements stay text so each can go through its own type's converter.
 */

/** A parsed array: element texts, `null` for SQL NULL, nested arrays for extra dimensions. */
export type PgArray = (string | null | PgArray)[];

const OPEN = 0x7b; // {
const CLOSE = 0x7d; // }
const QUOTE = 0x22; // "
const BACKSLASH = 0x5c;
const BRACKET = 0x5b; // [

/** Same set as C's isspace(), which array_in uses to skip blanks around elements. */
function isSpace(code: number): boolean {
  return code === 0x20 || (code >= 0x09 && code <= 0x0d);
}

export class ArrayLiteralError extends Error {
  constructor(reason: string, at: number) {
    super(`malformed array literal: ${reason} at offset ${at}`);
    this.name = 'ArrayLiteralError';
  }
}

/**
 * Parses an array literal. `delimiter` is the element type's typdelim: ',' for everything built-in
 * except `box` (';'). Dimension bounds (`[0:1]=`) are dropped: JSON arrays are always 0-based.
 */
export function parsePgArray(text: string, delimiter = ','): PgArray {
  const delim = delimiter.charCodeAt(0);
  const n = text.length;
  let i = 0;
  if (text.charCodeAt(0) === BRACKET) {
    const eq = text.indexOf('=');
    if (eq < 0) throw new ArrayLiteralError("dimension decoration without '='", 0);
    i = eq + 1;
  }
  while (i < n && isSpace(text.charCodeAt(i))) i++;
  if (text.charCodeAt(i) !== OPEN) throw new ArrayLiteralError("expected '{'", i);
  i++;
  const root: PgArray = [];
  const stack: PgArray[] = [root];
  let current = root;
  while (true) {
    while (i < n && isSpace(text.charCodeAt(i))) i++;
    if (i >= n) throw new ArrayLiteralError('unterminated array', i);
    const c = text.charCodeAt(i);
    if (c === OPEN) {
      const child: PgArray = [];
      current.push(child);
      stack.push(child);
      current = child;
      i++;
    } else if (c === CLOSE) {
      stack.pop();
      i++;
      const parent = stack[stack.length - 1];
      if (parent === undefined) break;
      current = parent;
    } else if (c === delim) {
      i++;
    } else if (c === QUOTE) {
      i = readQuoted(text, i + 1, current);
    } else {
      i = readUnquoted(text, i, delim, current);
    }
  }
  while (i < n && isSpace(text.charCodeAt(i))) i++;
  if (i !== n) throw new ArrayLiteralError('trailing characters', i);
  return root;
}

function readQuoted(text: string, start: number, into: PgArray): number {
  let i = start;
  let chunkStart = start;
  let value = '';
  while (true) {
    const c = text.charCodeAt(i);
    if (Number.isNaN(c)) throw new ArrayLiteralError('unterminated quoted element', start - 1);
    if (c === QUOTE) break;
    if (c === BACKSLASH) {
      value += text.slice(chunkStart, i);
      chunkStart = i + 1; // keep the escaped character, drop the backslash
      i += 2;
      continue;
    }
    i++;
  }
  into.push(value + text.slice(chunkStart, i));
  return i + 1;
}

function readUnquoted(text: string, start: number, delim: number, into: PgArray): number {
  let i = start;
  let chunkStart = start;
  let value = '';
  let escaped = false;
  // Trailing blanks are not part of the value unless escaped: remember where real content ends.
  let contentEnd = start;
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === delim || c === CLOSE) break;
    if (c === BACKSLASH) {
      value += text.slice(chunkStart, i);
      chunkStart = i + 1;
      escaped = true;
      i += 2;
      contentEnd = i;
      continue;
    }
    i++;
    if (!isSpace(c)) contentEnd = i;
  }
  value += text.slice(chunkStart, Math.max(contentEnd, chunkStart));
  if (!escaped && value.length === 4 && value.toUpperCase() === 'NULL') into.push(null);
  else into.push(value);
  return i;
}
