/**
 * Reads JSON values in place, without building them: where a value ends and what kind of value
 * it is (for the column typing of row images, lake-row-types.ts).
 */

/** What a value is, as far as a column's lake type is concerned (see `ColumnSet.observe`). */
export const Kind = {
  null: 0,
  boolean: 1,
  /** A JSON number whose value is a whole number below 2^63 in magnitude. */
  integer: 2,
  /** A whole number at or beyond 2^63 (`1e+100`). */
  hugeInteger: 3,
  fraction: 4,
  string: 5,
  /** `"NaN"`, `"Infinity"`, `"-Infinity"` (how floats' non-finite values arrive). */
  nonFinite: 6,
  nested: 7,
} as const;

/** The kind of the last value `skipValue` read. */
export let lastKind = 0;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** The index after the whitespace at `i`. */
export function skipSpace(s: string, i: number): number {
  for (;;) {
    const c = s.charCodeAt(i);
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return i;
    i++;
  }
}

/** The index after the JSON string opening at `i` (a `"`), or -1. */
export function skipString(s: string, i: number): number {
  let from = i + 1;
  for (;;) {
    const q = s.indexOf('"', from);
    if (q < 0) return -1;
    let b = q - 1;
    while (s.charCodeAt(b) === BACKSLASH) b--;
    if ((q - 1 - b) % 2 === 0) return q + 1;
    from = q + 1;
  }
}

/** The text of the JSON string spanning `[start, end)`, unescaped. */
export function stringAt(s: string, start: number, end: number): string {
  const inner = s.slice(start + 1, end - 1);
  return inner.includes('\\') ? (JSON.parse(s.slice(start, end)) as string) : inner;
}

function skipNested(s: string, i: number): number {
  let depth = 0;
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === QUOTE) {
      i = skipString(s, i) - 1;
      if (i < 0) return -1;
    } else if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) {
      if (--depth === 0) return i + 1;
    }
  }
  return -1;
}

function numberKind(n: number): number {
  if (!Number.isInteger(n)) return Number.isFinite(n) ? Kind.fraction : -1;
  return Math.abs(n) < 2 ** 63 ? Kind.integer : Kind.hugeInteger;
}

/**
 * The index after the JSON value at `i` (no whitespace before it), its kind in `lastKind`; -1
 * when it is not a value. Numbers are only checked as far as their kind needs.
 */
export function skipValue(s: string, i: number): number {
  const c = s.charCodeAt(i);
  if (c === QUOTE) {
    const end = skipString(s, i);
    const n = end - i;
    lastKind =
      (n === 5 && s.startsWith('"NaN"', i)) ||
      (n === 10 && s.startsWith('"Infinity"', i)) ||
      (n === 11 && s.startsWith('"-Infinity"', i))
        ? Kind.nonFinite
        : Kind.string;
    return end;
  }
  if (c === 0x7b || c === 0x5b) {
    lastKind = Kind.nested;
    return skipNested(s, i);
  }
  if (c === 0x6e) return literal(s, i, 'null', Kind.null);
  if (c === 0x74) return literal(s, i, 'true', Kind.boolean);
  if (c === 0x66) return literal(s, i, 'false', Kind.boolean);
  let j = c === 0x2d ? i + 1 : i;
  const digits = j;
  let dot = -1;
  let exponent = false;
  let wholeFraction = true;
  for (; j < s.length; j++) {
    const d = s.charCodeAt(j);
    if (d >= 0x30 && d <= 0x39) {
      if (dot >= 0 && d !== 0x30) wholeFraction = false;
    } else if (d === 0x2e && dot < 0 && !exponent) dot = j;
    else if (d === 0x65 || d === 0x45) exponent = true;
    else if (!((d === 0x2b || d === 0x2d) && exponent)) break;
  }
  if (j === digits) return -1;
  const intDigits = (dot < 0 ? j : dot) - digits;
  lastKind =
    exponent || (dot >= 0 && !wholeFraction) || intDigits > 18
      ? numberKind(Number(s.slice(i, j)))
      : Kind.integer;
  return lastKind < 0 ? -1 : j;
}

function literal(s: string, i: number, word: string, kind: number): number {
  lastKind = kind;
  return s.startsWith(word, i) ? i + word.length : -1;
}
